"""``Persons``: the typed per-frame result. Every field has the same first dimension N.

Indexing with a boolean mask, an index array or a slice filters all fields together (detectron2's
``Instances`` idea, with fixed fields).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["Persons"]


@dataclass
class Persons:
    """People found in one image.

    Attributes:
        scores: (N,) detection score in [0, 1] (center × centerness).
        joints_3d: (N, K, 3) joints in metres, camera optical frame (x right, y down, z forward).
        joints_2d: (N, K, 2) joints in pixels of the original image.
        joint_confidence: (N, K) per-joint confidence in [0, 1] (from the predicted sigma).
        track_ids: (N,) int64 stable id across frames, −1 before tracking.
        joint_covariance: (N, K, 3, 3) position covariance of each joint in m², optical frame: the model's
            belief (1σ) propagated through the back-projection (``das_core.engine.decode``), not a
            guaranteed error bound. ``None`` when the producer has no uncertainty (hand-built persons).
    """

    scores: np.ndarray
    joints_3d: np.ndarray
    joints_2d: np.ndarray
    joint_confidence: np.ndarray
    track_ids: np.ndarray
    joint_covariance: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.scores)
        for f in fields(self):
            arr = getattr(self, f.name)
            if arr is not None and len(arr) != n:
                raise ValueError(f"Persons.{f.name} has {len(arr)} rows, scores has {n}")

    @classmethod
    def empty(cls, num_joints: int) -> Persons:
        return cls(
            scores=np.zeros((0,), np.float32),
            joints_3d=np.zeros((0, num_joints, 3), np.float32),
            joints_2d=np.zeros((0, num_joints, 2), np.float32),
            joint_confidence=np.zeros((0, num_joints), np.float32),
            track_ids=np.zeros((0,), np.int64),
            joint_covariance=np.zeros((0, num_joints, 3, 3), np.float32),
        )

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, item: Any) -> Persons:
        picked: dict[str, Any] = {f.name: None if getattr(self, f.name) is None
                                  else np.asarray(getattr(self, f.name))[item] for f in fields(self)}
        return Persons(**picked)

    @property
    def num_joints(self) -> int:
        return int(self.joints_3d.shape[1])

    def roots(self, root_index: int) -> np.ndarray:
        """(N, 3) root joint positions in metres."""
        return self.joints_3d[:, root_index]

    def root_covariance(self, root_index: int) -> np.ndarray | None:
        """(N, 3, 3) covariance of the root joint in m² (the root's own joint covariance), or ``None``."""
        return None if self.joint_covariance is None else self.joint_covariance[:, root_index]

    def boxes_2d(self) -> np.ndarray:
        """(N, 4) ``x_min, y_min, x_max, y_max`` of the 2D joints, pixels of the original image."""
        if len(self) == 0:
            return np.zeros((0, 4), np.float32)
        return np.concatenate([self.joints_2d.min(axis=1), self.joints_2d.max(axis=1)], axis=1)

    def valid_joints(self, min_confidence: float = 0.0) -> np.ndarray:
        """(N, K) bool: finite in 2D and 3D, in front of the camera (z > 0), confidence > 0 and ≥ the threshold.

        The one rule for what may be published or drawn: invalid joints are flagged, never sent as NaN.
        """
        j3 = np.asarray(self.joints_3d, dtype=np.float64)
        j2 = np.asarray(self.joints_2d, dtype=np.float64)
        conf = np.asarray(self.joint_confidence, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return (np.isfinite(j3).all(-1) & np.isfinite(j2).all(-1) & np.isfinite(conf) & (conf > 0)
                    & (conf >= min_confidence) & (j3[..., 2] > 0))

    def is_finite(self) -> bool:
        return all(np.isfinite(getattr(self, f.name)).all() for f in fields(self) if getattr(self, f.name) is not None)

    def to_dict(self) -> dict[str, list[Any]]:
        """JSON-ready per-person list fields."""
        return {f.name: np.asarray(getattr(self, f.name)).tolist() for f in fields(self)
                if getattr(self, f.name) is not None}
