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


def test_first_frame_still_processing_is_not_an_error() -> None:
    m = running_monitor()
    for i in range(10):  # 10 Hz camera, the first inference (warm-up) has not finished after 1 s
        m.on_received(0.1 * i, stamp=0.1 * i)
    st = m.status(1.0)
    assert st.level == OK and "first frame" in st.message


def test_first_result_that_never_comes_warns_after_the_grace_period() -> None:
    m = DiagnosticsMonitor("das", window=2.0, first_result_grace=5.0)
    m.model_loaded = m.camera_info_received = True
    for i in range(70):
        m.on_received(0.1 * i)
    assert m.status(7.0).level == WARN and "no result" in m.status(7.0).message


def test_stamp_gaps_count_frames_lost_before_the_node() -> None:
    m = running_monitor()
    stamps = [100.0 + i / 30 for i in range(40) if i not in (20, 21, 30)]  # 30 Hz, three frames never arrive
    for k, s in enumerate(stamps):
        m.on_received(1.0 + k / 30, stamp=s)
        m.on_published(1.0 + k / 30, s, 0.01, 1)
    values = dict(m.status(1.0 + len(stamps) / 30).values)
    assert values["frames lost before the node (stamp gaps)"] == "3"
    assert values["input period from stamps (ms)"] == "33.3"


def test_a_steady_stream_loses_nothing_and_a_restarted_camera_is_not_loss() -> None:
    m = running_monitor()
    for i in range(20):  # 5 Hz, nothing missing
        t = i * 0.2
        m.on_received(t, stamp=t)
        m.on_published(t, t, 0.01, 1)
    assert m.status(3.8).level == OK and m.gaps.lost_total == 0
    for s in (10.0, 10.2, 10.4):  # the driver restarted 6 s later, then again with stamps from 0
        m.gaps.add(s)
    m.gaps.add(0.0)
    assert m.gaps.restarts == 2 and m.gaps.lost_total == 0


def test_losing_one_frame_in_three_warns() -> None:
    m = running_monitor()
    for i in range(40):  # 30 Hz, one frame in three lost from frame 10 on
        if i > 10 and i % 3 == 0:
            continue
        m.on_received(i / 30, stamp=i / 30)
        m.on_published(i / 30, i / 30, 0.01, 1)
    st = m.status(39 / 30)
    assert st.level == WARN and "lost before the node" in st.message
    assert m.gaps.lost_total == 9


def test_two_cameras_interleaved_stamps_are_not_mistaken_for_loss_or_restarts() -> None:
    m = DiagnosticsMonitor("das")
    for i in range(40):  # front at 0.05 s steps from 100 s, rear at 0.05 s steps from 7 s; frame 30 of rear lost
        m.on_received(i * 0.05, 100.0 + 0.05 * i, "front")
        if i != 30:
            m.on_received(i * 0.05 + 0.01, 7.0 + 0.05 * i, "rear")
    assert m.gaps_by_source["front"].lost_total == 0 and m.gaps_by_source["rear"].lost_total == 1
    assert sum(g.restarts for g in m.gaps_by_source.values()) == 0
    mixed = DiagnosticsMonitor("das")  # the same stamps as one stream: what per-camera gaps avoid
    for i in range(40):
        mixed.on_received(i * 0.05, 100.0 + 0.05 * i)
        mixed.on_received(i * 0.05 + 0.01, 7.0 + 0.05 * i)
    assert mixed.gaps.restarts > 0


def test_combine_raises_the_node_level_to_the_worst_camera_and_names_it() -> None:
    from das_ros.diagnostics import Status, combine

    node = Status(OK, "running", (("frames published", "7"),))
    cams = {"/front": Status(OK, "running", ()), "/rear": Status(WARN, "no image received for more than 3 s", ()),
            "/left": Status(WARN, "dropping frames", ())}
    st = combine(node, cams)
    assert st.level == WARN
    assert st.message == "camera /rear: no image received for more than 3 s; camera /left: dropping frames"
    values = dict(st.values)
    assert values["cameras"] == "/front, /rear, /left" and values["cameras OK"] == "1 of 3"
    assert values["camera /rear"] == "WARN: no image received for more than 3 s"
    assert values["frames published"] == "7"  # the node's own values follow
    # The node's own error outranks a camera warning and keeps its message.
    assert combine(Status(ERROR, "model not loaded", ()), cams).message == "model not loaded"
    assert combine(node, {"/front": Status(OK, "running", ())}).level == OK


def test_one_array_carries_every_status() -> None:
    from das_ros.diagnostics import Status, diagnostic_array

    arr = diagnostic_array(namespace_factory(), header(), [("das: a", "hw", Status(OK, "running", (("k", "v"),))),
                                                           ("das: b", "hw", Status(ERROR, "bad", ()))])
    assert [(s.name, s.level, s.message) for s in arr.status] == [("das: a", OK, "running"), ("das: b", ERROR, "bad")]
    assert arr.status[0].values[0].key == "k"
