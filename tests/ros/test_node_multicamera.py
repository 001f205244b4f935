"""Several cameras through one node and one model (issue 18 part 2), on a real ROS 2 graph.

Two camera nodes publish image + camera_info under ``<NS>/front`` and ``<NS>/rear``; the DAS node runs with
``cameras: [front, rear]`` and one injected ``FakeEstimator``. Needs rclpy (see tests/ros/test_node_rclpy.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from ros_helpers import import_generated_messages

if os.environ.get("DAS_REQUIRE_ROS", "") not in ("", "0"):  # CI: an ImportError here must fail, not skip
    import rclpy
    import rclpy.lifecycle
else:
    rclpy = pytest.importorskip("rclpy")
    pytest.importorskip("rclpy.lifecycle")

das_msgs = import_generated_messages()

from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile  # noqa: E402
from ros_helpers import FakeEstimator  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from das_ros.node import DASNode  # noqa: E402
from das_ros.pipeline import BAD_FRAME_REASONS  # noqa: E402

NS = "/das_multi"
SIZES = {"front": (64, 48), "rear": (40, 30)}  # different sizes: each camera's own K must reach the model
RELIABLE = QoSProfile(depth=10)


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


def camera_info(name: str, f: float = 60.0) -> CameraInfo:
    w, h = SIZES[name]
    info = CameraInfo()
    info.header.frame_id = f"{name}_optical"
    info.width, info.height = w, h
    info.k = [f, 0.0, (w - 1) / 2, 0.0, f, (h - 1) / 2, 0.0, 0.0, 1.0]
    return info


class Cameras:
    """The DAS node, one publisher node per camera, a viewer of every camera's poses (and the node's own
    single-camera ``poses``, which must stay silent), one executor."""

    def __init__(self, das: DASNode) -> None:
        self.das = das
        self.executor = SingleThreadedExecutor()
        self.viewer = rclpy.create_node("viewer", namespace=NS)
        self.poses: dict[str, list[Any]] = {"front": [], "rear": [], "": []}
        for name, got in self.poses.items():
            topic = f"{name}/poses" if name else "poses"
            self.viewer.create_subscription(das_msgs.MultiPerson3DPose, topic, got.append, 10)
        self.nodes = [self.viewer, das]
        self.pubs: dict[str, tuple[Any, Any]] = {}
        for name in SIZES:
            cam = rclpy.create_node("camera", namespace=f"{NS}/{name}")
            self.pubs[name] = (cam.create_publisher(Image, "image", RELIABLE),
                               cam.create_publisher(CameraInfo, "camera_info", RELIABLE))
            self.nodes.append(cam)
        for n in self.nodes:
            self.executor.add_node(n)
        self.frame = {name: 0 for name in SIZES}  # per camera: each stream's stamps advance steadily
        self.sent: dict[str, list[tuple[int, int]]] = {name: [] for name in SIZES}

    def publish(self, name: str, info: CameraInfo | None = None) -> None:
        self.frame[name] += 1
        sec, nsec = 100 + self.frame[name], 1000 * self.frame[name] + (0 if name == "front" else 7)
        img_pub, info_pub = self.pubs[name]
        info = info if info is not None else camera_info(name)
        info.header.stamp.sec, info.header.stamp.nanosec = sec, nsec
        info_pub.publish(info)
        w, h = SIZES[name]
        msg = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
        msg.data = np.full((h, w, 3), 100, np.uint8).tobytes()
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        msg.header.frame_id = f"{name}_optical"
        img_pub.publish(msg)
        self.sent[name].append((sec, nsec))

    def run_until(self, done: Callable[[], bool], publish: Callable[[], object], timeout: float = 15.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not done():
            publish()
            spin_end = time.monotonic() + 0.05
            while time.monotonic() < spin_end:
                self.executor.spin_once(timeout_sec=0.01)
        return done()

    def close(self) -> None:
        self.das._release()  # stop the workers before their publishers disappear
        self.executor.shutdown()
        for n in self.nodes:
            n.destroy_node()


def das_node(est: Any, **params: Any) -> DASNode:
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    node = DASNode("das", namespace=NS, estimator=est, parameter_overrides=overrides)
    assert node.trigger_configure() == rclpy.lifecycle.TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == rclpy.lifecycle.TransitionCallbackReturn.SUCCESS
    return node


def bad_frames(camera: Any) -> int:
    return sum(camera.pipeline.counters.get(r, 0) for r in BAD_FRAME_REASONS)


def both(g: Cameras) -> None:
    g.publish("front")
    g.publish("rear")


def test_each_camera_gets_its_own_poses_topic_with_its_own_header_from_one_model(ros) -> None:
    est = FakeEstimator([(0.0, 0.2, 3.0)])
    g = Cameras(das_node(est, cameras=["front", "rear"]))
    try:
        assert sorted(s.topic_name for s in g.das._subs) == sorted(
            f"{NS}/{c}/{t}" for c in SIZES for t in ("image", "camera_info"))
        assert g.run_until(lambda: len(g.poses["front"]) >= 3 and len(g.poses["rear"]) >= 3, lambda: both(g))
        for name in SIZES:
            for msg in g.poses[name]:
                assert msg.header.frame_id == f"{name}_optical"
                assert (msg.header.stamp.sec, msg.header.stamp.nanosec) in g.sent[name]
                assert len(msg.persons) == 1
        assert not g.poses[""]  # nothing on the single-camera topic
        # One model saw both cameras' frames, each with that camera's image size and K.
        seen = {(shape[1], shape[0]): intr for shape, intr in est.calls}
        assert set(seen) == set(SIZES.values())
        assert seen[SIZES["rear"]].cx == pytest.approx((SIZES["rear"][0] - 1) / 2)
        # Each camera has its own tracker: each sees one person with its own track id sequence.
        assert g.das._cameras[0].pipeline is not g.das._cameras[1].pipeline
    finally:
        g.close()


class SlowBatchEstimator(FakeEstimator):
    """``FakeEstimator`` with ``batch`` (like das_core's Estimator) and 30 ms per model run, so that the two
    cameras' frames meet at the model."""

    def __init__(self) -> None:
        super().__init__([(0.0, 0.2, 3.0)])
        self.batch_sizes: list[int] = []

    def __call__(self, rgb: np.ndarray, intrinsics: Any) -> Any:
        time.sleep(0.03)
        self.batch_sizes.append(1)
        return super().__call__(rgb, intrinsics)

    def batch(self, images: list[np.ndarray], intrinsics_list: list[Any]) -> list[Any]:
        time.sleep(0.03)
        self.batch_sizes.append(len(images))
        return [FakeEstimator.__call__(self, im, k) for im, k in zip(images, intrinsics_list, strict=True)]


def test_frames_of_two_cameras_that_meet_at_the_model_run_as_one_batch_and_go_back_to_their_camera(ros) -> None:
    est = SlowBatchEstimator()
    g = Cameras(das_node(est, cameras=["front", "rear"]))
    try:
        assert g.run_until(lambda: 2 in est.batch_sizes and len(g.poses["front"]) >= 3
                           and len(g.poses["rear"]) >= 3, lambda: both(g))
        assert max(est.batch_sizes) == 2  # never more images than cameras
        for name in SIZES:  # a batched result reaches the camera it came from
            assert all(m.header.frame_id == f"{name}_optical" and m.image_width == SIZES[name][0]
                       for m in g.poses[name])
    finally:
        g.close()


def test_a_camera_with_bad_camera_info_is_counted_and_the_other_keeps_publishing(ros) -> None:
    g = Cameras(das_node(FakeEstimator(), cameras=["front", "rear"]))
    try:
        front, rear = g.das._cameras

        def bad_rear() -> None:
            g.publish("front")
            g.publish("rear", camera_info("rear", f=0.0))  # uncalibrated, no fallback: every rear frame refused

        assert g.run_until(lambda: rear.pipeline.counters["bad_camera_info"] >= 3 and len(g.poses["front"]) >= 3,
                           bad_rear)
        assert not g.poses["rear"]
        assert bad_frames(front) == 0 and front.pipeline.counters["frames_ok"] >= 3  # counters are per camera
        error = g.das.monitor.camera_info_error
        assert error is not None and error.startswith("rear: ")
        # The rear camera recovers on its own; its error leaves diagnostics.
        assert g.run_until(lambda: len(g.poses["rear"]) >= 2, lambda: both(g))
        assert g.das.monitor.camera_info_error is None
    finally:
        g.close()


def test_a_camera_that_stops_does_not_stop_the_other(ros) -> None:
    g = Cameras(das_node(FakeEstimator(), cameras=["front", "rear"]))
    try:
        assert g.run_until(lambda: len(g.poses["rear"]) >= 2, lambda: both(g))
        n_rear = len(g.poses["rear"])
        start = len(g.poses["front"])
        assert g.run_until(lambda: len(g.poses["front"]) >= start + 5, lambda: g.publish("front"))
        assert len(g.poses["rear"]) == n_rear
    finally:
        g.close()


@pytest.mark.parametrize("value", [["front", "front"], ["~front"], ["front//x"]])
def test_a_bad_cameras_value_fails_configure_with_a_reason(ros, value: list[str]) -> None:
    node = DASNode("das", namespace=NS, estimator=FakeEstimator(),
                   parameter_overrides=[Parameter("cameras", value=value)])
    try:
        assert node.trigger_configure() == rclpy.lifecycle.TransitionCallbackReturn.FAILURE
        assert node._pipeline is None
    finally:
        node.destroy_node()


# ---- per-camera diagnostics --------------------------------------------------------------------------------
def level(status: Any) -> int:
    lv = status.level  # a byte field: rclpy gives bytes
    return lv[0] if isinstance(lv, (bytes, bytearray)) else int(lv)


def latest_statuses(arrays: list[Any]) -> dict[str, Any]:
    return {s.name: s for s in arrays[-1].status} if arrays else {}


def test_each_camera_has_its_own_diagnostic_status_and_the_node_status_names_the_bad_one(ros) -> None:
    from diagnostic_msgs.msg import DiagnosticArray

    g = Cameras(das_node(FakeEstimator(), cameras=["front", "rear"], diagnostics_period=0.1))
    arrays: list[Any] = []
    g.viewer.create_subscription(DiagnosticArray, "/diagnostics", arrays.append, 10)
    node_name = "das: DAS 3D pose"
    front, rear = f"{node_name}, camera {NS}/front", f"{node_name}, camera {NS}/rear"
    try:
        def front_published(n: int) -> bool:
            st = latest_statuses(arrays).get(front)
            return st is not None and int(dict((v.key, v.value) for v in st.values)["frames published"]) >= n

        # The rear camera sends nothing: only its own status and the node's level show it.
        assert g.run_until(lambda: front_published(3), lambda: g.publish("front"))
        got = latest_statuses(arrays)
        assert set(got) == {node_name, front, rear}
        values = {name: {v.key: v.value for v in st.values} for name, st in got.items()}
        assert level(got[front]) == 0 and got[front].message == "running"
        assert level(got[rear]) == 1 and "no image received" in got[rear].message
        assert values[rear]["frames received"] == "0" and values[rear]["frames published"] == "0"
        assert level(got[node_name]) == 1 and got[node_name].message.startswith(f"camera {NS}/rear: no image")
        assert values[node_name]["cameras OK"] == "1 of 2"
        # The node-level counters are the sums (only front has frames so far).
        assert int(values[node_name]["frames published"]) >= int(values[front]["frames published"]) >= 3

        # Now rear sends an uncalibrated camera_info: an error of rear alone, counted in rear's status only.
        def bad_rear() -> None:
            g.publish("front")
            g.publish("rear", camera_info("rear", f=0.0))

        def rear_refused() -> bool:
            st = latest_statuses(arrays).get(rear)
            return st is not None and "bad frames: bad_camera_info" in {v.key for v in st.values}

        assert g.run_until(rear_refused, bad_rear)
        got = latest_statuses(arrays)
        values = {name: {v.key: v.value for v in st.values} for name, st in got.items()}
        assert level(got[rear]) == 2 and got[rear].message.startswith("camera_info unusable")
        assert level(got[front]) == 0 and not any(k.startswith("bad frames") for k in values[front])
        assert level(got[node_name]) == 2
    finally:
        g.close()


def test_one_camera_keeps_a_single_diagnostic_status(ros) -> None:
    from diagnostic_msgs.msg import DiagnosticArray

    g = Cameras(das_node(FakeEstimator(), cameras=["front"], diagnostics_period=0.1))
    arrays: list[Any] = []
    g.viewer.create_subscription(DiagnosticArray, "/diagnostics", arrays.append, 10)
    try:
        assert g.run_until(lambda: len(arrays) >= 2 and len(g.poses["front"]) >= 1, lambda: g.publish("front"))
        assert [s.name for s in arrays[-1].status] == ["das: DAS 3D pose"]
    finally:
        g.close()


# ---- the cameras parameter is a string array -----------------------------------------------------------------
def params_file(tmp_path: Any, text: str) -> list[str]:
    path = tmp_path / "p.yaml"
    path.write_text(f"/**:\n  ros__parameters:\n    cameras: {text}\n")
    return ["--ros-args", "--params-file", str(path)]


@pytest.mark.parametrize("yaml_value, expected", [(None, []), ("[]", []), ("[front, /cam/rear]", ["front", "/cam/rear"])])
def test_cameras_is_a_string_array_with_an_empty_default(ros, tmp_path, yaml_value: str | None,
                                                         expected: list[str]) -> None:
    from rcl_interfaces.msg import ParameterType

    cli = params_file(tmp_path, yaml_value) if yaml_value is not None else None
    node = DASNode("das", namespace=NS, estimator=FakeEstimator(), cli_args=cli)
    try:
        p = node.get_parameter("cameras")
        assert p.type_ == Parameter.Type.STRING_ARRAY and list(p.value) == expected
        assert node.describe_parameter("cameras").type == ParameterType.PARAMETER_STRING_ARRAY
        # A string list can be set later (it applies at the next configure); a plain string cannot.
        assert node.set_parameters([Parameter("cameras", Parameter.Type.STRING_ARRAY, ["a", "b"])])[0].successful
        assert not node.set_parameters([Parameter("cameras", Parameter.Type.STRING, "a b")])[0].successful
        assert not node.set_parameters([Parameter("cameras", Parameter.Type.STRING_ARRAY, ["a", "a"])])[0].successful
    finally:
        node.destroy_node()


def test_a_cameras_string_in_a_parameters_file_is_refused_with_the_new_form(ros, tmp_path) -> None:
    from das_ros.params import ParamError

    with pytest.raises(ParamError, match=r"string array, e.g. 'cameras: \[front, rear\]'"):
        DASNode("das", namespace=NS, estimator=FakeEstimator(), cli_args=params_file(tmp_path, '"front rear"'))
