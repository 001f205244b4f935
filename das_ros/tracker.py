"""Stable person ids across frames: a constant-velocity Kalman filter per track on the 3D root, gating and
Hungarian assignment in the filter's metric, optional One-Euro smoothing of the published joints.

Why 3D roots: DAS gives absolute 3D positions, and two people overlapping in the image are usually metres
apart in depth, so gating on the 3D root separates what 2D IoU trackers confuse.

Why a Kalman filter with a ray-aligned measurement noise: a monocular root is precise across the viewing
ray (it comes from the 2D image position) and noisy along it (depth from appearance): at 6 m a few
percent of depth is 10–60 cm of jitter from frame to frame. A velocity taken from the difference of two
such roots (Δroot/dt) turns 10 cm of jitter at 30 Hz into 3 m/s of velocity noise, and a fixed metric gate
either cuts far people's tracks or merges near ones. The filter weighs each root by its covariance
(σ along the ray ∝ distance, small σ across), so its velocity follows the walk, not the jitter, and its
Mahalanobis gate is wide along the ray of a far person and tight across it.

No rclpy import; time comes from the image stamps (seconds), so bags and sim time behave like live data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from das_core.persons import Persons

__all__ = ["CONFIRMED", "GATE_CHI2", "OFF", "TENTATIVE", "OneEuroFilter", "Tracker", "TrackerSettings",
           "measurement_covariance"]

# Same values as das_ros/msg/Person3DPose tracking_state.
OFF, TENTATIVE, CONFIRMED = 0, 1, 2

# χ² quantile for 3 degrees of freedom at probability 0.999 (scipy.stats.chi2.ppf(0.999, 3) = 16.266):
# a detection of the tracked person falls outside the gate once in a thousand frames when the noise model
# holds; a looser gate would let a neighbour at the same bearing in.
GATE_CHI2 = 16.266
# Floor of the measurement σ (metres), so that a root very close to the camera still has a usable covariance.
MIN_SIGMA = 0.01


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
    """``max_distance``: metres, gate on the root's offset *across* the viewing ray (along the ray the
    Mahalanobis gate decides, which widens with distance). ``depth_noise`` / ``lateral_noise``: σ of a
    detected root along / across the viewing ray, as a fraction of its distance from the camera.
    ``process_noise``: spectral density of the white-noise acceleration (m²/s³): over t seconds a track's
    velocity may drift by about √(process_noise·t) m/s. ``initial_speed``: σ of a new track's velocity (m/s)."""

    max_distance: float = 0.6
    max_age: float = 0.5  # seconds without a match before a track is dropped
    min_hits: int = 2  # matches before CONFIRMED
    smoothing: bool = False
    min_cutoff: float = 1.0
    beta: float = 0.5
    d_cutoff: float = 1.0
    depth_noise: float = 0.10
    lateral_noise: float = 0.02
    process_noise: float = 1.0
    initial_speed: float = 1.5

    def __post_init__(self) -> None:
        for name in ("max_distance", "depth_noise", "lateral_noise", "process_noise", "initial_speed"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"TrackerSettings.{name} must be a positive finite number, got {v!r}")


def measurement_covariance(roots: np.ndarray, depth_noise: float, lateral_noise: float) -> np.ndarray:
    """(N, 3) roots (metres, camera frame) → (N, 3, 3) covariance of a monocular root estimate:
    σ_ray = depth_noise·r along the ray through the root, σ_lat = lateral_noise·r across it (r = distance)."""
    roots = np.asarray(roots, dtype=np.float64).reshape(-1, 3)
    dist = np.linalg.norm(roots, axis=-1)
    ray = roots / np.maximum(dist, 1e-9)[:, None]
    s_ray = np.maximum(depth_noise * dist, MIN_SIGMA)
    s_lat = np.maximum(lateral_noise * dist, MIN_SIGMA)
    outer = ray[:, :, None] * ray[:, None, :]
    return (s_lat**2)[:, None, None] * np.eye(3) + (s_ray**2 - s_lat**2)[:, None, None] * outer


