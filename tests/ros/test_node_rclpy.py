"""The node on a real ROS 2 graph: what a robot sees through DDS, with a camera and a viewer as separate nodes.

Needs rclpy and the built messages: ``bash scripts/ros2_from_pypi.sh && . scripts/ros2_env.sh`` (ROS 2 wheels
from PyPI, docs/ROS.md) or a sourced ROS 2 workspace with das_ros built. ``.ci/run`` does the former and sets
``DAS_REQUIRE_ROS=1``, so a skip here fails CI (tests/ros/conftest.py). One DDS domain per test run; the
nodes share an in-process executor, but every message goes through the middleware.

Most tests inject ``FakeEstimator`` (people at known 3D positions, projected with the received K) for speed;
``test_das_node_process_*`` runs the installed ``das_node`` executable with the shipped checkpoint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
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

from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from lifecycle_msgs.msg import State, Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rcl_interfaces.msg import Log, ParameterType  # noqa: E402
from rcl_interfaces.srv import DescribeParameters, SetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data  # noqa: E402
from ros_helpers import SKELETON, FakeEstimator  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from visualization_msgs.msg import Marker, MarkerArray  # noqa: E402

import das_ros.node as node_module  # noqa: E402
from das_core.camera import Intrinsics  # noqa: E402
from das_ros import params as P  # noqa: E402
from das_ros.conversions import rgb_to_compressed_fields  # noqa: E402
from das_ros.node import DASNode  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NS = "/das_test"
W, H = 64, 48
OK, WARN, ERROR = 0, 1, 2
RELIABLE = QoSProfile(depth=10)
BEST_EFFORT = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.shutdown()


def camera_info(f: float = 60.0, width: int = W, height: int = H) -> CameraInfo:
    info = CameraInfo()
    info.header.frame_id = "cam_optical"
    info.width, info.height = width, height
    info.k = [f, 0.0, (width - 1) / 2, 0.0, f, (height - 1) / 2, 0.0, 0.0, 1.0]
    return info


def level(status: Any) -> int:
    lv = status.level
    return lv[0] if isinstance(lv, (bytes, bytearray)) else int(lv)


class Graph:
    """The DAS node, a ``camera`` node publishing image + camera_info, a ``viewer`` node subscribing to every
    output (and /rosout), one executor. Image stamps advance 1/20 s per frame from 100 s."""

    def __init__(self, das: DASNode | None, camera_qos: QoSProfile = RELIABLE, compressed: bool = False) -> None:
        self.das = das
        self.executor = SingleThreadedExecutor()
        self.viewer = rclpy.create_node("viewer", namespace=NS)
        self.poses: list[Any] = []
        self.markers: list[Any] = []
        self.diagnostics: list[Any] = []
        self.logs: list[Any] = []
        self.debug: list[Any] = []
        self.viewer.create_subscription(das_msgs.MultiPerson3DPose, "poses", self.poses.append, 10)
        self.viewer.create_subscription(MarkerArray, "markers", self.markers.append, 10)
        self.viewer.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 10)
        self.viewer.create_subscription(Log, "/rosout", self.logs.append, 100)
        self.executor.add_node(self.viewer)
        if das is not None:
            self.executor.add_node(das)
        self.camera: Any = None
        self.frame = 0
        self.stamp0 = 100.0
        self.start_camera(camera_qos, compressed)

    def start_camera(self, qos: QoSProfile = RELIABLE, compressed: bool = False) -> None:
        self.camera = rclpy.create_node("camera", namespace=NS)
        self.compressed = compressed
        if compressed:
            self.img_pub = self.camera.create_publisher(CompressedImage, "image/compressed", qos)
        else:
            self.img_pub = self.camera.create_publisher(Image, "image", qos)
        self.info_pub = self.camera.create_publisher(CameraInfo, "camera_info", qos)
        self.executor.add_node(self.camera)

    def stop_camera(self) -> None:
        self.executor.remove_node(self.camera)
        self.camera.destroy_node()
        self.camera = None

    def stamp(self, i: int) -> tuple[int, int]:
        t = self.stamp0 + 0.05 * i
        return int(t), int(round((t - int(t)) * 1e9)) % 1_000_000_000

    def publish(self, info: CameraInfo | None = None, rgb: np.ndarray | None = None, encoding: str = "rgb8",
                data: bytes | None = None) -> tuple[int, int]:
        """One camera_info + one image (stamp of frame ``self.frame``); returns the image's (sec, nanosec)."""
        sec, nsec = self.stamp(self.frame)
        self.frame += 1
        info = info if info is not None else camera_info()
        info.header.stamp.sec, info.header.stamp.nanosec = sec, nsec
        self.info_pub.publish(info)
        rgb = rgb if rgb is not None else np.full((H, W, 3), 100, np.uint8)
        if self.compressed:
            msg = CompressedImage(**rgb_to_compressed_fields(rgb, "jpeg"))
        else:
            h, w = rgb.shape[:2]
            msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=w * rgb.shape[2])
            msg.data = data if data is not None else rgb.tobytes()
        msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nsec
        msg.header.frame_id = "cam_optical"
        self.img_pub.publish(msg)
        return sec, nsec

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def run_until(self, done: Callable[[], bool], timeout: float = 15.0, period: float = 0.05,
                  publish: Callable[[], object] | None = None) -> bool:
        """Publish a frame every ``period`` s (``publish`` or the default frame) and spin until ``done()``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if done():
                return True
            if self.camera is not None:
                (publish or self.publish)()
            self.spin(period)
        return done()

    def call(self, client: Any, request: Any, timeout: float = 20.0) -> Any:
        assert client.wait_for_service(timeout_sec=timeout), f"service {client.srv_name} not available"
        future = client.call_async(request)
        end = time.monotonic() + timeout
        while not future.done() and time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)
        assert future.done(), f"no answer from {client.srv_name}"
        return future.result()

    def das_logs(self, text: str) -> list[str]:
        return [m.msg for m in self.logs if m.name.endswith("das") and text in m.msg]

    def das_status(self) -> list[Any]:
        return [s for a in self.diagnostics for s in a.status if s.name.startswith("das: ")]

    def close(self) -> None:
        if self.das is not None:
            self.das._release()  # stop the worker before its publishers disappear
        self.executor.shutdown()
        for n in (self.camera, self.viewer, self.das):
            if n is not None:
                n.destroy_node()


def das_node(estimator: Any = None, activate: bool = True, **params: Any) -> DASNode:
    overrides = [Parameter(k, value=v) for k, v in params.items()]
    node = DASNode("das", namespace=NS, estimator=estimator or FakeEstimator([(0.0, 0.2, 3.0)]),
                   parameter_overrides=overrides)
    if activate:
        assert node.trigger_configure() == rclpy.lifecycle.TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == rclpy.lifecycle.TransitionCallbackReturn.SUCCESS
    return node


# ---- lifecycle --------------------------------------------------------------------------------------------


def test_lifecycle_services_configure_activate_deactivate_activate_cleanup_shutdown(ros) -> None:
    g = Graph(das_node(activate=False))
    change = g.viewer.create_client(ChangeState, f"{NS}/das/change_state")
    get = g.viewer.create_client(GetState, f"{NS}/das/get_state")

    def transition(tid: int, goal: int) -> None:
        assert g.call(change, ChangeState.Request(transition=Transition(id=tid))).success
        assert g.call(get, GetState.Request()).current_state.id == goal

    def poses_flow() -> bool:
        n = len(g.poses)
        return g.run_until(lambda: len(g.poses) >= n + 3, timeout=10.0)

    try:
        assert g.call(get, GetState.Request()).current_state.id == State.PRIMARY_STATE_UNCONFIGURED
        transition(Transition.TRANSITION_CONFIGURE, State.PRIMARY_STATE_INACTIVE)
        assert g.das.monitor.model_loaded
        transition(Transition.TRANSITION_ACTIVATE, State.PRIMARY_STATE_ACTIVE)
        assert poses_flow()
        transition(Transition.TRANSITION_DEACTIVATE, State.PRIMARY_STATE_INACTIVE)
        g.spin(0.3)
        n = len(g.poses)
        g.run_until(lambda: False, timeout=1.0)  # an inactive node publishes nothing
        assert len(g.poses) == n and g.das.monitor.model_loaded
        transition(Transition.TRANSITION_ACTIVATE, State.PRIMARY_STATE_ACTIVE)
        assert poses_flow()  # re-activation works without reloading
        transition(Transition.TRANSITION_DEACTIVATE, State.PRIMARY_STATE_INACTIVE)
        transition(Transition.TRANSITION_CLEANUP, State.PRIMARY_STATE_UNCONFIGURED)
        assert g.das._pipeline is None and not g.das.monitor.model_loaded
        transition(Transition.TRANSITION_UNCONFIGURED_SHUTDOWN, State.PRIMARY_STATE_FINALIZED)
    finally:
        g.close()


def test_configure_without_a_model_fails_and_leaves_the_node_unconfigured(ros) -> None:
    node = DASNode("das", namespace=NS)  # no estimator injected, model parameter empty
    try:
        assert node.trigger_configure() == rclpy.lifecycle.TransitionCallbackReturn.FAILURE
        assert node._pipeline is None and not node.monitor.model_loaded
    finally:
        node.destroy_node()


class BatchFake(FakeEstimator):
    """A FakeEstimator with the Estimator surface the warm start uses (batch, backend, cfg)."""

    def __init__(self, roots: list[tuple[float, float, float]], backend: str) -> None:
        super().__init__(roots)
        self.backend = SimpleNamespace(name=backend, precision="fp32")
        self.cfg = SimpleNamespace(skeleton=SKELETON.name)

    def batch(self, images: list[np.ndarray], cameras: list[Any]) -> list[Any]:
        return [self(im, c) for im, c in zip(images, cameras, strict=True)]


def test_warm_start_publishes_people_at_once_and_logs_the_switch_to_the_built_backend(ros, monkeypatch) -> None:
    from das_core.engine import warm_start

    quick, built = BatchFake([(0.0, 0.2, 3.0)], "eager"), BatchFake([(-0.5, 0.2, 3.0), (0.5, 0.2, 4.0)], "compile")
    release = threading.Event()
    asked: list[tuple[str, str]] = []

    def from_checkpoint(path: str, *, device: str, backend: str, precision: str, input_scale: float,
                        notify: Any, **options: Any) -> Any:
        asked.append((backend, precision))
        return warm_start.WarmStartEstimator(quick, lambda: release.wait(30) and built,  # type: ignore[arg-type]
                                             name=f"{backend} {precision}", notify=notify)

    monkeypatch.setattr(warm_start.WarmStartEstimator, "from_checkpoint", staticmethod(from_checkpoint))
    # What reaches the node's logger (a /rosout subscriber can miss a message sent before it matched).
    said: list[tuple[str, str]] = []
    log_at = DASNode._log_at
    monkeypatch.setattr(DASNode, "_log_at", lambda self, level, msg: (said.append((level, msg)),
                                                                      log_at(self, level, msg)))
    overrides = [Parameter(k, value=v) for k, v in {"model": "/robot/das_r50", "backend": "compile", "device": "cpu",
                                                   "warm_start": True, "tracking.min_hits": 1}.items()]
    node = DASNode("das", namespace=NS, parameter_overrides=overrides)
    assert node.trigger_configure() == rclpy.lifecycle.TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == rclpy.lifecycle.TransitionCallbackReturn.SUCCESS
    g = Graph(node)
    try:
        assert asked == [("compile", "fp32")]
        assert g.run_until(lambda: len(g.poses) >= 2)  # answered while the backend is still being built
        assert all(len(m.persons) == 1 for m in g.poses) and not built.calls
        release.set()
        assert g.run_until(lambda: any("warm start: compile fp32 answers from now on" in m for _, m in said))
        assert [level for level, _ in said] == ["info"]
        seen = len(g.poses)
        assert g.run_until(lambda: len(g.poses) >= seen + 2)
        assert len(g.poses[-1].persons) == 2 and built.calls  # the built backend answers now
    finally:
        g.close()


# ---- outputs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("camera_qos", [RELIABLE, BEST_EFFORT], ids=["reliable_camera", "best_effort_camera"])
def test_poses_carry_the_input_image_header(ros, camera_qos: QoSProfile) -> None:
    g = Graph(das_node(**{"tracking.min_hits": 1}), camera_qos=camera_qos)
    sent: set[tuple[int, int]] = set()
    try:
        assert g.run_until(lambda: len(g.poses) >= 3, publish=lambda: sent.add(g.publish()))
        for msg in g.poses:
            assert msg.header.frame_id == "cam_optical"
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec) in sent
        msg = g.poses[-1]
        assert msg.skeleton == SKELETON.name and list(msg.joint_names) == list(SKELETON.joint_names)
        assert (msg.image_width, msg.image_height) == (W, H) and len(msg.persons) == 1
        p = msg.persons[0]
        assert len(p.joints) == SKELETON.num_joints and abs(p.root.z - 3.0) < 1e-4 and p.id == 1
        assert p.tracking_state == das_msgs.Person3DPose.TRACKING_CONFIRMED
        assert all(np.isfinite([j.position.x, j.position.y, j.position.z]).all() for j in p.joints)
    finally:
        g.close()


def test_a_frame_with_nobody_gives_an_empty_persons_message(ros) -> None:
    g = Graph(das_node(FakeEstimator([])))
    try:
        assert g.run_until(lambda: len(g.poses) >= 2)
        assert all(len(m.persons) == 0 and m.header.frame_id == "cam_optical" for m in g.poses)
        assert list(g.poses[-1].joint_names) == list(SKELETON.joint_names)
    finally:
        g.close()


def test_markers_start_with_deleteall_and_carry_the_image_header(ros) -> None:
    g = Graph(das_node(FakeEstimator([(0.0, 0.2, 3.0), (1.0, 0.2, 4.0)])))
    try:
        assert g.run_until(lambda: len(g.markers) >= 2 and len(g.poses) >= 2)
        g.spin(0.2)
        pose_stamps = {(p.header.stamp.sec, p.header.stamp.nanosec) for p in g.poses}
        for arr in g.markers:
            m = arr.markers
            assert m[0].action == Marker.DELETEALL
            assert all(x.header == m[0].header for x in m) and m[0].header.frame_id == "cam_optical"
            assert (m[0].header.stamp.sec, m[0].header.stamp.nanosec) in pose_stamps  # the image's own stamp
        assert len(g.markers[-1].markers) == 1 + 3 * 2  # DELETEALL + bones, joints, id text per person
    finally:
        g.close()


def test_compressed_input_is_decoded_and_published(ros) -> None:
    est = FakeEstimator()
    g = Graph(das_node(est, image_transport="compressed"), compressed=True)
    try:
        assert g.das._subs[0].topic_name == f"{NS}/image/compressed"
        assert g.run_until(lambda: len(g.poses) >= 2)
        assert est.calls[-1][0] == (H, W, 3) and len(g.poses[-1].persons) == 1
        assert (g.poses[-1].image_width, g.poses[-1].image_height) == (W, H)
    finally:
        g.close()


def test_debug_image_is_computed_and_published_only_while_subscribed(ros, monkeypatch) -> None:
    drawn = []
    real_draw = node_module.draw_persons
    monkeypatch.setattr(node_module, "draw_persons", lambda *a, **k: drawn.append(1) or real_draw(*a, **k))
    g = Graph(das_node(debug_image=True))
    try:
        assert g.run_until(lambda: len(g.poses) >= 5)
        assert not drawn  # nobody subscribed: no overlay computed
        sub = g.viewer.create_subscription(Image, "debug_image", g.debug.append, qos_profile_sensor_data)
        assert g.run_until(lambda: len(g.debug) >= 2)
        img = g.debug[-1]
        assert (img.width, img.height, img.encoding) == (W, H, "rgb8") and img.header.frame_id == "cam_optical"
        g.viewer.destroy_subscription(sub)
        dbg_pub = g.das._pubs["debug_image"]
        assert g.run_until(lambda: dbg_pub.get_subscription_count() == 0, timeout=5.0)
        g.spin(0.2)
        n_drawn, n_poses = len(drawn), len(g.poses)
        assert g.run_until(lambda: len(g.poses) >= n_poses + 5)
        assert len(drawn) == n_drawn
    finally:
        g.close()


# ---- diagnostics ------------------------------------------------------------------------------------------


def test_diagnostics_levels_follow_what_the_node_can_do(ros) -> None:
    g = Graph(das_node(activate=False, diagnostics_period=0.1))
    g.das.monitor.stale_after = 0.5

    def latest_level() -> int | None:
        st = g.das_status()
        return level(st[-1]) if st else None

    def wait_level(lv: int, **kw: Any) -> bool:
        g.diagnostics.clear()
        return g.run_until(lambda: latest_level() == lv, **kw)

    try:
        assert wait_level(ERROR, publish=lambda: None) and "not loaded" in g.das_status()[-1].message
        g.das.trigger_configure()
        g.das.trigger_activate()
        assert wait_level(WARN, publish=lambda: None) and "no image" in g.das_status()[-1].message
        assert wait_level(OK)
        values = {kv.key: kv.value for kv in g.das_status()[-1].values}
        assert int(values["frames published"]) > 0 and values["camera_info received"] == "true"
        assert values["frames lost before the node (stamp gaps)"] == "0"
        assert wait_level(ERROR, publish=lambda: g.publish(camera_info(f=0.0)))
        assert "uncalibrated" in g.das_status()[-1].message
    finally:
        g.close()


def test_frames_missing_from_the_camera_stream_are_counted_in_diagnostics(ros) -> None:
    g = Graph(das_node(diagnostics_period=0.1))

    def publish_with_gaps() -> None:
        if g.frame >= 10 and g.frame % 5 == 0:
            g.frame += 1  # this frame never leaves the "driver": its stamp is missing from the stream
        g.publish()

    def lost() -> int:
        st = g.das_status()
        return int({kv.key: kv.value for kv in st[-1].values}["frames lost before the node (stamp gaps)"]) if st else 0

    try:
        assert g.run_until(lambda: g.frame >= 40, publish=publish_with_gaps, period=0.03)
        g.spin(0.3)
        assert lost() == g.das.monitor.gaps.lost_total >= 4
        assert g.das.monitor.gaps.period == pytest.approx(0.05)
    finally:
        g.close()


# ---- parameters -------------------------------------------------------------------------------------------


def test_parameters_are_declared_with_descriptions_and_ranges(ros) -> None:
    g = Graph(das_node(activate=False))
    describe = g.viewer.create_client(DescribeParameters, f"{NS}/das/describe_parameters")
    try:
        names = [p.name for p in P.PARAMS]
        got = {d.name: d for d in g.call(describe, DescribeParameters.Request(names=names)).descriptors}
        types = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
                 float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
                 list: ParameterType.PARAMETER_STRING_ARRAY}
        for p in P.PARAMS:
            d = got[p.name]
            assert d.type == types[p.type] and d.description == p.description, p.name
            if p.type is float and p.min is not None:
                r = d.floating_point_range[0]
                assert (r.from_value, r.to_value) == (p.min, p.max), p.name
            if p.type is int and p.min is not None:
                r = d.integer_range[0]
                assert (r.from_value, r.to_value) == (p.min, p.max), p.name
    finally:
        g.close()


def test_a_bad_parameter_value_is_rejected_with_a_reason(ros) -> None:
    g = Graph(das_node())
    setp = g.viewer.create_client(SetParameters, f"{NS}/das/set_parameters")
    try:
        bad = [Parameter("backend", value="caffe"), Parameter("tracking.max_distance", value=25.0),
               Parameter("device", value="gpu0")]
        for prm in bad:
            res = g.call(setp, SetParameters.Request(parameters=[prm.to_parameter_msg()])).results[0]
            assert not res.successful and res.reason, prm.name
        assert g.das.get_parameter("backend").value == "eager"
        assert g.das.get_parameter("tracking.max_distance").value == pytest.approx(0.6)
    finally:
        g.close()


def test_a_live_parameter_change_takes_effect_at_the_next_frames(ros) -> None:
    g = Graph(das_node(FakeEstimator([(0.0, 0.2, 3.0)])))  # the fake's score is 0.9
    setp = g.viewer.create_client(SetParameters, f"{NS}/das/set_parameters")
    try:
        assert g.run_until(lambda: g.poses and len(g.poses[-1].persons) == 1)
        msg = Parameter("min_score", value=0.95).to_parameter_msg()
        assert g.call(setp, SetParameters.Request(parameters=[msg])).results[0].successful
        after = g.stamp(g.frame)
        assert g.run_until(lambda: sum((m.header.stamp.sec, m.header.stamp.nanosec) >= after for m in g.poses) >= 3)
        assert all(len(m.persons) == 0 for m in g.poses if (m.header.stamp.sec, m.header.stamp.nanosec) >= after)
    finally:
        g.close()


# ---- bad input --------------------------------------------------------------------------------------------

GOOD = np.full((H, W, 3), 100, np.uint8)
BAD_INPUTS = {
    # case: (publish kwargs, counted reason, text in the log)
    "K_all_zeros": (dict(info=camera_info(f=0.0)), "bad_camera_info", "uncalibrated"),
    "unknown_encoding": (dict(encoding="32FC1"), "bad_image", "32FC1"),
    "short_data": (dict(data=GOOD.tobytes()[: W * 3 * (H - 2)]), "bad_image", "bad_image"),
    "image_and_camera_info_sizes_differ": (dict(info=camera_info(width=64, height=64)), "bad_camera_info",
                                           "bad_camera_info"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_logged_counted_not_published_and_the_node_keeps_running(ros, case: str) -> None:
    kwargs, reason, text = BAD_INPUTS[case]
    g = Graph(das_node())
    try:
        assert g.run_until(lambda: g.das.monitor.bad_frames.get(reason, 0) >= 3,
                           publish=lambda: g.publish(**kwargs))
        assert g.run_until(lambda: bool(g.das_logs(text)), publish=lambda: None, timeout=3.0), g.logs
        assert not g.poses and not g.markers
        assert g.das.monitor.published_total == 0
        assert g.run_until(lambda: len(g.poses) >= 2)  # good frames again: the same node publishes
        assert len(g.poses[-1].persons) == 1
    finally:
        g.close()


def test_uncalibrated_camera_with_fallback_hfov_uses_it_and_warns_once(ros) -> None:
    est = FakeEstimator()
    g = Graph(das_node(est, fallback_hfov_deg=60.0))
    try:
        assert g.run_until(lambda: len(g.poses) >= 5, publish=lambda: g.publish(camera_info(f=0.0)))
        expected = Intrinsics.from_fov(W, H, 60.0)
        assert est.calls[-1][1].fx == pytest.approx(expected.fx) and len(g.poses[-1].persons) == 1
        g.spin(0.3)
        assert len(g.das_logs("fallback_hfov_deg")) == 1  # throttled: one warning for many frames
        assert g.das.monitor.camera_info_error is None
    finally:
        g.close()


def test_a_camera_driver_that_stops_and_restarts_is_followed(ros) -> None:
    g = Graph(das_node(diagnostics_period=0.1))
    g.das.monitor.stale_after = 0.5
    try:
        assert g.run_until(lambda: len(g.poses) >= 3)
        g.stop_camera()
        g.diagnostics.clear()
        assert g.run_until(lambda: any("no image" in s.message for s in g.das_status()), timeout=5.0)
        n = len(g.poses)
        g.stamp0 += 60.0  # the restarted driver stamps with the time it runs again
        g.start_camera()
        assert g.run_until(lambda: len(g.poses) >= n + 3)
        assert g.das.monitor.gaps.restarts >= 1 and g.das.monitor.gaps.lost_total == 0
        g.diagnostics.clear()
        assert g.run_until(lambda: g.das_status() and level(g.das_status()[-1]) == OK, timeout=5.0)
    finally:
        g.close()


# ---- the executable -------------------------------------------------------------------------------------


def _synthetic_person_frame() -> Any:
    from das_core.data.synthetic import SceneConfig, make_scene

    cfg = SceneConfig(min_size=320, max_size=320, aspects=(4 / 3,), aspect_probs=(1.0,), people_range=(1, 1),
                      depth_range=(2.5, 3.5), nonsquare_prob=0.0, principal_jitter=0.0)
    return make_scene(0, "val", 0, cfg)


def test_das_node_process_with_the_shipped_model_publishes_people_and_stops_on_sigint_within_2_s(ros) -> None:
    """The installed executable (what ``ros2 run das_ros das_node`` starts) with ``--autostart``, as
    docs/ROS.md "ROS 2 from PyPI" runs it."""
    from ament_index_python.packages import get_package_prefix

    from das_ros.apps.infer import shipped_checkpoint

    exe = Path(get_package_prefix("das_ros")) / "lib" / "das_ros" / "das_node"
    assert exe.is_file(), f"{exe} missing: rebuild with scripts/ros2_from_pypi.sh"
    scene = _synthetic_person_frame()
    ns = "/das_proc"
    proc = subprocess.Popen(
        [sys.executable, str(exe), "--autostart", "--ros-args", "-r", f"__ns:={ns}",
         "-p", f"model:={shipped_checkpoint()}",
         "-p", "device:=cpu", "-p", "tracking.min_hits:=1", "-p", "diagnostics_period:=0.2"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    g = Graph(None)
    try:
        get = g.viewer.create_client(GetState, f"{ns}/das/get_state")
        assert g.run_until(lambda: g.call(get, GetState.Request(), timeout=120.0).current_state.id
                           == State.PRIMARY_STATE_ACTIVE, timeout=120.0, period=0.5, publish=lambda: None)
        cam = rclpy.create_node("camera2", namespace=ns)
        img_pub = cam.create_publisher(Image, "image", RELIABLE)
        info_pub = cam.create_publisher(CameraInfo, "camera_info", RELIABLE)
        poses: list[Any] = []
        g.viewer.create_subscription(das_msgs.MultiPerson3DPose, f"{ns}/poses", poses.append, 10)
        k = scene.camera
        h, w = scene.image.shape[:2]
        info = CameraInfo(width=w, height=h, k=[k.fx, 0.0, k.cx, 0.0, k.fy, k.cy, 0.0, 0.0, 1.0])
        img = Image(height=h, width=w, encoding="rgb8", step=w * 3)
        img.data = scene.image.tobytes()
        img.header.frame_id = "cam_optical"

        def publish() -> None:
            info_pub.publish(info)
            img_pub.publish(img)

        assert g.run_until(lambda: bool(poses) and len(poses[-1].persons) > 0, timeout=120.0, period=0.5,
                           publish=publish), "the shipped model published nobody"
        root = poses[-1].persons[0].root
        assert abs(root.z - float(scene.joints_3d[0, SKELETON.root, 2])) < 1.0
        cam.destroy_node()

        def idle() -> bool:  # every received frame published or dropped: no inference in flight
            st = g.das_status()
            v = {kv.key: kv.value for kv in st[-1].values} if st else {}
            return bool(v) and int(v["frames received"]) == int(v["frames published"]) + int(
                v["frames dropped (busy)"])

        g.diagnostics.clear()
        assert g.run_until(idle, timeout=60.0)  # the 2 s are the shutdown, not the end of an inference
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=10.0)
        took = time.monotonic() - t0
        assert rc == 0 and took < 2.0, (rc, took, proc.stdout.read() if proc.stdout else "")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        g.close()
