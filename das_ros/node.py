"""The rclpy shell around ``FramePipeline``: wiring, threads and logging only (everything else is tested
without ROS in the pure modules).

Lifecycle (rclpy.lifecycle, Humble and Jazzy):
  configure  – read parameters, load the model (das_core.engine.estimator.Estimator), create publishers
  activate   – subscribe ``image`` (or ``<image>/compressed``) and ``camera_info`` (SensorDataQoS), start the worker
  deactivate – unsubscribe, stop the worker (the model stays loaded)
  cleanup    – drop the model and free GPU memory; shutdown does the same

Topics (relative; the launch file puts them in the ``das`` namespace):
  in:  image [sensor_msgs/Image] or image/compressed [sensor_msgs/CompressedImage], camera_info [CameraInfo]
  out: poses [das_ros/MultiPerson3DPose], markers [visualization_msgs/MarkerArray],
       debug_image [sensor_msgs/Image] (only computed while subscribed), /diagnostics [DiagnosticArray]

Several cameras (string-array parameter ``cameras``, e.g. ``[front, left]``): every topic above except
/diagnostics moves under each camera's namespace (``front/image`` → ``front/poses``), and each camera has its own
FramePipeline (camera_info, tracker, counters), its own newest-frame slot and worker, and its own
DiagnosticStatus (beside the node-level one); all share the ONE model: frames that wait for it together run as
one ``Estimator.batch`` (das_ros.batching.BatchingModel: opportunistic, no timer, so a camera alone adds no delay).

``das_node --autostart`` configures and activates the node itself (no ``ros2 lifecycle`` needed).

Only the newest image is kept (one slot): a frame that arrives while another waits replaces it and is
counted as dropped, so the output never lags behind the camera (Azure Kinect driver issue #109).
"""

from __future__ import annotations

import array
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rclpy
import rclpy.executors
import rclpy.utilities
from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterTypeException, ParameterUninitializedException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions

from das_core.overlay import draw_persons
from das_ros import params as P
from das_ros.batching import BatchingModel
from das_ros.conversions import (
    CameraInfoError,
    UncalibratedCameraError,
    intrinsics_from_camera_info,
    rgb_to_image_fields,
)
from das_ros.diagnostics import DiagnosticsMonitor, combine, diagnostic_array
from das_ros.factory import RclpyFactory
from das_ros.pipeline import (
    FramePipeline,
    PipelineSettings,
    load_estimator,
    process_age_s,
    skeleton_of,
    stamp_seconds,
)
from das_ros.worker import LatestFrameWorker

__all__ = ["CAMERA_INFO_TOPIC", "IMAGE_TOPIC", "DASNode", "main"]

# The node's inputs, relative names: what launch/das.launch.py remaps (tests/ros/test_launch.py reads these).
IMAGE_TOPIC = "image"
CAMERA_INFO_TOPIC = "camera_info"

# SensorDataQoS with depth 1: best effort matches reliable and best-effort publishers (REP-2003), and
# one slot because only the newest image matters (the worker's own slot drops older ones anyway).
INPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                       durability=DurabilityPolicy.VOLATILE)

_PTYPE = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING,
          list: ParameterType.PARAMETER_STRING_ARRAY}


def _event_callbacks(node: Any, kind: str, topic: str, on_lost: Callable[[int], None] | None = None) -> Any:
    """Publisher/subscription event callbacks that log an incompatible QoS loudly (the classic "runs but
    nothing arrives" problem) and, for a subscription, pass the middleware's "message lost" counts to
    ``on_lost``. ``rclpy.event_handler`` (Iron+) or ``rclpy.qos_event`` (Humble)."""
    try:
        from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
    except ImportError:
        from rclpy.qos_event import PublisherEventCallbacks, SubscriptionEventCallbacks

    def incompatible(info: Any) -> None:
        node.get_logger().error(
            f"incompatible QoS on {kind} '{topic}': policy {getattr(info, 'last_policy_kind', '?')} "
            f"({getattr(info, 'total_count', '?')} endpoints); see docs/ROS.md 'QoS notes'",
            throttle_duration_sec=10.0)

    if kind == "publisher":
        return PublisherEventCallbacks(incompatible_qos=incompatible)
    if on_lost is None:
        return SubscriptionEventCallbacks(incompatible_qos=incompatible)

    def lost(info: Any) -> None:
        on_lost(int(getattr(info, "total_count_change", 0)))

    return SubscriptionEventCallbacks(incompatible_qos=incompatible, message_lost=lost)


