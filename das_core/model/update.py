"""Recursive + multi-source update of the joint offsets (DAS_SPEC §4.5).

Everything runs per pyramid level with shared weights, in *grid units*: cell (i, j) has centre
(j + 0.5, i + 0.5) and a joint offset (u, v) in stride units is also a displacement in cells. Sampling is
bilinear, zero outside the map, ``align_corners=False`` (normalised = 2·x/W − 1), always in float32.

Modes (``UpdateConfig.mode``, the Table 1b ablation switch): ``multi`` = the official branch (M target-side
+ M source-side samples, per-axis softmax); ``single`` = recursive self-sampling without multi-source
(one sample at the target with weight 1: ``U[p] ← Ũ[p] + Ũ[p + Ũ[p]]`` in u, v and ``Ũ_d[p + Ũ[p]]`` in d);
``none`` is handled by ``DAS`` (no update module).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from das_core.model.head import ConvGN, init_normal_convs

__all__ = ["RecursiveUpdate", "UpdateLayer", "sample_grid_units"]


def sample_grid_units(maps: Tensor, pos: Tensor) -> Tensor:
    """Bilinearly read ``maps`` (N, C, H, W) at ``pos`` (N, R, W', 2) = (x, y) in grid units.

    Returns (N, C, R, W'). Zero outside the map; float32 whatever the input dtype (DAS_SPEC §4.4).
    """
    h, w = maps.shape[-2:]
    pos = pos.float()
    # grid units → align_corners=False normalised coords: x ↦ 2·x/W − 1 (no host tensor: graph-friendly)
    grid = torch.stack([pos[..., 0] * (2.0 / w) - 1.0, pos[..., 1] * (2.0 / h) - 1.0], dim=-1)
    return F.grid_sample(maps.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _cell_centers(h: int, w: int, device: torch.device) -> Tensor:
    """(1, H, W, 2) cell centres (j + 0.5, i + 0.5) in grid units."""
    ys = torch.arange(h, device=device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=device, dtype=torch.float32) + 0.5
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1).unsqueeze(0)


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

    def forward(self, feat: Tensor, offsets: Tensor) -> tuple[Tensor, Tensor]:
        """feat (B, F, H, W), offsets U^{n−1} (B, 3K, H, W) → (refined feat, U^n before root-d zeroing)."""
        feat = feat + self.refine(feat)
        b, _, h, w = offsets.shape
        k, m = self.num_joints, self.num_points
        gate = torch.sigmoid(self.update_weight(feat).float())
        blended = (1.0 - gate) * offsets.float() + gate * self.update_value(feat).float()  # Ũ (DAS_SPEC §4.5c)

        u = blended.reshape(b * k, 3, h, w)  # one joint per row of the batch: (B·K, 3, H, W)
        a = u[:, :2].permute(0, 2, 3, 1)  # (B·K, H, W, 2) Ũ^{uv}: displacement to the target, cells
        p = _cell_centers(h, w, offsets.device)  # (1, H, W, 2)
        if not self.multi:
            # Self-sampling at the target, weight 1 (Table 1b "recursive update without multi-source").
            values = sample_grid_units(u, (p + a))  # (B·K, 3, H, W)
            shift = torch.cat([a.permute(0, 3, 1, 2), torch.zeros_like(values[:, :1])], dim=1)
            return feat, (values + shift).reshape(b, 3 * k, h, w)

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
        return feat, new.reshape(b, 3 * k, h, w)


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

    def forward(self, pose_feat: Tensor, offsets: Tensor) -> Tensor:
        feat = self.reduction(pose_feat)
        for layer in self.layers:
            feat, offsets = layer(feat, offsets)
            offsets = offsets * self._root_d_keep
        return offsets
