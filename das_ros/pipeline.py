"""``FramePipeline``: one image message in → poses (+ markers) messages out. Used identically by the node,
``das bag`` and the demo (no rclpy import).

    Image/CompressedImage + cached CameraInfo
      → conversions (RGB uint8, Intrinsics)  → estimator(rgb, intrinsics) → Persons
      → sanitise (drop non-finite persons, min_score, max_persons) → tracker → messages / markers

A bad frame (undecodable image, no or uncalibrated camera_info, estimator exception, malformed estimator
output) never raises and never publishes: ``process`` returns a ``FrameResult`` with ``ok = False`` and a
``reason`` from ``BAD_FRAME_REASONS``, and ``counters`` counts it. The caller logs it (throttled).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from das_core.camera import CameraError, Intrinsics
from das_core.persons import Persons
from das_core.skeletons import Skeleton, get_skeleton
from das_ros import conversions
from das_ros.factory import MessageFactory
from das_ros.markers import MarkerSettings, build_marker_array
from das_ros.messages import build_pose_message
from das_ros.tracker import Tracker, TrackerSettings

__all__ = ["BAD_FRAME_REASONS", "EstimatorFn", "FramePipeline", "FrameResult", "PipelineSettings",
           "load_estimator", "process_age_s", "skeleton_of", "stamp_seconds"]

log = logging.getLogger(__name__)

EstimatorFn = Callable[[np.ndarray, Intrinsics], Persons]
"""``est(image (H, W, 3) uint8 RGB, intrinsics of that image) -> Persons`` (das_core.engine.estimator.Estimator)."""

BAD_FRAME_REASONS: dict[str, str] = {
    "bad_image": "the image message could not be converted (encoding, size, step, corrupt data)",
    "no_camera_info": "no CameraInfo received yet and fallback_hfov_deg is 0",
    "bad_camera_info": "CameraInfo unusable (uncalibrated K[0] == 0, non-finite, size mismatch)",
    "estimator_error": "the estimator raised an exception",
    "bad_estimator_output": "the estimator returned something that is not a matching Persons",
}


def process_age_s() -> float | None:
    """Seconds since this process started (Linux ``/proc``; None elsewhere): imports and model loading included."""
    try:
        with open("/proc/self/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        import os

        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time, clock ticks after boot
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def stamp_seconds(header: Any) -> float:
    """``header.stamp`` (builtin_interfaces/Time) → seconds as float."""
    return float(header.stamp.sec) + float(header.stamp.nanosec) * 1e-9


# The backends whose first frame waits for a build (warm_start answers with eager meanwhile).
WARM_START_BACKENDS = ("compile", "aoti")


def load_estimator(model: str, device: str, backend: str, precision: str, *, input_scale: float = 1.0,
                   threads: int = 0, int8_calibration: str = "", warm_start: bool = False,
                   notify: Callable[[str, str], None] | None = None) -> Any:
    """``das_core.engine.estimator.Estimator.from_checkpoint`` with a clear error when no model is given.

    ``input_scale``, ``threads``, ``int8_calibration`` and ``warm_start`` are the node parameters of the same names
    (``das_ros.params``): ``threads`` > 0 sets ``torch.set_num_threads`` (process-wide) and onnxruntime's
    intra-op threads; ``int8_calibration`` is used by ``precision: int8`` only; ``warm_start`` with a compile or
    aoti backend returns a ``das_core.engine.warm_start.WarmStartEstimator`` (eager fp32 answers until that
    backend is warm), which reports its switch or failure through ``notify(level, message)`` too.
    """
    if not model:
        raise ValueError("no model given: set the 'model' parameter (node) or --model (das bag) to a checkpoint")
    import torch  # heavy: imported only when a model is loaded

    from das_core.engine.estimator import Estimator

    options: dict[str, Any] = {}
    if threads > 0:
        torch.set_num_threads(int(threads))
        if backend == "onnx":
            options["threads"] = int(threads)
    if precision == "int8" and int8_calibration:
        options["calibration"] = int8_calibration
    if warm_start and backend in WARM_START_BACKENDS:
        from das_core.engine.warm_start import WarmStartEstimator

        return WarmStartEstimator.from_checkpoint(model, device=device, backend=backend, precision=precision,
                                                  input_scale=input_scale, notify=notify, **options)
    return Estimator.from_checkpoint(model, device=device, backend=backend, precision=precision,
                                     input_scale=input_scale, **options)


def skeleton_of(estimator: Any, default: str = "panoptic15") -> Skeleton:
    """The estimator's joint set: ``.skeleton`` (Skeleton or name), else ``.cfg.skeleton`` / ``.config.skeleton``
    (``das_core.engine.estimator.Estimator`` keeps its ``ModelConfig`` in ``cfg``), else ``default``."""
    sk = getattr(estimator, "skeleton", None)
    for attr in ("cfg", "config"):
        if sk is None:
            sk = getattr(getattr(estimator, attr, None), "skeleton", None)
    if isinstance(sk, Skeleton):
        return sk
    return get_skeleton(sk if isinstance(sk, str) else default)


@dataclass(frozen=True)
class PipelineSettings:
    min_score: float = 0.1
    joint_confidence_threshold: float = 0.5
    max_persons: int = 50
    use_rectified_intrinsics: bool = False
    fallback_hfov_deg: float = 0.0
    tracking: bool = True
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    publish_markers: bool = True
    markers: MarkerSettings = field(default_factory=MarkerSettings)

    @classmethod
    def from_params(cls, p: dict[str, Any]) -> PipelineSettings:
        """From flat node parameters (``das_ros.params`` names; missing ones take their defaults)."""
        from das_ros.params import validate_all

        v = validate_all(p)
        thr = float(v["joint_confidence_threshold"])
        return cls(
            min_score=float(v["min_score"]),
            joint_confidence_threshold=thr,
            max_persons=int(v["max_persons"]),
            use_rectified_intrinsics=bool(v["use_rectified_intrinsics"]),
            fallback_hfov_deg=float(v["fallback_hfov_deg"]),
            tracking=bool(v["tracking.enabled"]),
            tracker=TrackerSettings(
                max_distance=float(v["tracking.max_distance"]), depth_noise=float(v["tracking.depth_noise"]),
                max_age=float(v["tracking.max_age"]),
                min_hits=int(v["tracking.min_hits"]), smoothing=bool(v["smoothing.enabled"]),
                min_cutoff=float(v["smoothing.min_cutoff"]), beta=float(v["smoothing.beta"]),
                d_cutoff=float(v["smoothing.d_cutoff"]),
            ),
            publish_markers=bool(v["publish_markers"]),
            markers=MarkerSettings(
                lifetime=float(v["markers.lifetime"]), line_width=float(v["markers.line_width"]),
                joint_size=float(v["markers.joint_size"]), text_size=float(v["markers.text_size"]),
                joint_confidence_threshold=thr, uncertainty=bool(v["markers.uncertainty"]),
            ),
        )


@dataclass
class FrameResult:
    """What one frame produced. ``poses``/``markers`` are None when ``ok`` is False (or markers are off)."""

    ok: bool
    header: Any
    reason: str | None = None  # key of BAD_FRAME_REASONS
    error: str | None = None  # the exception text, for logs and diagnostics
    image_size: tuple[int, int] = (0, 0)  # (width, height) pixels
    rgb: np.ndarray | None = None  # (H, W, 3) uint8, for the debug overlay
    intrinsics: Intrinsics | None = None
    persons: Persons | None = None
    states: np.ndarray | None = None
    poses: Any = None
    markers: Any = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class FramePipeline:
    """Stateful per-camera pipeline (tracker, cached CameraInfo, counters).

    One frame at a time: ``process`` holds a lock, so a second caller (e.g. a worker started while an old
    one still finishes its frame) waits instead of interleaving with the tracker. ``update_settings`` and
    ``set_camera_info`` may be called from other threads (parameter and subscription callbacks) and never
    wait for a frame: new settings are queued and applied by ``process`` before the next frame.
    """

    def __init__(self, estimator: EstimatorFn, skeleton: Skeleton, make: MessageFactory,
                 settings: PipelineSettings | None = None) -> None:
        self.estimator = estimator
        self.skeleton = skeleton
        self.make = make
        self.settings = settings or PipelineSettings()
        self.tracker = Tracker(self.settings.tracker)
        self.camera_info: Any = None
        self.counters: Counter[str] = Counter()
        self.last_error: str | None = None
        self._last_stamp: float | None = None
        self._track_t = 0.0
        self._frame_lock = threading.Lock()  # held for a whole frame
        self._pending_lock = threading.Lock()  # guards _pending only: callers never wait for a frame
        self._pending: PipelineSettings | None = None
        self._started: float | None = None  # time.monotonic() of start_clock() (the node's activation)
        self.first_pose_s: float | None = None  # seconds from start_clock() to the first frame that gave Persons

    def start_clock(self) -> None:
        """Start timing the first pose (the node calls this on activation; the first frame's build — minutes
        for a compiled backend without its cache — is what a restarted robot waits for)."""
        self._started = time.monotonic()
        self.first_pose_s = None

    def update_settings(self, settings: PipelineSettings) -> None:
        """Queue ``settings``; they take effect before the next frame (never in the middle of one)."""
        with self._pending_lock:
            self._pending = settings

    def _apply_pending_settings(self) -> None:
        with self._pending_lock:
            settings, self._pending = self._pending, None
        if settings is None:
            return
        if settings.tracker != self.settings.tracker:
            self.tracker = Tracker(settings.tracker)  # new gates/filters: start fresh tracks
        self.settings = settings

    def set_camera_info(self, info: Any) -> None:
        """Cache the latest CameraInfo (static for most cameras, so no strict time sync is needed)."""
        self.camera_info = info

    def _intrinsics(self, width: int, height: int) -> Intrinsics:
        s = self.settings
        info = self.camera_info  # read once: the subscription thread may replace it meanwhile
        if info is None:
            if s.fallback_hfov_deg > 0:
                return Intrinsics.from_fov(width, height, s.fallback_hfov_deg)
            raise LookupError("no CameraInfo received yet (check the camera_info remapping and QoS, "
                              "or set fallback_hfov_deg)")
        try:
            return conversions.intrinsics_from_camera_info(
                info, width, height, use_rectified=s.use_rectified_intrinsics)
        except conversions.UncalibratedCameraError:
            if s.fallback_hfov_deg <= 0:
                raise
            # K = 0 (most UVC drivers): the fallback the error text tells users to set. Counted; the node warns.
            self.counters["camera_info_uncalibrated_fallback"] += 1
            return Intrinsics.from_fov(width, height, s.fallback_hfov_deg)

    def _bad(self, header: Any, reason: str, error: str, **kw: Any) -> FrameResult:
        self.counters[reason] += 1
        self.counters["frames_bad"] += 1
        self.last_error = f"{reason}: {error}"
        return FrameResult(ok=False, header=header, reason=reason, error=error, **kw)

    def _sanitise(self, persons: Any) -> Persons:
        """Check the estimator's output and drop what must never reach a message."""
        k = self.skeleton.num_joints
        if not isinstance(persons, Persons):
            raise TypeError(f"estimator returned {type(persons).__name__}, expected das_core.persons.Persons")
        if (np.shape(persons.joints_3d)[1:] != (k, 3) or np.shape(persons.joints_2d)[1:] != (k, 2)
                             or np.shape(persons.joint_confidence)[1:] != (k,)):
            raise ValueError(f"estimator returned joints of shape {np.shape(persons.joints_3d)}, "
                             f"skeleton {self.skeleton.name} has {k} joints")
        if len(persons) == 0:
            return Persons.empty(k)
        roots = np.asarray(persons.roots(self.skeleton.root), dtype=np.float64)
        scores = np.asarray(persons.scores, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            keep = np.isfinite(scores) & np.isfinite(roots).all(-1) & (roots[:, 2] > 0)
        dropped = int((~keep).sum())
        if dropped:
            self.counters["persons_non_finite"] += dropped
        with np.errstate(invalid="ignore"):
            keep &= scores >= self.settings.min_score
        p = persons[keep]
        order = np.argsort(-np.asarray(p.scores, dtype=np.float64), kind="stable")[: self.settings.max_persons]
        p = p[order]
        # Non-finite joints would poison the smoothing filters: park them on the root with zero confidence,
        # which makes them invalid in every message.
        j3 = np.array(p.joints_3d, dtype=np.float32)
        j2 = np.array(p.joints_2d, dtype=np.float32)
        conf = np.array(p.joint_confidence, dtype=np.float32)
        bad = ~(np.isfinite(j3).all(-1) & np.isfinite(j2).all(-1) & np.isfinite(conf))
        if bad.any():
            self.counters["joints_non_finite"] += int(bad.sum())
            j3 = np.where(bad[..., None], j3[:, self.skeleton.root : self.skeleton.root + 1], j3)
            j2 = np.where(bad[..., None], 0.0, j2).astype(np.float32)
            conf = np.where(bad, 0.0, conf).astype(np.float32)
        cov = None if p.joint_covariance is None else np.array(p.joint_covariance, dtype=np.float32)
        if cov is not None and bad.any():
            cov = np.where(bad[..., None, None], 0.0, cov).astype(np.float32)
        return Persons(scores=np.asarray(p.scores, np.float32), joints_3d=j3, joints_2d=j2,
                       joint_confidence=conf, track_ids=np.full(len(p), -1, np.int64), joint_covariance=cov)

    def _track_time(self, header: Any) -> float:
        """Tracker time from the image stamp. Drivers that repeat a stamp (often 0) would freeze track ageing
        and velocities, so a repeated stamp advances a nominal 1/30 s instead (counted)."""
        stamp = stamp_seconds(header)
        if not math.isfinite(stamp):
            stamp = 0.0
        if self._last_stamp is not None and stamp == self._last_stamp:
            self.counters["stamps_repeated"] += 1
            self._track_t += 1.0 / 30.0
        else:
            self._track_t = stamp
        self._last_stamp = stamp
        return self._track_t

    def process(self, msg: Any, *, compressed: bool = False) -> FrameResult:
        """Run one ``sensor_msgs/Image`` (or ``CompressedImage`` with ``compressed=True``) through the pipeline."""
        with self._frame_lock:
            self._apply_pending_settings()
            return self._process(msg, compressed)

    def _process(self, msg: Any, compressed: bool) -> FrameResult:
        self.counters["frames_in"] += 1
        header = msg.header
        t0 = time.perf_counter()
        try:
            rgb = conversions.compressed_to_rgb(msg) if compressed else conversions.image_to_rgb(msg)
        except conversions.ImageConversionError as exc:
            return self._bad(header, "bad_image", str(exc))
        h, w = rgb.shape[:2]
        try:
            intr = self._intrinsics(w, h)
        except LookupError as exc:
            return self._bad(header, "no_camera_info", str(exc), image_size=(w, h), rgb=rgb)
        except CameraError as exc:
            return self._bad(header, "bad_camera_info", str(exc), image_size=(w, h), rgb=rgb)
        t1 = time.perf_counter()
        try:
            raw = self.estimator(rgb, intr)
        except Exception as exc:  # noqa: BLE001 - a model failure must not kill the node; it is counted
            log.debug("estimator failed", exc_info=True)
            return self._bad(header, "estimator_error", f"{type(exc).__name__}: {exc}", image_size=(w, h), rgb=rgb)
        t2 = time.perf_counter()
        if self.first_pose_s is None and self._started is not None:
            self.first_pose_s = time.monotonic() - self._started
            age = process_age_s()
            log.info("first pose %.1f s after start%s", self.first_pose_s,
                     f" ({age:.1f} s after the process started)" if age is not None else "")
        try:
            persons = self._sanitise(raw)
        except (TypeError, ValueError, IndexError) as exc:
            return self._bad(header, "bad_estimator_output", str(exc), image_size=(w, h), rgb=rgb)

        s = self.settings
        states = None
        if s.tracking:
            persons, states = self.tracker.update(persons, self._track_time(header), self.skeleton.root)
        else:
            persons = replace(persons, track_ids=np.arange(len(persons), dtype=np.int64))
        t3 = time.perf_counter()
        poses = build_pose_message(self.make, persons, header, self.skeleton, (w, h), states=states,
                                   joint_confidence_threshold=s.joint_confidence_threshold)
        markers = (build_marker_array(self.make, persons, header, self.skeleton, s.markers)
                   if s.publish_markers else None)
        t4 = time.perf_counter()
        self.counters["frames_ok"] += 1
        self.counters["persons_out"] += len(persons)
        return FrameResult(
            ok=True, header=header, image_size=(w, h), rgb=rgb, intrinsics=intr, persons=persons, states=states,
            poses=poses, markers=markers,
            timings_ms={"convert": (t1 - t0) * 1e3, "estimate": (t2 - t1) * 1e3, "track": (t3 - t2) * 1e3,
                        "messages": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3},
        )
