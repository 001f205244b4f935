"""Node health → ``diagnostic_msgs/DiagnosticArray`` (no rclpy import).

``DiagnosticsMonitor`` is fed by the node (frame received / dropped / processed, CameraInfo status) and turns
a sliding window into rates, latencies and a level with a message. Latency = now − header.stamp (the
end-to-end age of a result when it is published, greenwave_monitor's convention); processing time is the
pipeline's own time. Times are seconds on the node's clock (sim time in bags).

Frames lost *before* the node (in the camera driver or in DDS) never reach a callback, and ROS 2 images carry
no sequence number, so ``StampGaps`` infers them from the image stamps: a gap of about n nominal periods
means n − 1 frames missing. The rmw's own "message lost" event, where the middleware reports one, is counted
beside it (``on_lost_reported``).

Several cameras: the node keeps one monitor per camera (its own counters, rates, latency and level) beside
the node-level one (summed counters, model and device), and publishes one ``DiagnosticStatus`` for each;
``combine`` raises the node-level level to the worst camera's and names that camera, so a monitor that only
watches the node-level status still sees one camera going stale.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

import numpy as np

from das_ros.factory import MessageFactory

__all__ = ["ERROR", "LEVEL_NAMES", "OK", "STALE", "WARN", "DiagnosticsMonitor", "StampGaps", "Status", "combine",
           "diagnostic_array"]

OK, WARN, ERROR, STALE = 0, 1, 2, 3  # diagnostic_msgs/DiagnosticStatus levels
LEVEL_NAMES = {OK: "OK", WARN: "WARN", ERROR: "ERROR", STALE: "STALE"}


@dataclass(frozen=True)
class Status:
    level: int
    message: str
    values: tuple[tuple[str, str], ...]


class StampGaps:
    """Frames missing from a stream, inferred from its header stamps (seconds).

    The nominal period is the median of the last ``history`` positive stamp steps (at least ``min_steps``
    of them before anything is counted, so a start-up hiccup is not mistaken for loss). A step longer than
    ``tolerance`` periods counts ``round(step / period) - 1`` lost frames; a step longer than ``restart_after``
    seconds, or a stamp going backwards, is a restart of the stream (a driver restarted, a bag looped), not
    loss, and starts a new period estimate. A repeated stamp counts nothing (some drivers repeat them).
    A stream that loses every other frame from its first frame on looks like one at half the rate: only
    losses that vary are seen.
    """

    def __init__(self, restart_after: float = 3.0, tolerance: float = 1.5, history: int = 30,
                 min_steps: int = 5) -> None:
        self.restart_after, self.tolerance, self.min_steps = restart_after, tolerance, min_steps
        self._steps: collections.deque[float] = collections.deque(maxlen=history)
        self._last: float | None = None
        self.lost_total = 0
        self.restarts = 0

    @property
    def period(self) -> float | None:
        """Nominal period (s), or None while fewer than ``min_steps`` steps were seen."""
        return float(np.median(self._steps)) if len(self._steps) >= self.min_steps else None

    def add(self, stamp: float) -> int:
        """Record the next stamp; returns how many frames this step says were lost (0 mostly)."""
        last, self._last = self._last, stamp
        if last is None or stamp == last:
            return 0
        step = stamp - last
        if step < 0 or step > self.restart_after:
            self.restarts += 1
            self._steps.clear()
            return 0
        period = self.period
        self._steps.append(step)
        if period is None or period <= 0 or step <= self.tolerance * period:
            return 0
        lost = max(0, round(step / period) - 1)
        self.lost_total += lost
        return lost


class DiagnosticsMonitor:
    """Sliding-window statistics of one node. Call ``status(now)`` once per diagnostics period.

    Args:
        window: seconds of history used for rates and latency statistics.
        stale_after: seconds without a received image before the status becomes STALE-ish WARN.
        first_result_grace: seconds a first result may take after the first image (model warm-up,
            torch.compile) before "nothing published yet" becomes a WARN.
        lost_warn_fraction: fraction of the window's frames lost before the node above which it WARNs.
    """

    def __init__(self, name: str, hardware_id: str = "", window: float = 5.0, stale_after: float = 3.0,
                 first_result_grace: float = 30.0, lost_warn_fraction: float = 0.1) -> None:
        self.name, self.hardware_id = name, hardware_id
        self.window, self.stale_after = window, stale_after
        self.first_result_grace, self.lost_warn_fraction = first_result_grace, lost_warn_fraction
        self.gaps = StampGaps(restart_after=stale_after)  # the single camera's (source "")
        # One per camera: interleaved stamps of two cameras would look like restarts and losses.
        self.gaps_by_source: dict[str, StampGaps] = {"": self.gaps}
        self._lost: collections.deque[tuple[float, int]] = collections.deque()  # t, frames lost before it
        self.lost_reported_total = 0  # by the middleware's message-lost event
        self._first_rx: float | None = None
        self._bad_since_published = 0
        self._received: collections.deque[float] = collections.deque()
        self._published: collections.deque[tuple[float, float, float]] = collections.deque()  # t, latency, proc
        self.dropped_total = 0
        self.received_total = 0
        self.published_total = 0
        self.bad_frames: collections.Counter[str] = collections.Counter()
        self.last_error: str | None = None
        self.camera_info_error: str | None = None
        self.camera_info_received = False
        self.model_loaded = False
        self.backend = ""
        self.device = ""
        self.precision = ""
        self.persons_last = 0
        self.stage_ms: dict[str, float] = {}  # last published frame's per-stage times (FrameResult.timings_ms)
        self.extra: dict[str, str] = {}  # values the node adds (e.g. GPU memory)

    def _trim(self, now: float) -> None:
        while self._received and now - self._received[0] > self.window:
            self._received.popleft()
        while self._published and now - self._published[0][0] > self.window:
            self._published.popleft()
        while self._lost and now - self._lost[0][0] > self.window:
            self._lost.popleft()

    def on_received(self, now: float, stamp: float | None = None, source: str = "") -> None:
        """An image reached the node; ``stamp`` (its header stamp, s) feeds the lost-frame count of its
        ``source`` (camera namespace; "" for the single camera)."""
        self.received_total += 1
        self._received.append(now)
        if self._first_rx is None:
            self._first_rx = now
        if stamp is not None:
            gaps = self.gaps_by_source.get(source)
            if gaps is None:
                gaps = self.gaps_by_source[source] = StampGaps(restart_after=self.stale_after)
            lost = gaps.add(stamp)
            if lost:
                self._lost.append((now, lost))

    def on_lost_reported(self, now: float, count: int) -> None:
        """The middleware says ``count`` samples were lost (rmw message-lost event). Reported as a value only:
        the same frames usually show up as stamp gaps, which drive the level."""
        if count > 0:
            self.lost_reported_total += count

    def on_dropped(self, count: int = 1) -> None:
        """A newer frame replaced one that was still waiting for the worker."""
        self.dropped_total += count

    def on_published(self, now: float, stamp: float, processing_s: float, persons: int,
                     stage_ms: dict[str, float] | None = None) -> None:
        self.published_total += 1
        self._bad_since_published = 0
        if stage_ms:
            self.stage_ms = dict(stage_ms)
        self.persons_last = persons
        self._published.append((now, now - stamp, processing_s))

    def on_bad_frame(self, reason: str, error: str) -> None:
        self.bad_frames[reason] += 1
        self._bad_since_published += 1
        self.last_error = f"{reason}: {error}"

    def status(self, now: float) -> Status:
        self._trim(now)
        rate_in = len(self._received) / self.window
        rate_out = len(self._published) / self.window
        lat = np.array([p[1] for p in self._published]) if self._published else np.zeros(0)
        proc = np.array([p[2] for p in self._published]) if self._published else np.zeros(0)
        last_rx = self._received[-1] if self._received else None
        lost_now = sum(n for _, n in self._lost)

        level, msg = OK, "running"
        if not self.model_loaded:
            level, msg = ERROR, "model not loaded (node not configured)"
        elif self.camera_info_error:
            level, msg = ERROR, f"camera_info unusable: {self.camera_info_error}"
        elif last_rx is None or now - last_rx > self.stale_after:
            level, msg = WARN, f"no image received for more than {self.stale_after:g} s"
        elif not self.camera_info_received and self.bad_frames.get("no_camera_info"):
            level, msg = WARN, "waiting for camera_info"
        elif rate_in > 0 and rate_out == 0 and self._bad_since_published:
            # Only refused frames make this an error: a frame still being processed is not one.
            level, msg = ERROR, f"images arrive but nothing is published ({self.last_error or 'unknown'})"
        elif rate_in > 0 and rate_out == 0 and self.published_total == 0:
            waited = now - (self._first_rx if self._first_rx is not None else now)
            if waited > self.first_result_grace:
                level, msg = WARN, f"no result {waited:.0f} s after the first image (inference hung or very slow)"
            else:
                msg = "processing the first frame (model warm-up)"
        elif rate_in > 0 and rate_out == 0:
            level, msg = WARN, f"no result in the last {self.window:g} s: inference slower than the window"
        elif self.dropped_total and rate_out < 0.5 * rate_in:
            level, msg = WARN, "dropping frames: inference slower than the camera"
        elif lost_now > self.lost_warn_fraction * (len(self._received) + lost_now):
            level, msg = WARN, (f"{lost_now} frames lost before the node in the last {self.window:g} s "
                                "(camera driver or transport; see docs/ROS.md 'QoS notes')")

        def ms(a: np.ndarray, q: float) -> str:
            return f"{np.percentile(a, q) * 1e3:.1f}" if a.size else "n/a"

        values = [
            ("backend", self.backend), ("device", self.device), ("precision", self.precision),
            ("input rate (Hz)", f"{rate_in:.2f}"), ("output rate (Hz)", f"{rate_out:.2f}"),
            ("latency now-stamp median (ms)", ms(lat, 50)), ("latency now-stamp p95 (ms)", ms(lat, 95)),
            ("processing median (ms)", ms(proc, 50)), ("processing p95 (ms)", ms(proc, 95)),
            ("frames received", str(self.received_total)), ("frames published", str(self.published_total)),
            ("frames dropped (busy)", str(self.dropped_total)),
            ("frames lost before the node (stamp gaps)", str(sum(g.lost_total for g in self.gaps_by_source.values()))),
            ("frames lost reported by the middleware", str(self.lost_reported_total)),
            ("input restarts (stamp jump back or > stale)", str(sum(g.restarts for g in self.gaps_by_source.values()))),
            ("input period from stamps (ms)", ", ".join(f"{g.period * 1e3:.1f}" for g in self.gaps_by_source.values()
                                                        if g.period) or "n/a"),
            ("persons in last frame", str(self.persons_last)),
            ("camera_info received", str(self.camera_info_received).lower()),
        ]
        values += [(f"last frame {k} (ms)", f"{v:.1f}") for k, v in self.stage_ms.items()]
        values += [(f"bad frames: {k}", str(v)) for k, v in sorted(self.bad_frames.items())]
        values += sorted(self.extra.items())
        if self.last_error:
            values.append(("last error", self.last_error))
        return Status(level, msg, tuple(values))

    def message(self, make: MessageFactory, now: float, header: Any) -> Any:
        """A ``DiagnosticArray`` with one ``DiagnosticStatus`` (header: stamp = now, empty frame)."""
        return diagnostic_array(make, header, [(self.name, self.hardware_id, self.status(now))])


def combine(node: Status, cameras: dict[str, Status]) -> Status:
    """The node-level status of a node with several cameras (``cameras``: namespace → that camera's status).

    Its level is the worse of the node's own (model, device, summed counters) and the worst camera's; when a
    camera is worse, the message names every camera at that level with its own message. The values list the
    cameras' levels first, then the node's own values.
    """
    worst = max((s.level for s in cameras.values()), default=OK)
    level, message = node.level, node.message
    if worst > level:
        level = worst
        message = "; ".join(f"camera {ns}: {s.message}" for ns, s in cameras.items() if s.level == worst)
    ok = sum(s.level == OK for s in cameras.values())
    values = [("cameras", ", ".join(cameras)), ("cameras OK", f"{ok} of {len(cameras)}")]
    values += [(f"camera {ns}", f"{LEVEL_NAMES.get(s.level, str(s.level))}: {s.message}") for ns, s in cameras.items()]
    return Status(level, message, tuple(values) + node.values)


def diagnostic_array(make: MessageFactory, header: Any, statuses: list[tuple[str, str, Status]]) -> Any:
    """A ``DiagnosticArray`` with one ``DiagnosticStatus`` per ``(name, hardware_id, status)``."""
    return make("diagnostic_msgs/msg/DiagnosticArray", header=header, status=[
        make("diagnostic_msgs/msg/DiagnosticStatus", level=st.level, name=name, message=st.message,
             hardware_id=hardware_id,
             values=[make("diagnostic_msgs/msg/KeyValue", key=k, value=v) for k, v in st.values])
        for name, hardware_id, st in statuses])