def _predict(x: np.ndarray, p: np.ndarray, dt: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    """Constant-velocity prediction of T states ``x`` (T, 6) = (position m, velocity m/s) with covariances
    ``p`` (T, 6, 6) by ``dt`` (T,) seconds under continuous white-noise acceleration of spectral density ``q``
    (m²/s³). Exact for any dt, so a dropped frame predicts the same as two short steps."""
    dt = dt[:, None, None]
    eye = np.eye(3)
    pp, pv, vp, vv = p[:, :3, :3], p[:, :3, 3:], p[:, 3:, :3], p[:, 3:, 3:]
    out = np.empty_like(p)
    # F P Fᵀ + Q with F = [[I, dt·I], [0, I]], Q = q·[[dt³/3·I, dt²/2·I], [dt²/2·I, dt·I]], block by block.
    out[:, :3, :3] = pp + dt * (pv + vp) + dt**2 * vv + q * dt**3 / 3 * eye
    out[:, :3, 3:] = pv + dt * vv + q * dt**2 / 2 * eye
    out[:, 3:, :3] = vp + dt * vv + q * dt**2 / 2 * eye
    out[:, 3:, 3:] = vv + q * dt * eye
    xp = x.copy()
    xp[:, :3] += dt[:, :, 0] * x[:, 3:]
    return xp, out


@dataclass
class _Track:
    id: int
    x: np.ndarray  # (6,) Kalman state at last_time: root (m) and its velocity (m/s), camera frame
    p: np.ndarray  # (6, 6) its covariance
    last_time: float
    hits: int = 1
    filter: OneEuroFilter | None = field(default=None, repr=False)

    @property
    def root(self) -> np.ndarray:
        """(3,) metres: the filter's estimate of the root at ``last_time``."""
        return self.x[:3].copy()

    @property
    def velocity(self) -> np.ndarray:
        """(3,) m/s: the filter's estimate of the root's velocity."""
        return self.x[3:].copy()


class Tracker:
    """Assigns ``Persons.track_ids`` and a tracking state per person, frame by frame.

    ``update(persons, t, root_index)`` returns ``(persons_with_ids, states (N,) uint8)``. Ids start at 1 and
    are never reused within a tracker's life. A stamp earlier than the previous one (a bag looping, sim time
    reset) resets the tracker, since predictions across a jump back in time are meaningless. The published
    joints are the detection's (One-Euro smoothed when ``smoothing``); the Kalman state is used for the
    association only.
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

    def estimates(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Track id → the filter's (root (3,) m, velocity (3,) m/s) at the track's last match."""
        return {tr.id: (tr.root, tr.velocity) for tr in self._tracks}

    def _costs(self, xs: np.ndarray, ps: np.ndarray, roots: np.ndarray,
               r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted roots (T, 3) with covariances (T, 3, 3), detections (N, 3) with covariances (N, 3, 3) →
        (T, N) negative log-likelihood cost and (T, N) admissibility of each track/detection pair."""
        nu = roots[None, :, :] - xs[:, None, :]  # (T, N, 3) innovations
        s = ps[:, None] + r[None]  # (T, N, 3, 3)
        d2 = np.einsum("tni,tni->tn", nu, np.linalg.solve(s, nu[..., None])[..., 0])
        # log|S| makes the cost the innovation's negative log-likelihood: a coasting track with a wide
        # covariance does not win a detection merely because its Mahalanobis distance is small.
        cost = d2 + np.linalg.slogdet(s)[1]
        ray = roots / np.maximum(np.linalg.norm(roots, axis=-1, keepdims=True), 1e-9)  # (N, 3)
        across = nu - np.einsum("tni,ni->tn", nu, ray)[..., None] * ray[None]
        ok = (d2 <= GATE_CHI2) & (np.linalg.norm(across, axis=-1) <= self.settings.max_distance) & np.isfinite(cost)
        return cost, ok

    def update(self, persons: Persons, t: float, root_index: int) -> tuple[Persons, np.ndarray]:
        s = self.settings
        if self._last_time is not None and t < self._last_time:
            self.reset()
        self._last_time = t
        # Drop stale tracks first so they cannot steal a detection.
        self._tracks = [tr for tr in self._tracks if t - tr.last_time <= s.max_age]

        n = len(persons)
        roots = np.asarray(persons.roots(root_index), dtype=np.float64).reshape(n, 3)
        if not np.isfinite(roots).all():
            bad = int(np.flatnonzero(~np.isfinite(roots).all(-1))[0])
            raise ValueError(f"Tracker.update: the root of person {bad} is not finite ({roots[bad]}); "
                             "drop such persons first (FramePipeline does)")
        r = measurement_covariance(roots, s.depth_noise, s.lateral_noise)  # (N, 3, 3)
        assigned: list[int | None] = [None] * n  # index into self._tracks
        if n and self._tracks:
            xs, ps = _predict(np.stack([tr.x for tr in self._tracks]), np.stack([tr.p for tr in self._tracks]),
                              np.array([t - tr.last_time for tr in self._tracks]), s.process_noise)
            cost, ok = self._costs(xs[:, :3], ps[:, :3, :3], roots, r)
            # Inadmissible pairs cost more than any admissible one, so the assignment never prefers them.
            big = float(np.abs(cost[ok]).sum()) + 1e6 if ok.any() else 1e6
            rows, cols = linear_sum_assignment(np.where(ok, cost, big))
            for ti, c in zip(rows, cols, strict=True):
                if ok[ti, c]:
                    assigned[c] = int(ti)

        matched = [(i, ti) for i, ti in enumerate(assigned) if ti is not None]
        if matched:
            det, trk = (np.array(v) for v in zip(*matched, strict=True))
            x, p = xs[trk], ps[trk]  # (M, 6), (M, 6, 6)
            gain = np.linalg.solve(p[:, :3, :3] + r[det], p[:, :3, :]).transpose(0, 2, 1)  # (M, 6, 3)
            x = x + np.einsum("mij,mj->mi", gain, roots[det] - x[:, :3])
            p = p - gain @ p[:, :3, :]
            p = 0.5 * (p + p.transpose(0, 2, 1))  # keep it symmetric against round-off
            for k, ti in enumerate(trk):
                tr = self._tracks[ti]
                tr.x, tr.p, tr.last_time = x[k], p[k], t
                tr.hits += 1

        joints = np.array(persons.joints_3d, dtype=np.float64, copy=True)
        ids = np.zeros(n, np.int64)
        states = np.zeros(n, np.uint8)
        new_tracks: list[_Track] = []
        for i in range(n):
            ti = assigned[i]
            if ti is None:
                p0 = np.zeros((6, 6))
                p0[:3, :3] = r[i]
                p0[3:, 3:] = np.eye(3) * s.initial_speed**2
                tr = _Track(id=self._next_id, x=np.concatenate([roots[i], np.zeros(3)]), p=p0, last_time=t)
                if s.smoothing:
                    tr.filter = OneEuroFilter(s.min_cutoff, s.beta, s.d_cutoff)
                self._next_id += 1
                new_tracks.append(tr)
            else:
                tr = self._tracks[ti]
            if tr.filter is not None:
                joints[i] = tr.filter(joints[i], t)
            ids[i] = tr.id
            states[i] = CONFIRMED if tr.hits >= s.min_hits else TENTATIVE
        self._tracks.extend(new_tracks)

        out = Persons(
            scores=persons.scores,
            joints_3d=joints.astype(np.asarray(persons.joints_3d).dtype, copy=False),
            joints_2d=persons.joints_2d,
            joint_confidence=persons.joint_confidence,
            track_ids=ids,
            # the model's per-frame belief; the smoothing filters do not narrow it
            joint_covariance=persons.joint_covariance,
        )
        return out, states
