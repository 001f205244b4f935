"""Draw people on an image: bones, joints and track ids, coloured per track id (one palette for all views)."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from das_core.persons import Persons
from das_core.skeletons import Skeleton

__all__ = ["draw_persons", "track_color", "track_color_u8"]

def track_color(track_id: int) -> tuple[float, float, float]:
    """A distinct, stable RGB colour (0..1) per track id: golden-ratio steps around the hue circle.

    Shared by the RViz markers, the debug image and the ``das demo`` / ``das infer`` overlays, so a person
    has the same colour everywhere.
    """
    hue = (0.61803398875 * (int(track_id) + 1)) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.85, 0.95)


def track_color_u8(track_id: int) -> tuple[int, int, int]:
    """:func:`track_color` as 0..255 integers (for OpenCV drawing)."""
    r, g, b = track_color(track_id)
    return int(round(255 * r)), int(round(255 * g)), int(round(255 * b))


def draw_persons(image_rgb: np.ndarray, persons: Persons, skeleton: Skeleton, min_confidence: float = 0.5,
                 label_depth: bool = True) -> np.ndarray:
    """A copy of ``image_rgb`` (H, W, 3 uint8) with bones, joints and "id: z m" labels in each track's colour.

    Only joints that pass ``Persons.valid_joints(min_confidence)`` are drawn; untracked people (id −1) are
    coloured by their index.
    """
    out = np.ascontiguousarray(image_rgb).copy()
    h, w = out.shape[:2]
    thickness = max(1, int(round(min(h, w) / 240)))
    valid = persons.valid_joints(min_confidence)
    # Clip before converting to int: a wild prediction must not overflow OpenCV's coordinates.
    pts = np.round(np.clip(np.nan_to_num(np.asarray(persons.joints_2d, np.float64)), -1e4, 1e4) * 4).astype(np.int64)
    for i in range(len(persons)):
        tid = int(persons.track_ids[i]) if int(persons.track_ids[i]) >= 0 else i
        color = track_color_u8(tid)
        ok = valid[i]
        for a, b in skeleton.bones:
            if ok[a] and ok[b]:  # 2 bits of sub-pixel precision (shift=2)
                cv2.line(out, tuple(pts[i, a]), tuple(pts[i, b]), color, thickness, cv2.LINE_AA, shift=2)
        for k in np.flatnonzero(ok):
            cv2.circle(out, tuple(pts[i, k]), 4 * (thickness + 1), color, -1, cv2.LINE_AA, shift=2)
        if ok.any():
            top = pts[i][ok][np.argmin(pts[i][ok][:, 1])] / 4
            text = f"{tid}"
            if label_depth:
                text += f": {float(persons.joints_3d[i, skeleton.root, 2]):.1f} m"
            org = (int(np.clip(top[0], 0, w - 1)), int(np.clip(top[1] - 4 * thickness, 10, h - 1)))
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, (0, 0, 0), thickness + 1, cv2.LINE_AA)
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, color, thickness, cv2.LINE_AA)
    return out
