"""The 2.5D ground-truth representation the head is trained on (DAS_SPEC §2.1), and 3D ↔ 2.5D.

A person in 2.5D: root pixel position and per-joint pixel positions in the *network input*,
``root_depth = Z_root / f_eff`` (metres per pixel, f_eff = sqrt(fx·fy) of the network input), and per-joint
``dz = Z_k − Z_root`` in metres. 2D-only people (COCO) have ``has_depth = False`` and dz = 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from das_core.camera import Intrinsics

__all__ = ["Pose25D", "pose25d_from_3d"]


@dataclass
class Pose25D:
    """Ground truth of one image in network-input pixels.

    Attributes:
        centers: (N, 2) root (or hip-midpoint for 2D-only people) pixel position.
        root_depth: (N,) ``Z_root / f_eff``; 0 for 2D-only people.
        joints_uv: (N, K, 2) joint pixel positions.
        joints_dz: (N, K) ``Z_k − Z_root`` in metres (0 for 2D-only people).
        visible: (N, K) bool, joint labelled and inside the image.
        has_depth: (N,) bool, the person has 3D labels.
    """

    centers: np.ndarray
    root_depth: np.ndarray
    joints_uv: np.ndarray
    joints_dz: np.ndarray
    visible: np.ndarray
    has_depth: np.ndarray

    def __len__(self) -> int:
        return len(self.centers)

    @classmethod
    def empty(cls, num_joints: int) -> Pose25D:
        return cls(
            centers=np.zeros((0, 2), np.float32),
            root_depth=np.zeros((0,), np.float32),
            joints_uv=np.zeros((0, num_joints, 2), np.float32),
            joints_dz=np.zeros((0, num_joints), np.float32),
            visible=np.zeros((0, num_joints), bool),
            has_depth=np.zeros((0,), bool),
        )

    def __getitem__(self, item: Any) -> Pose25D:
        return Pose25D(
            self.centers[item], self.root_depth[item], self.joints_uv[item],
            self.joints_dz[item], self.visible[item], self.has_depth[item],
        )


def pose25d_from_3d(
    joints_3d: np.ndarray, visible: np.ndarray, camera: Intrinsics, root: int, width: int, height: int
) -> Pose25D:
    """(N, K, 3) camera-frame joints (metres) seen by ``camera`` → 2.5D in that image's pixels.

    Joints projecting outside ``[-0.5, W-0.5] × [-0.5, H-0.5]`` or behind the camera become invisible.
    """
    j = np.asarray(joints_3d, np.float64)
    n, k = j.shape[:2]
    if n == 0:
        return Pose25D.empty(k)
    z = j[..., 2]
    safe = np.where(z > 1e-6, z, 1.0)
    uv = camera.project(np.concatenate([j[..., :2], safe[..., None]], axis=-1))
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= width - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= height - 0.5)
    vis = np.asarray(visible, bool) & (z > 1e-6) & inside
    z_root = z[:, root]
    return Pose25D(
        centers=uv[:, root].astype(np.float32),
        root_depth=(z_root / camera.focal).astype(np.float32),
        joints_uv=uv.astype(np.float32),
        joints_dz=(z - z_root[:, None]).astype(np.float32),
        visible=vis,
        has_depth=np.ones((n,), bool),
    )

