"""Stable person ids across frames: 3D root gating + Hungarian matching, optional One-Euro smoothing.

Why 3D roots: DAS gives absolute 3D positions, and two people overlapping in the image are usually metres
apart in depth, so gating on the 3D root distance separates what 2D IoU trackers confuse.
No rclpy import; time comes from the image stamps (seconds), so bags and sim time behave like live data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from das_core.persons import Persons

__all__ = ["CONFIRMED", "OFF", "TENTATIVE", "OneEuroFilter", "Tracker", "TrackerSettings"]

# Same values as das_ros/msg/Person3DPose tracking_state.
OFF, TENTATIVE, CONFIRMED = 0, 1, 2


class OneEuroFilter:
    """One-Euro filter (Casiez et al., CHI 2012) on an array of any shape; time in seconds.

    Cutoff ``fc = min_cutoff + beta·|dx/dt|`` per element: smooth at rest, little lag when moving.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        dx = (x - self._x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        assert self._dx is not None
        self._dx = a_d * dx + (1 - a_d) * self._dx
        a = self._alpha(self.min_cutoff + self.beta * np.abs(self._dx), dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t
        return self._x.copy()


@dataclass(frozen=True)
class TrackerSettings:
    max_distance: float = 0.6  # metres, gate on the 3D root distance
    max_age: float = 0.5  # seconds without a match before a track is dropped
    min_hits: int = 2  # matches before CONFIRMED
    smoothing: bool = False
    min_cutoff: float = 1.0
    beta: float = 0.5
    d_cutoff: float = 1.0


@dataclass
class _Track:
    id: int
    root: np.ndarray  # (3,) metres, last matched (smoothed) root
    velocity: np.ndarray  # (3,) m/s, for a constant-velocity prediction
    last_time: float
    hits: int = 1
    filter: OneEuroFilter | None = field(default=None, repr=False)

    def predict(self, t: float) -> np.ndarray:
        return self.root + self.velocity * max(0.0, t - self.last_time)


class Tracker:
    """Assigns ``Persons.track_ids`` and a tracking state per person, frame by frame.

    ``update(persons, t, root_index)`` returns ``(persons_with_ids, states (N,) uint8)``. Ids start at 1 and
    are never reused within a tracker's life. A stamp earlier than the previous one (a bag looping, sim time
    reset) resets the tracker, since constant-velocity predictions across a jump back in time are
    meaningless.
    """

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_time: float | None = None

    def reset(self) -> None:
        self._tracks = []
        self._last_time = None

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    def update(self, persons: Persons, t: float, root_index: int) -> tuple[Persons, np.ndarray]:
        s = self.settings
        if self._last_time is not None and t < self._last_time:
            self.reset()
        self._last_time = t
        # Drop stale tracks first so they cannot steal a detection.
        self._tracks = [tr for tr in self._tracks if t - tr.last_time <= s.max_age]

        n = len(persons)
        roots = np.asarray(persons.roots(root_index), dtype=np.float64).reshape(n, 3)
        assigned: list[_Track | None] = [None] * n
        if n and self._tracks:
            pred = np.stack([tr.predict(t) for tr in self._tracks])  # (T, 3)
            cost = np.linalg.norm(pred[:, None, :] - roots[None, :, :], axis=-1)  # (T, N) metres
            # Gated pairs get a cost above any admissible one so the assignment never prefers them.
            big = s.max_distance * 10.0 + cost.max() + 1.0
            rows, cols = linear_sum_assignment(np.where(cost <= s.max_distance, cost, big))
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] <= s.max_distance:
                    assigned[c] = self._tracks[r]

        joints = np.array(persons.joints_3d, dtype=np.float64, copy=True)
        ids = np.zeros(n, np.int64)
        states = np.zeros(n, np.uint8)
        for i in range(n):
            tr = assigned[i]
            if tr is None:
                tr = _Track(id=self._next_id, root=roots[i].copy(), velocity=np.zeros(3), last_time=t)
                if s.smoothing:
                    tr.filter = OneEuroFilter(s.min_cutoff, s.beta, s.d_cutoff)
                self._next_id += 1
                self._tracks.append(tr)
            else:
                dt = t - tr.last_time
                if dt > 0:
                    tr.velocity = (roots[i] - tr.root) / dt
                tr.root, tr.last_time = roots[i].copy(), t
                tr.hits += 1
            if tr.filter is not None:
                joints[i] = tr.filter(joints[i], t)
            ids[i] = tr.id
            states[i] = CONFIRMED if tr.hits >= s.min_hits else TENTATIVE

        out = Persons(
            scores=persons.scores,
            joints_3d=joints.astype(np.asarray(persons.joints_3d).dtype, copy=False),
            joints_2d=persons.joints_2d,
            joint_confidence=persons.joint_confidence,
            track_ids=ids,
        )
        return out, states
