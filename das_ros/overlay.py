"""Debug overlay: skeletons, ids and depths drawn on the input image (no rclpy import)."""

from __future__ import annotations

import cv2
import numpy as np

from das_core.persons import Persons
from das_core.skeletons import Skeleton
from das_ros.markers import track_color
from das_ros.messages import valid_joint_mask

__all__ = ["draw_overlay"]


def draw_overlay(rgb: np.ndarray, persons: Persons, skeleton: Skeleton, joint_confidence_threshold: float = 0.1
                 ) -> np.ndarray:
    """(H, W, 3) uint8 RGB → a copy with bones, joints and "id: z m" labels in each track's colour."""
    out = np.ascontiguousarray(rgb).copy()
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 240))
    valid = valid_joint_mask(persons, joint_confidence_threshold)
    j2 = np.asarray(persons.joints_2d, dtype=np.float64)
    for i in range(len(persons)):
        tid = int(persons.track_ids[i]) if int(persons.track_ids[i]) >= 0 else i
        color = tuple(int(255 * c) for c in track_color(tid))
        pts = np.round(np.clip(j2[i], -1e4, 1e4)).astype(int)
        for a, b in skeleton.bones:
            if valid[i, a] and valid[i, b]:
                cv2.line(out, tuple(pts[a]), tuple(pts[b]), color, thick, cv2.LINE_AA)
        for j in np.flatnonzero(valid[i]):
            cv2.circle(out, tuple(pts[j]), thick + 1, color, -1, cv2.LINE_AA)
        if valid[i].any():
            top = pts[valid[i]][np.argmin(pts[valid[i]][:, 1])]
            z = float(np.asarray(persons.joints_3d)[i, skeleton.root, 2])
            cv2.putText(out, f"{tid}: {z:.1f} m", (int(top[0]), int(top[1]) - 4 * thick), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4 * thick, color, thick, cv2.LINE_AA)
    return out
