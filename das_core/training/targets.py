"""Target assignment: per-image 2.5D ground truth → dense per-cell training targets (DAS_SPEC §5).

Every cell of every pyramid level is either background or assigned to exactly one person:

1. ``r_max`` = the largest 2D distance from a *visible* joint to the person centre (px of the network input).
2. The person lives on the level whose regress range ``lo ≤ r_max ≤ hi`` contains it (both ends
   inclusive, as in the official code — so an ``r_max`` exactly on a shared boundary lands on both levels).
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
import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from das_core.config import ModelConfig
from das_core.model.dense import cell_center, cell_centers
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
        """Move every tensor to ``device`` (asynchronously when the source is pinned)."""
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
    grid = _Grid(
        sizes=[(int(h), int(w)) for h, w in sizes],
        strides=[float(st) for st in strides],
        starts=[int(x) for x in np.cumsum([0] + [h * w for h, w in sizes])[:-1]],
        points=points.double(),
        point_strides=point_strides.double(),
    )

    out = _empty_targets(len(gts), points.shape[0], num_joints)
    for i, gt in enumerate(gts):
        # Each image writes into its row of the batch tensors (no per-image allocation + stack).
        _assign_image(gt, i, grid, num_joints, cfg, Targets(*(t[i] for t in out)))
    return out.to(device)


class _Grid(NamedTuple):
    """The cells of all levels: per-level (H, W), stride, first flat index; (P, 2) centres, (P,) strides."""

    sizes: list[tuple[int, int]]
    strides: list[float]
    starts: list[int]
    points: Tensor
    point_strides: Tensor


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


def _candidates(
    centers: Tensor, r_max: Tensor, usable: Tensor, grid: _Grid, cfg: ModelConfig
) -> tuple[Tensor, Tensor, Tensor]:
    """All (cell, person) pairs passing the range and centre-sampling tests, without touching all P cells.

    Only a window of ``2·ceil(r) + 2`` cells per axis around each centre can satisfy ``|p − c| < r·S``,
    so the work is O(N) per level instead of O(P·N).

    Returns:
        flat cell index (Q,) long, person index (Q,) long, distance ``‖p − c‖`` (Q,) float64 px.
    """
    radius = cfg.targets.center_sample_radius
    steps = torch.arange(-math.ceil(radius), math.ceil(radius) + 2, dtype=torch.float64)  # (S,)
    found: list[tuple[Tensor, Tensor, Tensor]] = []
    for (h, w), stride, start, (lo, hi) in zip(
        grid.sizes, grid.strides, grid.starts, cfg.targets.regress_ranges, strict=True
    ):
        people = (usable & (lo <= r_max) & (r_max <= hi)).nonzero().squeeze(1)  # (n,)
        if people.numel() == 0:
            continue
        c = centers[people]  # (n, 2) px
        base = torch.floor(c / stride - 0.5)  # (n, 2) the cell whose centre (cell_center) is at or before c
        cols = base[:, 0:1] + steps  # (n, S) candidate j
        rows = base[:, 1:2] + steps  # (n, S) candidate i
        px, py = cell_center(cols, stride), cell_center(rows, stride)
        ok_x = ((px - c[:, 0:1]).abs() < radius * stride) & (cols >= 0) & (cols < w)
        ok_y = ((py - c[:, 1:2]).abs() < radius * stride) & (rows >= 0) & (rows < h)
        n_idx, a, b = (ok_y[:, :, None] & ok_x[:, None, :]).nonzero(as_tuple=True)  # (q,) each
        flat_cell = start + rows[n_idx, a].long() * w + cols[n_idx, b].long()
        dist = torch.hypot(px[n_idx, b] - c[n_idx, 0], py[n_idx, a] - c[n_idx, 1])
        found.append((flat_cell, people[n_idx], dist))
    if not found:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, torch.zeros(0, dtype=torch.float64)
    cell, person, dist = (torch.cat(parts) for parts in zip(*found, strict=True))
    return cell, person, dist


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


def _assign_image(gt: Pose25D, image: int, grid: _Grid, k: int, cfg: ModelConfig, out: Targets) -> None:
    """One image → fills ``out`` ((P, …) views of the zeroed batch tensors)."""
    _check_gt(gt, image, k)
    if len(gt) == 0:
        return

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

    # 2. + 3. candidate (cell, person) pairs: level by the inclusive range, cells by strict centre sampling.
    cell, person, dist = _candidates(centers, r_max, usable, grid, cfg)  # (Q,) each
    if cell.numel() == 0:
        return

    # 4. nearest centre wins; exact distance ties go to the lower person index.
    p = grid.points.shape[0]
    best = torch.full((p,), float("inf"), dtype=torch.float64).scatter_reduce(0, cell, dist, "amin")
    no_person = len(gt)
    contender = torch.where(dist == best[cell], person, torch.full_like(person, no_person))
    owner_of_cell = torch.full((p,), no_person, dtype=torch.long).scatter_reduce(0, cell, contender, "amin")
    cells = (owner_of_cell < no_person).nonzero().squeeze(1)  # (M,)
    owner = owner_of_cell[cells]  # (M,)
    s = grid.point_strides[cells]  # (M,)
    cell_xy = grid.points[cells]  # (M, 2)
    centerness = torch.exp(
        -cfg.targets.centerness_alpha * best[cells] / (1.414 * cfg.targets.center_sample_radius * s)
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
