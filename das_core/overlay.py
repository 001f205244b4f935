"""Draw people on an image: bones, joints and track ids, coloured per track id (one palette for all views)."""

from __future__ import annotations

import cv2
import numpy as np

from das_core.persons import Persons
from das_core.skeletons import Skeleton

__all__ = ["draw_persons", "track_color"]

# Tableau-like palette, RGB 0..255; index = track id modulo its length so colours are stable per id.
_PALETTE = np.array(
    [
        (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
        (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    ],
    dtype=np.uint8,
)


def track_color(track_id: int) -> tuple[int, int, int]:
    """RGB colour for a track id; untracked people (−1) are white."""
    if track_id < 0:
        return (255, 255, 255)
    r, g, b = _PALETTE[int(track_id) % len(_PALETTE)]
    return int(r), int(g), int(b)


def draw_persons(image_rgb: np.ndarray, persons: Persons, skeleton: Skeleton, min_confidence: float = 0.0,
                 label_depth: bool = True) -> np.ndarray:
    """Return a copy of ``image_rgb`` (H, W, 3 uint8) with skeletons drawn; ids and root depth as text."""
    out = np.ascontiguousarray(image_rgb.copy())
    h, w = out.shape[:2]
    thickness = max(1, int(round(min(h, w) / 240)))
    for i in range(len(persons)):
        color = track_color(int(persons.track_ids[i]))
        uv = persons.joints_2d[i]
        ok = np.isfinite(uv).all(axis=1) & (persons.joint_confidence[i] >= min_confidence)
        pts = np.round(uv * 4).astype(np.int64)  # 2 bits of sub-pixel precision for cv2 (shift=2)
        for a, b in skeleton.bones:
            if ok[a] and ok[b]:
                cv2.line(out, tuple(pts[a]), tuple(pts[b]), color, thickness, cv2.LINE_AA, shift=2)
        for k in np.flatnonzero(ok):
            cv2.circle(out, tuple(pts[k]), thickness + 1, color, -1, cv2.LINE_AA, shift=2)
        if ok.any():
            top = uv[ok].min(axis=0)
            text = f"#{int(persons.track_ids[i])}" if persons.track_ids[i] >= 0 else f"{persons.scores[i]:.2f}"
            if label_depth:
                text += f" {persons.joints_3d[i, skeleton.root, 2]:.1f}m"
            org = (int(np.clip(top[0], 0, w - 1)), int(np.clip(top[1] - 4, 10, h - 1)))
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, (0, 0, 0), thickness + 1, cv2.LINE_AA)
            cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, color, thickness, cv2.LINE_AA)
    return out