def descriptor(p: P.Param) -> ParameterDescriptor:
    """``ParameterDescriptor`` of one ``das_ros.params`` entry (type, description, range)."""
    d = ParameterDescriptor(name=p.name, type=_PTYPE[p.type], description=p.description,
                            additional_constraints=p.constraint_text())
    if p.type is float and p.min is not None and p.max is not None:
        d.floating_point_range = [FloatingPointRange(from_value=float(p.min), to_value=float(p.max), step=0.0)]
    if p.type is int and p.min is not None and p.max is not None:
        d.integer_range = [IntegerRange(from_value=int(p.min), to_value=int(p.max), step=1)]
    return d


@dataclass
class _Camera:
    """One input camera: its namespace ("" = the node's own topics), pipeline, worker and publishers; with
    several cameras also its own diagnostics (``label``: the resolved namespace, in its status name)."""

    ns: str
    pipeline: FramePipeline
    pubs: dict[str, Any] = field(default_factory=dict)
    subs: list[Any] = field(default_factory=list)
    worker: LatestFrameWorker[tuple[Any, bool]] | None = None
    monitor: DiagnosticsMonitor | None = None
    label: str = ""
    first_pose_logged: bool = False

    def topic(self, name: str) -> str:
        return f"{self.ns}/{name}" if self.ns else name


