"""DiagnosticsMonitor: rates, latency now − stamp, dropped frames, levels."""

from __future__ import annotations

from ros_helpers import header

from das_ros.diagnostics import ERROR, OK, WARN, DiagnosticsMonitor
from das_ros.factory import namespace_factory


def running_monitor() -> DiagnosticsMonitor:
    m = DiagnosticsMonitor("das", window=2.0)
    m.model_loaded, m.backend, m.device = True, "eager", "cuda:0"
    m.camera_info_received = True
    return m


def test_unconfigured_node_is_an_error() -> None:
    assert DiagnosticsMonitor("das").status(0.0).level == ERROR


def test_rates_latency_and_drops_are_reported() -> None:
    m = running_monitor()
    for i in range(20):  # 10 Hz in, every second frame published 50 ms after its stamp
        t = 10.0 + 0.1 * i
        m.on_received(t)
        if i % 2:
            m.on_published(t + 0.05, stamp=t, processing_s=0.03, persons=2, stage_ms={"estimate": 25.0})
        else:
            m.on_dropped()
    st = m.status(12.0)
    values = dict(st.values)
    assert values["input rate (Hz)"] == "10.00" and values["output rate (Hz)"] == "5.00"
    assert values["latency now-stamp median (ms)"] == "50.0" and values["frames dropped (busy)"] == "10"
    assert values["backend"] == "eager" and values["device"] == "cuda:0"
    assert values["last frame estimate (ms)"] == "25.0" and values["persons in last frame"] == "2"
    assert st.level == OK


def test_slow_inference_warns_and_uncalibrated_camera_is_an_error() -> None:
    m = running_monitor()
    for i in range(20):
        m.on_received(0.1 * i)
        m.on_dropped()
    m.on_published(1.9, 1.9, 0.5, 1)
    assert m.status(2.0).level == WARN
    m.camera_info_error = "camera is uncalibrated: CameraInfo K[0] == 0"
    st = m.status(2.0)
    assert st.level == ERROR and "uncalibrated" in st.message


def test_images_without_output_is_an_error_naming_the_last_bad_frame() -> None:
    m = running_monitor()
    for i in range(5):
        m.on_received(0.1 * i)
        m.on_bad_frame("bad_image", "unsupported image encoding '32FC1'")
    st = m.status(0.5)
    assert st.level == ERROR and "32FC1" in st.message and dict(st.values)["bad frames: bad_image"] == "5"


def test_no_images_is_a_warning() -> None:
    assert running_monitor().status(100.0).level == WARN


def test_message_has_one_status_with_key_values() -> None:
    h = header()
    arr = running_monitor().message(namespace_factory(), 1.0, h)
    assert arr.header is h and len(arr.status) == 1
    st = arr.status[0]
    assert st.name == "das" and any(kv.key == "backend" for kv in st.values) and isinstance(st.level, int)
