"""Recursive + multi-source update of the joint offsets (DAS_SPEC §4.5).

Everything runs per pyramid level with shared weights, in *grid units*: cell (i, j) has centre
(j + 0.5, i + 0.5) and a joint offset (u, v) in stride units is also a displacement in cells. Sampling is
bilinear, zero outside the map, ``align_corners=False`` (normalised = 2·x/W − 1), always in float32.

Modes (``UpdateConfig.mode``, the Table 1b ablation switch): ``multi`` = the official branch (M target-side
+ M source-side samples, per-axis softmax); ``single`` = recursive self-sampling without multi-source
(one sample at the target with weight 1: ``U[p] ← Ũ[p] + Ũ[p + Ũ[p]]`` in u, v and ``Ũ_d[p + Ũ[p]]`` in d);
``none`` is handled by ``DAS`` (no update module).

Two samplers compute the same numbers (``RecursiveUpdate.sampler``, tested against each other and a
per-cell loop): ``grid_sample`` (default; cuDNN-free, fast backward, exports to ONNX ``GridSample``) and
``gather`` (explicit four-corner gathers from a joint-major, channels-last layout). ``gather`` exists for
compiled inference: Inductor turns ``grid_sample`` on the (B·K, C, H, W) maps of a channels-last model
into strided per-channel loads that re-evaluate the blend at every corner, ~0.2 ms per P3 layer on an H100,
while the gather form reads each corner's 3–6 channels from one contiguous vector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from das_core.model.dense import cell_grid
from das_core.model.head import ConvGN, init_normal_convs

__all__ = ["SAMPLERS", "RecursiveUpdate", "UpdateLayer", "sample_grid_units", "sample_joint_points"]

SAMPLERS = ("grid_sample", "gather")


def sample_grid_units(maps: Tensor, pos: Tensor) -> Tensor:
    """Bilinearly read ``maps`` (N, C, H, W) at ``pos`` (N, R, W', 2) = (x, y) in grid units.

    Returns (N, C, R, W'). Zero outside the map; float32 whatever the input dtype (DAS_SPEC §4.4).
    """
    h, w = maps.shape[-2:]
    pos = pos.float()
    # grid units → align_corners=False normalised coords: x ↦ 2·x/W − 1 (no host tensor: graph-friendly)
    grid = torch.stack([pos[..., 0] * (2.0 / w) - 1.0, pos[..., 1] * (2.0 / h) - 1.0], dim=-1)
    return F.grid_sample(maps.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def sample_joint_points(maps: Tensor, pos: Tensor) -> Tensor:
    """Bilinearly read per-joint maps at per-joint points, zero outside: the ``gather`` sampler.

    Args:
        maps: (B, H, W, K, C) — joint k's C channels at cell (i, j), channels last.
        pos: (B, K, S, 2) = (x, y) in grid units (cell (i, j) has centre (j + 0.5, i + 0.5)).

    Returns:
        (B, K, S, C) float32; the same numbers as :func:`sample_grid_units` on the (B·K, C, H, W) layout.
    """
    b, h, w, k, c = maps.shape
    flat = maps.float().reshape(b, h * w, k, c)
    x = pos[..., 0].float() - 0.5  # grid units → pixel-index coordinates (align_corners=False)
    y = pos[..., 1].float() - 0.5
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    bi = torch.arange(b, device=maps.device).view(b, 1, 1)
    ki = torch.arange(k, device=maps.device).view(1, k, 1)
    out: Tensor | None = None
    for dx, dy, wgt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
        # Clamped in float before the cast: far-away points (or inf) index a border cell with weight 0.
        cell = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long()
        term = flat[bi, cell, ki] * torch.where(inside, wgt, torch.zeros_like(wgt)).unsqueeze(-1)
        out = term if out is None else out + term
    assert out is not None
    return out


class UpdateLayer(nn.Module):
    """One refinement step n: residual feature refinement, gated blend, multi-source resampling.

    Parameter names follow the official ``layer_n.next_level_offset`` children (OFFICIAL_CHECKPOINT §5.5):
    ``refine`` = update_feat_conv (DCNv2 or 3×3, no bias, GN, ReLU), ``sampling_offset`` (K·M·2, ch =
    2M·k + 2m + c, c = 0 x / 1 y), ``sampling_conf`` (3K), ``update_weight`` (gate, 3K),
    ``update_value`` (fresh offsets V, 3K). ``single`` mode has no sampling convs.
    """

    def __init__(self, channels: int, num_joints: int, num_points: int, multi: bool, use_dcn: bool, num_groups: int) -> None:
        super().__init__()
        self.num_joints, self.num_points, self.multi = num_joints, num_points, multi
        k = num_joints
        self.refine = ConvGN(channels, channels, num_groups, dcn=use_dcn, bias=False)
        if multi:
            self.sampling_offset = nn.Conv2d(channels, k * num_points * 2, 1)
            self.sampling_conf = nn.Conv2d(channels, 3 * k, 1)
        self.update_weight = nn.Conv2d(channels, 3 * k, 1)
        self.update_value = nn.Conv2d(channels, 3 * k, 1)

    def forward(self, feat: Tensor, offsets: Tensor, sampler: str = "grid_sample") -> tuple[Tensor, Tensor]:
        """feat (B, F, H, W), offsets U^{n−1} (B, 3K, H, W) → (refined feat, U^n before root-d zeroing)."""
        feat = feat + self.refine(feat)
        gate = torch.sigmoid(self.update_weight(feat).float())
        blended = (1.0 - gate) * offsets.float() + gate * self.update_value(feat).float()  # Ũ (DAS_SPEC §4.5c)
        if sampler == "gather":
            return feat, self._resample_gather(feat, blended)
        return feat, self._resample_grid(feat, blended)

    def _resample_gather(self, feat: Tensor, blended: Tensor) -> Tensor:
        """Steps d–f of DAS_SPEC §4.5 on the joint-major layout (B, K, S, ·) with ``sample_joint_points``."""
        b, _, h, w = blended.shape
        k, m, hw = self.num_joints, self.num_points, h * w

        def per_joint(t: Tensor, c: int) -> Tensor:  # (B, K·c, H, W) → (B, H, W, K, c); free when channels-last
            return t.permute(0, 2, 3, 1).reshape(b, h, w, k, c)

        u = per_joint(blended, 3)
        a = u[..., :2].permute(0, 3, 1, 2, 4).reshape(b, k, hw, 2)  # Ũ^{uv}: displacement to the target, cells
        p = cell_grid(h, w, 1, blended.device).reshape(1, 1, hw, 2)  # grid units
        if not self.multi:
            values = sample_joint_points(u, p + a)  # (B, K, HW, 3)
            new = values + torch.cat([a, torch.zeros_like(a[..., :1])], dim=-1)
        else:
            delta = per_joint(self.sampling_offset(feat).float(), 2 * m)  # (B, H, W, K, 2M), ch = 2m + c
            conf = per_joint(self.sampling_conf(feat).float(), 3)
            at_target = sample_joint_points(delta, p + a)  # (B, K, HW, 2M)
            r_tgt = a.unsqueeze(2) + at_target.reshape(b, k, hw, m, 2).permute(0, 1, 3, 2, 4)  # (B, K, M, HW, 2)
            r_src = delta.permute(0, 3, 1, 2, 4).reshape(b, k, hw, m, 2).permute(0, 1, 3, 2, 4)
            r = torch.cat([r_tgt, r_src], dim=2)  # (B, K, 2M, HW, 2)
            sampled = sample_joint_points(torch.cat([u, conf], dim=-1), (p.unsqueeze(2) + r).reshape(b, k, 2 * m * hw, 2))
            sampled = sampled.reshape(b, k, 2 * m, hw, 6)
            candidates = sampled[..., :3] + torch.cat([r, torch.zeros_like(r[..., :1])], dim=-1)
            weights = torch.softmax(sampled[..., 3:], dim=2)  # per axis over the 2M samples
            new = (weights * candidates).sum(dim=2)  # (B, K, HW, 3)
        return new.permute(0, 2, 1, 3).reshape(b, h, w, 3 * k).permute(0, 3, 1, 2)

    def _resample_grid(self, feat: Tensor, blended: Tensor) -> Tensor:
        """Steps d–f of DAS_SPEC §4.5 on the (B·K, C, H, W) layout with ``grid_sample``."""
        b, _, h, w = blended.shape
        k, m = self.num_joints, self.num_points
        u = blended.reshape(b * k, 3, h, w)  # one joint per row of the batch: (B·K, 3, H, W)
        a = u[:, :2].permute(0, 2, 3, 1)  # (B·K, H, W, 2) Ũ^{uv}: displacement to the target, cells
        p = cell_grid(h, w, 1, blended.device).unsqueeze(0)  # (1, H, W, 2) grid units
        if not self.multi:
            # Self-sampling at the target, weight 1 (Table 1b "recursive update without multi-source").
            values = sample_grid_units(u, (p + a))  # (B·K, 3, H, W)
            shift = torch.cat([a.permute(0, 3, 1, 2), torch.zeros_like(values[:, :1])], dim=1)
            return (values + shift).reshape(b, 3 * k, h, w)

        delta = self.sampling_offset(feat).float().reshape(b * k, 2 * m, h, w)  # (B·K, M·2, H, W)
        conf = self.sampling_conf(feat).float().reshape(b * k, 3, h, w)
        # Target side: r_m = a + Δ_{k,m}(p + a) (displacements read at the target); source side: Δ_{k,m}(p).
        at_target = sample_grid_units(delta, p + a)  # (B·K, 2M, H, W)
        r_tgt = a.unsqueeze(1) + at_target.reshape(b * k, m, 2, h, w).permute(0, 1, 3, 4, 2)
        r_src = delta.reshape(b * k, m, 2, h, w).permute(0, 1, 3, 4, 2)
        r = torch.cat([r_tgt, r_src], dim=1)  # (B·K, 2M, H, W, 2)
        pos = (p.unsqueeze(1) + r).reshape(b * k, 2 * m * h, w, 2)  # samples stacked along rows
        sampled = sample_grid_units(torch.cat([u, conf], dim=1), pos).reshape(b * k, 6, 2 * m, h, w)
        # Candidate = sampled offset + (r_x, r_y, 0): re-expressed relative to p; d is root-relative.
        shift = torch.cat([r.permute(0, 4, 1, 2, 3), torch.zeros_like(r[..., :1]).permute(0, 4, 1, 2, 3)], dim=1)
        candidates = sampled[:, :3] + shift  # (B·K, 3, 2M, H, W)
        weights = torch.softmax(sampled[:, 3:], dim=2)  # per axis over the 2M samples
        new = (weights * candidates).sum(dim=2)  # (B·K, 3, H, W)
        return new.reshape(b, 3 * k, h, w)


class RecursiveUpdate(nn.Module):
    """``forward(pose_feat (B, F, H, W), offsets U⁰ (B, 3K, H, W)) -> U^L (B, 3K, H, W)``, root d = 0.

    Args:
        in_channels: pose-tower channels F. num_joints: K. root_index: skeleton root.
        num_layers: L refinement steps. num_points: M samples per side. mode: ``multi`` or ``single``.
        use_dcn: DCNv2 (official) or plain 3×3 in the residual refinement. num_groups: GroupNorm groups.
    Nothing is detached: gradients reach U⁰, pose_feat and every sample position.
    """

    _root_d_keep: Tensor

    def __init__(
        self,
        *,
        in_channels: int,
        num_joints: int,
        root_index: int,
        num_layers: int = 1,
        num_points: int = 4,
        mode: str = "multi",
        use_dcn: bool = False,
        num_groups: int = 32,
    ) -> None:
        super().__init__()
        if mode not in ("multi", "single"):
            raise ValueError(f"update.mode: RecursiveUpdate needs 'multi' or 'single', got {mode!r}")
        self.mode = mode
        self.reduction = ConvGN(in_channels, in_channels, num_groups, kernel_size=1, bias=False)
        self.layers = nn.ModuleList(
            UpdateLayer(in_channels, num_joints, num_points if mode == "multi" else 1, mode == "multi", use_dcn, num_groups)
            for _ in range(num_layers)
        )
        keep = torch.ones(1, 3 * num_joints, 1, 1)
        keep[:, 3 * root_index + 2] = 0.0
        self.register_buffer("_root_d_keep", keep, persistent=False)
        init_normal_convs(self)
        # Which of the two equivalent samplers runs (module docstring); compiled backends pick "gather".
        self.sampler = "grid_sample"

    def forward(self, pose_feat: Tensor, offsets: Tensor) -> Tensor:
        if self.sampler not in SAMPLERS:
            raise ValueError(f"RecursiveUpdate.sampler: expected one of {list(SAMPLERS)}, got {self.sampler!r}")
        feat = self.reduction(pose_feat)
        for layer in self.layers:
            feat, offsets = layer(feat, offsets, self.sampler)
            offsets = offsets * self._root_d_keep
        return offsets