class DASNode(LifecycleNode):
    """Managed node; ``estimator`` may be injected (tests, demos): then the ``model`` parameter is not used."""

    def __init__(self, node_name: str = "das", *, estimator: Any = None, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._injected_estimator = estimator
        self.make = RclpyFactory()
        for p in P.PARAMS:
            if p.type is list:
                self._declare_string_array(p)
            else:
                self.declare_parameter(p.name, p.default, descriptor(p))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._values: dict[str, Any] = {p.name: self.get_parameter(p.name).value for p in P.PARAMS}

        self._estimator: Any = None
        self._model: Any = None  # the estimator, or a BatchingModel around it with several cameras
        self._pipeline: FramePipeline | None = None  # the first camera's (the only one by default)
        self._cameras: list[_Camera] = []
        self._pubs: dict[str, Any] = {}  # every camera's, by topic name
        self._subs: list[Any] = []
        self._compressed = False
        self._camera_info_errors: dict[str, str] = {}  # camera namespace → why its camera_info is refused

        self.monitor = DiagnosticsMonitor(name=f"{self.get_name()}: DAS 3D pose", hardware_id=self.get_fully_qualified_name())
        self._diag_pub = self.create_publisher(self.make.cls("diagnostic_msgs/msg/DiagnosticArray"), "/diagnostics",
                                               10)
        self._diag_timer = self.create_timer(float(self._values["diagnostics_period"]), self._publish_diagnostics)

    # ---- parameters -----------------------------------------------------------------------------------
    def _declare_string_array(self, p: P.Param) -> None:
        """Declare a string-array parameter whose default may be empty.

        rclpy infers a declared parameter's type from its default, and an empty list infers as BYTE_ARRAY
        (rclpy ``Parameter.Type.from_parameter_value``; the descriptor's type is overwritten), which would then
        refuse every string list. So the type is declared explicitly, without a value, and the default is set
        afterwards when no override gave one. An override of ``[]`` (``-p cameras:=[]`` or ``cameras: []`` in a
        parameters file) reaches rclpy without a type (NOT_SET), so it also ends up as the empty default.
        """
        try:
            self.declare_parameter(p.name, Parameter.Type.STRING_ARRAY, descriptor(p))
        except InvalidParameterTypeException as exc:
            raise P.ParamError(f"parameter {p.name!r} is a string array, e.g. '{p.name}: [front, rear]' in a "
                               f"parameters file or -p '{p.name}:=[front, rear]' ({exc})") from None
        try:
            self.get_parameter(p.name)
        except ParameterUninitializedException:
            self.set_parameters([Parameter(p.name, Parameter.Type.STRING_ARRAY, list(p.default))])

    def _on_set_parameters(self, parameters: list[Any]) -> SetParametersResult:
        new = dict(self._values)
        for prm in parameters:
            if prm.name not in new:
                continue  # use_sim_time, qos_overrides.*: not ours
            try:
                new[prm.name] = P.validate(prm.name, prm.value)
            except P.ParamError as exc:
                return SetParametersResult(successful=False, reason=str(exc))
        try:
            settings = PipelineSettings.from_params(new)
        except (P.ParamError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._values = new
        for cam in self._cameras:
            cam.pipeline.update_settings(settings)  # dynamic ones apply at the next frame
        return SetParametersResult(successful=True)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- lifecycle ------------------------------------------------------------------------------------
    def _log_at(self, level: str, message: str) -> None:
        """Messages from other threads (the warm start's switch) at their level in this node's log."""
        logger = self.get_logger()
        (logger.warning if level == "warning" else logger.info)(message)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        v = self._values
        try:
            namespaces = P.camera_namespaces(v["cameras"]) or [""]
        except P.ParamError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        try:
            est = self._injected_estimator or load_estimator(
                str(v["model"]), str(v["device"]), str(v["backend"]), str(v["precision"]),
                input_scale=float(v["input_scale"]), threads=int(v["threads"]),
                int8_calibration=str(v["int8_calibration"]), warm_start=bool(v["warm_start"]),
                notify=self._log_at)
        except Exception as exc:  # noqa: BLE001 - any load failure must leave the node unconfigured, not dead
            self.get_logger().error(f"cannot load the model: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._estimator = est
        # Several cameras: frames that wait for the model together run as one Estimator.batch (das_ros.batching).
        self._model = est if len(namespaces) == 1 else BatchingModel(est, max_batch=len(namespaces))
        model = self._model
        skeleton = skeleton_of(est)
        self._cameras = [_Camera(ns, FramePipeline(model, skeleton, self.make, PipelineSettings.from_params(v)))
                         for ns in namespaces]
        self._pipeline = self._cameras[0].pipeline
        self._camera_info_errors = {}
        if len(self._cameras) > 1:
            # One DiagnosticStatus per camera (own counters, rates, level) beside the node-level one.
            resolve = getattr(self, "resolve_topic_name", None)
            for cam in self._cameras:
                cam.label = resolve(cam.ns) if resolve else cam.ns
                cam.monitor = DiagnosticsMonitor(name=f"{self.monitor.name}, camera {cam.label}",
                                                 hardware_id=self.monitor.hardware_id)
        for m in self._all_monitors():
            m.model_loaded = True
            # The resolved device ("auto" → cuda:0 / cpu) when the estimator reports it.
            m.backend, m.precision = str(v["backend"]), str(v["precision"])
            m.device = str(getattr(est, "device", v["device"]))
        self.destroy_timer(self._diag_timer)
        self._diag_timer = self.create_timer(float(v["diagnostics_period"]), self._publish_diagnostics)
        reliable = QoSProfile(depth=10)
        for cam in self._cameras:
            for name, type_name, qos in (("poses", "das_ros/msg/MultiPerson3DPose", reliable),
                                         ("markers", "visualization_msgs/msg/MarkerArray", reliable),
                                         ("debug_image", "sensor_msgs/msg/Image", qos_profile_sensor_data)):
                topic = cam.topic(name)
                events = _event_callbacks(self, "publisher", topic) if qos is reliable else None
                cam.pubs[name] = self.create_lifecycle_publisher(self.make.cls(type_name), topic, qos,
                                                                 event_callbacks=events)
                self._pubs[topic] = cam.pubs[name]
        cameras = f", cameras {[c.ns for c in self._cameras]}" if self._cameras[0].ns else ""
        self.get_logger().info(f"configured: skeleton {skeleton.name}, backend {v['backend']}, "
                               f"device {self.monitor.device}, precision {v['precision']}{cameras}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._compressed = self._values["image_transport"] == "compressed"
        overrides = QoSOverridingOptions.with_default_policies()
        resolve = getattr(self, "resolve_topic_name", None)
        for cam in self._cameras:
            if self._compressed:
                # The remapped image topic + "/compressed" (image_transport's convention), so resolve first.
                image_topic = (resolve(cam.topic(IMAGE_TOPIC)) if resolve else cam.topic(IMAGE_TOPIC)) + "/compressed"
                image_type = self.make.cls("sensor_msgs/msg/CompressedImage")
            else:
                image_topic, image_type = cam.topic(IMAGE_TOPIC), self.make.cls("sensor_msgs/msg/Image")
            info_topic = cam.topic(CAMERA_INFO_TOPIC)
            cam.subs = [
                self.create_subscription(image_type, image_topic, lambda m, c=cam: self._on_image(c, m), INPUT_QOS,
                                         qos_overriding_options=overrides,
                                         event_callbacks=_event_callbacks(
                                             self, "subscription", image_topic,
                                             lambda n, c=cam: self._on_image_lost(c, n))),
                self.create_subscription(self.make.cls("sensor_msgs/msg/CameraInfo"), info_topic,
                                         lambda m, c=cam: self._on_camera_info(c, m), INPUT_QOS,
                                         qos_overriding_options=overrides,
                                         event_callbacks=_event_callbacks(self, "subscription", info_topic)),
            ]
            self._subs.extend(cam.subs)
            cam.pipeline.start_clock()  # the first frame's build is timed and logged (_process)
            cam.first_pose_logged = False
            cam.worker = LatestFrameWorker(lambda item, c=cam: self._work(c, item),
                                           name=f"das_worker_{cam.ns}" if cam.ns else "das_worker")
            cam.worker.start()
            self.get_logger().info(f"active: subscribed to {cam.subs[0].topic_name} and {cam.subs[1].topic_name} "
                                   "(best effort, keep last 1: matches reliable and best-effort publishers)")
        return super().on_activate(state)  # activates the lifecycle publishers

    def _stop_worker(self) -> None:
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        for cam in self._cameras:
            cam.subs = []
            if cam.worker is not None:
                cam.worker.stop(timeout=10.0)  # finishes the frame in progress; a waiting one is dropped
                cam.worker = None

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        return super().on_deactivate(state)

    def _release(self) -> None:
        self._stop_worker()
        destroy = getattr(self, "destroy_lifecycle_publisher", self.destroy_publisher)
        for pub in self._pubs.values():
            destroy(pub)
        self._pubs = {}
        self._cameras = []
        self._pipeline = None
        self._estimator = None
        self._model = None
        self.monitor.model_loaded = False
        gc.collect()
        # Free cached GPU memory so an inactive node does not hold VRAM. Only if a model imported torch:
        # importing it here would add seconds to a Ctrl-C of a node that never loaded one.
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    # ---- callbacks (subscription thread: no work here) ------------------------------------------------
    def _all_monitors(self) -> list[DiagnosticsMonitor]:
        return [self.monitor] + [c.monitor for c in self._cameras if c.monitor is not None]

    def _monitors(self, cam: _Camera) -> tuple[DiagnosticsMonitor, ...]:
        """The node-level monitor (sums over cameras) and the camera's own, where it has one."""
        return (self.monitor,) if cam.monitor is None else (self.monitor, cam.monitor)

    def _on_camera_info(self, cam: _Camera, msg: Any) -> None:
        if not self._cameras:
            return
        try:
            intrinsics_from_camera_info(msg, use_rectified=bool(self._values["use_rectified_intrinsics"]))
            self._camera_info_ok(cam)
            for m in self._monitors(cam):
                m.extra.pop("camera_info", None)
        except UncalibratedCameraError as exc:
            hfov = float(self._values["fallback_hfov_deg"])
            if hfov > 0:
                self._camera_info_ok(cam)
                for m in self._monitors(cam):
                    m.extra["camera_info"] = f"uncalibrated (K = 0): using fallback_hfov_deg = {hfov:g}"
                self.get_logger().warning(f"camera_info: {exc}; using fallback_hfov_deg = {hfov:g} degrees "
                                          "(3D positions are only as good as that guess)",
                                          throttle_duration_sec=30.0)
            else:
                self._camera_info_refused(cam, exc)
        except CameraInfoError as exc:
            self._camera_info_refused(cam, exc)
        for m in self._monitors(cam):
            m.camera_info_received = True
        cam.pipeline.set_camera_info(msg)

    def _camera_info_ok(self, cam: _Camera) -> None:
        # Per camera: a good camera's info must not clear the error of another camera.
        self._camera_info_errors.pop(cam.ns, None)
        self._show_camera_info_errors()
        if cam.monitor is not None:
            cam.monitor.camera_info_error = None

    def _camera_info_refused(self, cam: _Camera, exc: CameraInfoError) -> None:
        self._camera_info_errors[cam.ns] = f"{cam.ns}: {exc}" if cam.ns else str(exc)
        self._show_camera_info_errors()
        if cam.monitor is not None:
            cam.monitor.camera_info_error = str(exc)
        self.get_logger().error(f"camera_info on {cam.subs[1].topic_name if len(cam.subs) > 1 else ''}: "
                                f"{exc}", throttle_duration_sec=10.0)

    def _show_camera_info_errors(self) -> None:
        errors = list(self._camera_info_errors.values())
        self.monitor.camera_info_error = "; ".join(errors) if errors else None

    def _on_image_lost(self, cam: _Camera, count: int) -> None:
        now = self._now()
        for m in self._monitors(cam):
            m.on_lost_reported(now, count)

    def _on_image(self, cam: _Camera, msg: Any) -> None:
        now, stamp = self._now(), stamp_seconds(msg.header)
        self.monitor.on_received(now, stamp, cam.ns)
        if cam.monitor is not None:
            cam.monitor.on_received(now, stamp)
        worker = cam.worker
        if worker is not None and worker.submit((msg, self._compressed)):
            for m in self._monitors(cam):
                m.on_dropped()  # it replaced a frame the worker had not started yet

    # ---- worker thread --------------------------------------------------------------------------------
    def _work(self, cam: _Camera, item: tuple[Any, bool]) -> None:
        msg, compressed = item
        try:
            self._process(cam, msg, compressed)
        except Exception as exc:  # noqa: BLE001 - never let one frame kill the worker
            self.get_logger().error(f"unexpected error while publishing a frame: {exc!r}",
                                    throttle_duration_sec=5.0)

    def _process(self, cam: _Camera, msg: Any, compressed: bool) -> None:
        pipeline = cam.pipeline
        if self._pipeline is None or not cam.pubs:  # released while this frame waited
            return
        t0 = time.perf_counter()
        result = pipeline.process(msg, compressed=compressed)
        if not result.ok:
            for m in self._monitors(cam):
                m.on_bad_frame(result.reason or "", result.error or "")
            where = f" on camera '{cam.ns}'" if cam.ns else ""
            self.get_logger().warning(f"frame skipped{where} ({result.reason}, {pipeline.counters[result.reason or '']} "
                                      f"so far): {result.error}", throttle_duration_sec=5.0)
            return
        cam.pubs["poses"].publish(result.poses)
        if pipeline.first_pose_s is not None and not cam.first_pose_logged:
            cam.first_pose_logged = True
            age = process_age_s()
            where = f" on camera '{cam.ns}'" if cam.ns else ""
            # What a restarted robot is blind for: the compiled backend's build (or its cache load) is in it.
            self.get_logger().info(f"first pose{where} {pipeline.first_pose_s:.1f} s after activation"
                                   + (f" ({age:.1f} s after the process started)" if age is not None else ""))
        if result.markers is not None:
            cam.pubs["markers"].publish(result.markers)
        dbg = cam.pubs.get("debug_image")
        if (self._values["debug_image"] and dbg is not None and dbg.get_subscription_count() > 0
                and result.rgb is not None and result.persons is not None):
            over = draw_persons(result.rgb, result.persons, pipeline.skeleton,
                                float(self._values["joint_confidence_threshold"]))
            fields = rgb_to_image_fields(over)
            # array.array: rclpy's fast path; bytes would be checked element by element in Python.
            fields["data"] = array.array("B", fields["data"])
            dbg.publish(self.make("sensor_msgs/msg/Image", header=result.header, **fields))
        now, stamp, proc = self._now(), stamp_seconds(result.header), time.perf_counter() - t0
        for m in self._monitors(cam):
            m.on_published(now, stamp, proc, len(result.persons) if result.persons is not None else 0,
                           result.timings_ms)

    def _publish_diagnostics(self) -> None:
        torch = sys.modules.get("torch")  # only if the model loaded it: diagnostics never import torch
        if torch is not None and self._estimator is not None and torch.cuda.is_available():
            self.monitor.extra["gpu memory allocated (MB)"] = f"{torch.cuda.memory_allocated() / 2**20:.0f}"
            self.monitor.extra["gpu memory reserved (MB)"] = f"{torch.cuda.memory_reserved() / 2**20:.0f}"
        model = self._model
        if isinstance(model, BatchingModel) and model.batches:
            self.monitor.extra["cameras"] = str(len(self._cameras))
            self.monitor.extra["images per model run (mean, max)"] = (
                f"{model.frames / model.batches:.2f}, {model.largest_batch}")
        now = self.get_clock().now()
        t = now.nanoseconds * 1e-9
        header = self.make("std_msgs/msg/Header", stamp=now.to_msg(), frame_id="")
        node = self.monitor.status(t)
        cams = [(c.label, c.monitor) for c in list(self._cameras) if c.monitor is not None]
        per_camera = [(label, m, m.status(t)) for label, m in cams]
        if per_camera:
            node = combine(node, {label: st for label, _, st in per_camera})
        statuses = [(self.monitor.name, self.monitor.hardware_id, node)]
        statuses += [(m.name, m.hardware_id, st) for _, m, st in per_camera]
        self._diag_pub.publish(diagnostic_array(self.make, header, statuses))


def main(args: list[str] | None = None) -> int:
    """Entry point of the ``das_node`` executable. ``--autostart`` (before ``--ros-args``) configures and
    activates the node itself, for machines without ``ros2 lifecycle`` (ROS 2 from PyPI has no ros2cli)."""
    argv = list(sys.argv if args is None else args)
    rclpy.init(args=argv)
    autostart = "--autostart" in rclpy.utilities.remove_ros_args(argv)[1:]
    node = DASNode()
    rc = 0
    try:
        if autostart and not (node.trigger_configure() == TransitionCallbackReturn.SUCCESS
                              and node.trigger_activate() == TransitionCallbackReturn.SUCCESS):
            node.get_logger().error("--autostart: configure/activate failed (see the error above)")
            rc = 1
        else:
            rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        try:
            node._release()
            node.destroy_node()
        except Exception:  # noqa: BLE001 - the context may already be shut down by Ctrl-C
            pass
        if rclpy.ok():
            rclpy.shutdown()
    return rc
