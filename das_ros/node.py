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
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions

from das_core.overlay import draw_persons
from das_ros import params as P
from das_ros.conversions import (
    CameraInfoError,
    UncalibratedCameraError,
    intrinsics_from_camera_info,
    rgb_to_image_fields,
)
from das_ros.diagnostics import DiagnosticsMonitor
from das_ros.factory import RclpyFactory
from das_ros.pipeline import FramePipeline, PipelineSettings, load_estimator, skeleton_of, stamp_seconds
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
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


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


class DASNode(LifecycleNode):
    """Managed node; ``estimator`` may be injected (tests, demos): then the ``model`` parameter is not used."""

    def __init__(self, node_name: str = "das", *, estimator: Any = None, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self._injected_estimator = estimator
        self.make = RclpyFactory()
        for p in P.PARAMS:
            self.declare_parameter(p.name, p.default, descriptor(p))
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._values: dict[str, Any] = {p.name: self.get_parameter(p.name).value for p in P.PARAMS}

        self._estimator: Any = None
        self._pipeline: FramePipeline | None = None
        self._pubs: dict[str, Any] = {}
        self._subs: list[Any] = []
        # Keep-last-1 slot + one inference thread (das_ros.worker: tested without ROS).
        self._worker: LatestFrameWorker[tuple[Any, bool]] | None = None
        self._compressed = False

        self.monitor = DiagnosticsMonitor(name=f"{self.get_name()}: DAS 3D pose", hardware_id=self.get_fully_qualified_name())
        self._diag_pub = self.create_publisher(self.make.cls("diagnostic_msgs/msg/DiagnosticArray"), "/diagnostics",
                                               10)
        self._diag_timer = self.create_timer(float(self._values["diagnostics_period"]), self._publish_diagnostics)

    # ---- parameters -----------------------------------------------------------------------------------
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
        if self._pipeline is not None:
            self._pipeline.update_settings(settings)  # dynamic ones apply at the next frame
        return SetParametersResult(successful=True)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ---- lifecycle ------------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        v = self._values
        try:
            est = self._injected_estimator or load_estimator(str(v["model"]), str(v["device"]), str(v["backend"]),
                                                            str(v["precision"]))
        except Exception as exc:  # noqa: BLE001 - any load failure must leave the node unconfigured, not dead
            self.get_logger().error(f"cannot load the model: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self._estimator = est
        self._pipeline = FramePipeline(est, skeleton_of(est), self.make, PipelineSettings.from_params(v))
        self.monitor.model_loaded = True
        # The resolved device ("auto" → cuda:0 / cpu) when the estimator reports it.
        self.monitor.backend, self.monitor.precision = str(v["backend"]), str(v["precision"])
        self.monitor.device = str(getattr(est, "device", v["device"]))
        self.destroy_timer(self._diag_timer)
        self._diag_timer = self.create_timer(float(v["diagnostics_period"]), self._publish_diagnostics)
        reliable = QoSProfile(depth=10)
        self._pubs["poses"] = self.create_lifecycle_publisher(
            self.make.cls("das_ros/msg/MultiPerson3DPose"), "poses", reliable,
            event_callbacks=_event_callbacks(self, "publisher", "poses"))
        self._pubs["markers"] = self.create_lifecycle_publisher(
            self.make.cls("visualization_msgs/msg/MarkerArray"), "markers", reliable,
            event_callbacks=_event_callbacks(self, "publisher", "markers"))
        self._pubs["debug_image"] = self.create_lifecycle_publisher(
            self.make.cls("sensor_msgs/msg/Image"), "debug_image", qos_profile_sensor_data)
        self.get_logger().info(f"configured: skeleton {self._pipeline.skeleton.name}, backend {v['backend']}, "
                               f"device {self.monitor.device}, precision {v['precision']}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._compressed = self._values["image_transport"] == "compressed"
        overrides = QoSOverridingOptions.with_default_policies()
        if self._compressed:
            resolve = getattr(self, "resolve_topic_name", None)
            image_topic = (resolve(IMAGE_TOPIC) if resolve else IMAGE_TOPIC) + "/compressed"
            image_type = self.make.cls("sensor_msgs/msg/CompressedImage")
        else:
            image_topic, image_type = IMAGE_TOPIC, self.make.cls("sensor_msgs/msg/Image")
        self._subs = [
            self.create_subscription(image_type, image_topic, self._on_image, INPUT_QOS,
                                     qos_overriding_options=overrides,
                                     event_callbacks=_event_callbacks(self, "subscription", image_topic,
                                                                      self._on_image_lost)),
            self.create_subscription(self.make.cls("sensor_msgs/msg/CameraInfo"), CAMERA_INFO_TOPIC,
                                     self._on_camera_info, INPUT_QOS, qos_overriding_options=overrides,
                                     event_callbacks=_event_callbacks(self, "subscription", CAMERA_INFO_TOPIC)),
        ]
        self._worker = LatestFrameWorker(self._work, name="das_worker")
        self._worker.start()
        self.get_logger().info(f"active: subscribed to {self._subs[0].topic_name} and {self._subs[1].topic_name} "
                               "(best effort, keep last 1: matches reliable and best-effort publishers)")
        return super().on_activate(state)  # activates the lifecycle publishers

    def _stop_worker(self) -> None:
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        if self._worker is not None:
            self._worker.stop(timeout=10.0)  # finishes the frame in progress; a waiting one is dropped
            self._worker = None

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        return super().on_deactivate(state)

    def _release(self) -> None:
        self._stop_worker()
        destroy = getattr(self, "destroy_lifecycle_publisher", self.destroy_publisher)
        for pub in self._pubs.values():
            destroy(pub)
        self._pubs = {}
        self._pipeline = None
        self._estimator = None
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
    def _on_camera_info(self, msg: Any) -> None:
        if self._pipeline is None:
            return
        try:
            intrinsics_from_camera_info(msg, use_rectified=bool(self._values["use_rectified_intrinsics"]))
            self.monitor.camera_info_error = None
            self.monitor.extra.pop("camera_info", None)
        except UncalibratedCameraError as exc:
            hfov = float(self._values["fallback_hfov_deg"])
            if hfov > 0:
                self.monitor.camera_info_error = None
                self.monitor.extra["camera_info"] = f"uncalibrated (K = 0): using fallback_hfov_deg = {hfov:g}"
                self.get_logger().warning(f"camera_info: {exc}; using fallback_hfov_deg = {hfov:g} degrees "
                                          "(3D positions are only as good as that guess)",
                                          throttle_duration_sec=30.0)
            else:
                self._camera_info_refused(exc)
        except CameraInfoError as exc:
            self._camera_info_refused(exc)
        self.monitor.camera_info_received = True
        self._pipeline.set_camera_info(msg)

    def _camera_info_refused(self, exc: CameraInfoError) -> None:
        self.monitor.camera_info_error = str(exc)
        self.get_logger().error(f"camera_info on {self._subs[1].topic_name if len(self._subs) > 1 else ''}: "
                                f"{exc}", throttle_duration_sec=10.0)

    def _on_image_lost(self, count: int) -> None:
        self.monitor.on_lost_reported(self._now(), count)

    def _on_image(self, msg: Any) -> None:
        self.monitor.on_received(self._now(), stamp_seconds(msg.header))
        worker = self._worker
        if worker is not None and worker.submit((msg, self._compressed)):
            self.monitor.on_dropped()  # it replaced a frame the worker had not started yet

    # ---- worker thread --------------------------------------------------------------------------------
    def _work(self, item: tuple[Any, bool]) -> None:
        msg, compressed = item
        try:
            self._process(msg, compressed)
        except Exception as exc:  # noqa: BLE001 - never let one frame kill the worker
            self.get_logger().error(f"unexpected error while publishing a frame: {exc!r}",
                                    throttle_duration_sec=5.0)

    def _process(self, msg: Any, compressed: bool) -> None:
        pipeline = self._pipeline
        if pipeline is None:
            return
        t0 = time.perf_counter()
        result = pipeline.process(msg, compressed=compressed)
        if not result.ok:
            self.monitor.on_bad_frame(result.reason or "", result.error or "")
            self.get_logger().warning(f"frame skipped ({result.reason}, {pipeline.counters[result.reason or '']} "
                                      f"so far): {result.error}", throttle_duration_sec=5.0)
            return
        self._pubs["poses"].publish(result.poses)
        if result.markers is not None:
            self._pubs["markers"].publish(result.markers)
        dbg = self._pubs.get("debug_image")
        if (self._values["debug_image"] and dbg is not None and dbg.get_subscription_count() > 0
                and result.rgb is not None and result.persons is not None):
            over = draw_persons(result.rgb, result.persons, pipeline.skeleton,
                                float(self._values["joint_confidence_threshold"]))
            fields = rgb_to_image_fields(over)
            # array.array: rclpy's fast path; bytes would be checked element by element in Python.
            fields["data"] = array.array("B", fields["data"])
            dbg.publish(self.make("sensor_msgs/msg/Image", header=result.header, **fields))
        self.monitor.on_published(self._now(), stamp_seconds(result.header), time.perf_counter() - t0,
                                  len(result.persons) if result.persons is not None else 0, result.timings_ms)

    def _publish_diagnostics(self) -> None:
        torch = sys.modules.get("torch")  # only if the model loaded it: diagnostics never import torch
        if torch is not None and self._estimator is not None and torch.cuda.is_available():
            self.monitor.extra["gpu memory allocated (MB)"] = f"{torch.cuda.memory_allocated() / 2**20:.0f}"
            self.monitor.extra["gpu memory reserved (MB)"] = f"{torch.cuda.memory_reserved() / 2**20:.0f}"
        now = self.get_clock().now()
        header = self.make("std_msgs/msg/Header", stamp=now.to_msg(), frame_id="")
        self._diag_pub.publish(self.monitor.message(self.make, now.nanoseconds * 1e-9, header))


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
