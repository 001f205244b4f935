"""Target assignment: per-image 2.5D ground truth → dense per-cell training targets (DAS_SPEC §5).

Every cell of every pyramid level is either background or assigned to exactly one person:

1. ``r_max`` = the largest 2D distance from a *visible* joint to the person centre (px of the network input).
2. The person lives on the single level whose regress range ``lo ≤ r_max ≤ hi`` contains it (both ends
   inclusive, as in the official code).
3. On that level, cells whose centre ``p`` satisfies ``|p_x − c_x| < r·S`` and ``|p_y − c_y| < r·S``
   (strict, r = 1.5) are candidates — normally a 3×3 block (DAS_SPEC §11.11).
4. A cell claimed by several persons goes to the person whose centre is nearest to ``p``
   (exact distance ties: the lower person index).

Persons without a finite centre or without any visible joint produce no positives (they carry no
supervision; DAS_SPEC §2.3 filters them upstream anyway). 2D-only persons (COCO, ``has_depth`` False) are
positives like any other; their depth targets are 0 and ``has_depth`` tells the losses to skip depth.

The flattened layout is exactly that of :func:`das_core.model.dense.to_dense`: level-major, then
row-major, ``P = Σ_l H_l·W_l``.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from das_core.config import ModelConfig
from das_core.model.dense import cell_centers
from das_core.pose25d import Pose25D
from das_core.skeletons import get_skeleton

__all__ = ["Targets", "assign_targets"]

logger = logging.getLogger(__name__)


class Targets(NamedTuple):
    """Dense training targets for a batch, aligned with ``to_dense`` (B images, P cells, K joints).

    Attributes:
        positive: (B, P) bool, the cell is assigned to a person.
        person_index: (B, P) long, index into that image's ``Pose25D`` (−1 = background).
        centerness: (B, P) float32 ``exp(−α·‖p − c‖ / (1.414·r·S))`` on positives, 0 elsewhere.
        root_depth: (B, P) float32 ``Z_root / f_eff × depth_factor`` (same units as the raw head
            ``root_depth`` maps); 0 on background and for 2D-only persons.
        offsets: (B, P, K, 3) float32 per joint ``(u, v, d)``: u, v = (joint − p) / S in stride units
            relative to the cell centre ``S·(j + 0.5)``; d = dz / z_norm. 0 for invisible joints,
            background cells and the depth of 2D-only persons.
        joint_weight: (B, P, K) float32 visibility (1 visible, 0 otherwise; 0 on background).
        has_depth: (B, P) bool, the assigned person has 3D labels (False on background).
    """

    positive: Tensor
    person_index: Tensor
    centerness: Tensor
    root_depth: Tensor
    offsets: Tensor
    joint_weight: Tensor
    has_depth: Tensor

    @property
    def num_images(self) -> int:
        return int(self.positive.shape[0])

    def to(self, device: torch.device | str) -> Targets:
        """Move every tensor to ``device`` (non-blocking where the source is pinned)."""
        return Targets(*(t.to(device, non_blocking=True) for t in self))


def assign_targets(
    gts: list[Pose25D],
    sizes: list[tuple[int, int]],
    strides: tuple[int, ...],
    cfg: ModelConfig,
    device: torch.device | str = "cpu",
) -> Targets:
    """Assign every cell of every level to a person or to background (DAS_SPEC §5).

    Args:
        gts: one :class:`Pose25D` per image, in network-input pixels.
        sizes: (H_l, W_l) of each level's feature map (shared by the whole padded batch).
        strides: stride S_l of each level (px); must equal ``cfg.strides`` (DAS_SPEC §4.3).
        cfg: model config (regress ranges, centre-sampling radius, centerness α, depth_factor, z_norm).
        device: where the returned tensors live.

    Returns:
        :class:`Targets` with (B, P, …) tensors in ``to_dense`` order.
    """
    if len(sizes) != len(strides):
        raise ValueError(f"assign_targets: {len(sizes)} level sizes but {len(strides)} strides")
    if tuple(int(s) for s in strides) != tuple(cfg.strides):
        raise ValueError(
            f"assign_targets: feature strides {tuple(strides)} differ from config strides {tuple(cfg.strides)}; "
            "regress ranges are defined per configured level (DAS_SPEC §4.3)"
        )
    num_joints = get_skeleton(cfg.skeleton).num_joints

    # Geometry in float64 so the strict |p − c| < r·S test is exact for hand-placed coordinates.
    points, point_strides = cell_centers(sizes, strides, "cpu")
    points, point_strides = points.double(), point_strides.double()
    level_of_cell = torch.repeat_interleave(
        torch.arange(len(sizes)), torch.tensor([h * w for h, w in sizes], dtype=torch.long)
    )
    ranges = torch.tensor(cfg.targets.regress_ranges, dtype=torch.float64)  # (L, 2)
    lo, hi = ranges[level_of_cell, 0], ranges[level_of_cell, 1]  # (P,)

    per_image = [
        _assign_image(gt, i, points, point_strides, lo, hi, num_joints, cfg) for i, gt in enumerate(gts)
    ]
    p = points.shape[0]
    if not per_image:
        return _empty_targets(0, p, num_joints).to(device)
    stacked = Targets(*(torch.stack(fields) for fields in zip(*per_image, strict=True)))
    return stacked.to(device)


def _empty_targets(b: int, p: int, k: int) -> Targets:
    return Targets(
        positive=torch.zeros(b, p, dtype=torch.bool),
        person_index=torch.full((b, p), -1, dtype=torch.long),
        centerness=torch.zeros(b, p),
        root_depth=torch.zeros(b, p),
        offsets=torch.zeros(b, p, k, 3),
        joint_weight=torch.zeros(b, p, k),
        has_depth=torch.zeros(b, p, dtype=torch.bool),
    )


def _check_gt(gt: Pose25D, image: int, k: int) -> None:
    n = len(gt.centers)
    expected = {
        "centers": (n, 2),
        "root_depth": (n,),
        "joints_uv": (n, k, 2),
        "joints_dz": (n, k),
        "visible": (n, k),
        "has_depth": (n,),
    }
    for name, shape in expected.items():
        got = tuple(np.shape(getattr(gt, name)))
        if got != shape:
            raise ValueError(f"assign_targets: image {image}: Pose25D.{name} has shape {got}, expected {shape}")


def _assign_image(
    gt: Pose25D,
    image: int,
    points: Tensor,
    point_strides: Tensor,
    lo: Tensor,
    hi: Tensor,
    k: int,
    cfg: ModelConfig,
) -> Targets:
    """One image: (P, 2) cell centres, (P,) strides and level ranges → single-image targets (no batch dim)."""
    _check_gt(gt, image, k)
    p = points.shape[0]
    out = _empty_targets(1, p, k)
    out = Targets(*(t[0] for t in out))
    if len(gt) == 0:
        return out

    centers = torch.as_tensor(np.asarray(gt.centers, np.float64))  # (N, 2)
    uv = torch.as_tensor(np.asarray(gt.joints_uv, np.float64))  # (N, K, 2)
    dz = torch.as_tensor(np.asarray(gt.joints_dz, np.float64))  # (N, K) metres
    visible = torch.as_tensor(np.asarray(gt.visible, bool))  # (N, K)
    has_depth = torch.as_tensor(np.asarray(gt.has_depth, bool))  # (N,)
    root_depth = torch.as_tensor(np.asarray(gt.root_depth, np.float64))  # (N,) Z / f_eff

    bad_joint = visible & ~torch.isfinite(uv).all(-1)
    if bad_joint.any():
        n_bad, k_bad = (int(i) for i in bad_joint.nonzero()[0])
        raise ValueError(f"assign_targets: image {image}: person {n_bad} joint {k_bad} is visible but not finite")
    if (has_depth & ~torch.isfinite(root_depth)).any() or (has_depth[:, None] & visible & ~torch.isfinite(dz)).any():
        raise ValueError(f"assign_targets: image {image}: non-finite depth for a person with has_depth=True")

    has_center = torch.isfinite(centers).all(-1)
    has_joint = visible.any(-1)
    usable = has_center & has_joint  # (N,)
    if not usable.all():
        logger.debug("image %d: %d person(s) without centre or visible joint left as background", image,
                     int((~usable).sum()))
    centers = torch.where(has_center[:, None], centers, torch.zeros_like(centers))

    # 1. r_max over visible joints (invisible joints count 0).
    joint_dist = torch.linalg.vector_norm(torch.nan_to_num(uv) - centers[:, None, :], dim=-1)  # (N, K)
    r_max = torch.where(visible, joint_dist, torch.zeros_like(joint_dist)).amax(-1)  # (N,)

    # 2. + 3. centre sampling (strict square of half-side r·S) and the inclusive level range, (P, N).
    delta = points[:, None, :] - centers[None, :, :]  # (P, N, 2)
    half = cfg.targets.center_sample_radius * point_strides  # (P,)
    inside = (delta.abs() < half[:, None, None]).all(-1)
    in_range = (lo[:, None] <= r_max[None, :]) & (r_max[None, :] <= hi[:, None])
    candidate = inside & in_range & usable[None, :]

    # 4. nearest centre wins; argmin returns the lowest index on exact ties.
    dist = torch.linalg.vector_norm(delta, dim=-1)  # (P, N)
    person = torch.where(candidate, dist, torch.full_like(dist, float("inf"))).argmin(-1)  # (P,)
    positive = candidate.any(-1)
    cells = positive.nonzero().squeeze(1)  # (M,)
    if cells.numel() == 0:
        return out
    owner = person[cells]  # (M,)
    s = point_strides[cells]  # (M,)
    cell_xy = points[cells]  # (M, 2)

    centerness = torch.exp(
        -cfg.targets.centerness_alpha * dist[cells, owner] / (1.414 * cfg.targets.center_sample_radius * s)
    )
    vis = visible[owner]  # (M, K)
    depth_ok = has_depth[owner]  # (M,)
    uv_t = (torch.nan_to_num(uv[owner]) - cell_xy[:, None, :]) / s[:, None, None]  # (M, K, 2) stride units
    d_t = torch.nan_to_num(dz[owner]) / cfg.z_norm  # (M, K) z_norm units
    d_t = torch.where(depth_ok[:, None], d_t, torch.zeros_like(d_t))
    offsets = torch.cat([uv_t, d_t[..., None]], dim=-1)
    offsets = torch.where(vis[..., None], offsets, torch.zeros_like(offsets))  # never NaN, even under weight 0
    root_t = torch.where(depth_ok, torch.nan_to_num(root_depth[owner]) * cfg.depth_factor, torch.zeros_like(s))

    out.positive[cells] = True
    out.person_index[cells] = owner
    out.centerness[cells] = centerness.float()
    out.root_depth[cells] = root_t.float()
    out.offsets[cells] = offsets.float()
    out.joint_weight[cells] = vis.float()
    out.has_depth[cells] = depth_ok
    return out
