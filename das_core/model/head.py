"""The shared DAS head (DAS_SPEC §4.4): three towers, five prediction branches, per-level scales.

Module names mirror the official ``DASHead`` where that costs nothing (``pose_convs.1.conv.conv_offset``,
``conv_cls``, ``conv_centerness``) so a converter maps keys with a short table (OFFICIAL_CHECKPOINT.md §5).
The unsupervised root-xy branch is dropped (DAS_SPEC §5.4).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from das_core.model.dcn import ModulatedDeformConv2d

__all__ = ["ConvGN", "DASHead", "LevelOutputs", "LevelScales", "init_normal_convs"]

PRIOR_PROB = 0.01  # center-logit bias = −log((1 − p)/p) ≈ −4.595 (DAS_SPEC §4.4)


class ConvGN(nn.Module):
    """3×3 (or 1×1) conv → GroupNorm → ReLU; ``conv`` is a DCNv2 when ``dcn`` (mmcv ConvModule names)."""

    def __init__(
        self, in_ch: int, out_ch: int, num_groups: int, kernel_size: int = 3, dcn: bool = False, bias: bool = True
    ) -> None:
        super().__init__()
        self.conv: nn.Module
        if dcn:
            if kernel_size != 3:
                raise ValueError("ConvGN: DCNv2 is only used with 3×3 kernels")
            self.conv = ModulatedDeformConv2d(in_ch, out_ch, 3, 1, 1, bias=bias)
        else:
            self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, 1, kernel_size // 2, bias=bias)
        self.gn = nn.GroupNorm(num_groups, out_ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.gn(self.conv(x)))


class LevelScales(nn.Module):
    """Learnable 0-dim multipliers for one pyramid level (init 1): root depth, joint u and v, joint d."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = nn.Parameter(torch.tensor(1.0))
        self.uv = nn.Parameter(torch.tensor(1.0))
        self.d = nn.Parameter(torch.tensor(1.0))


class LevelOutputs(NamedTuple):
    """Head outputs for one level (B, ·, H_l, W_l); channel meanings as in ``HeadOutputs``."""

    cls_logits: Tensor  # (B, 1, H, W)
    centerness_logits: Tensor  # (B, 1, H, W)
    root_depth: Tensor  # (B, 1, H, W) Z/f_eff × depth_factor
    offsets: Tensor  # (B, 3K, H, W) U⁰, root d = 0
    sigma: Tensor  # (B, 3K, H, W) sigmoid(logit) + 1e−9, root d-sigma = sigmoid(1)
    pose_feat: Tensor  # (B, F, H, W) pose-tower output, input of the recursive update


def init_normal_convs(module: nn.Module, std: float = 0.01) -> None:
    """Every plain ``nn.Conv2d`` in ``module`` ~ N(0, std²), bias 0 (DAS_SPEC §4.4).

    DCN ``conv_offset`` convs are skipped: they stay zero (library default, DAS_SPEC §4.4), and the
    DCN main weights keep their uniform init.
    """
    skip = {id(m.conv_offset) for m in module.modules() if isinstance(m, ModulatedDeformConv2d)}
    for m in module.modules():
        if isinstance(m, nn.Conv2d) and id(m) not in skip:
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class DASHead(nn.Module):
    """Shared head on every FPN level (weights shared, only the scales are per level).

    Args:
        in_channels: FPN channels.
        num_joints: K. root_index: the skeleton's root joint (its d offset is 0, its d-sigma logit 1).
        num_levels: L (one :class:`LevelScales` each).
        feat_channels, stacked_convs, use_dcn, num_groups, centerness_channels: ``HeadConfig``.

    ``forward_level(x (B, C, H, W), level) -> LevelOutputs``.
    """

    _root_d_keep: Tensor
    _is_uv: Tensor

    def __init__(
        self,
        *,
        in_channels: int,
        num_joints: int,
        root_index: int,
        num_levels: int,
        feat_channels: int = 256,
        stacked_convs: int = 2,
        use_dcn: bool = False,
        num_groups: int = 32,
        centerness_channels: int = 64,
    ) -> None:
        super().__init__()
        if not 0 <= root_index < num_joints:
            raise ValueError(f"root_index {root_index} outside 0..{num_joints - 1}")
        self.num_joints, self.root_index = num_joints, root_index
        f, g = feat_channels, num_groups

        def tower() -> nn.Sequential:
            layers = [
                ConvGN(in_channels if i == 0 else f, f, g, dcn=use_dcn and i == stacked_convs - 1)
                for i in range(stacked_convs)
            ]
            return nn.Sequential(*layers)

        # Order as in the official state dict: pose, cls, reg.
        self.pose_convs = tower()
        self.cls_convs = tower()
        self.reg_convs = tower()
        self.cls_prev = ConvGN(f, f, g)
        self.conv_cls = nn.Conv2d(f, 1, 1)
        self.depth_prev = ConvGN(f, f, g)
        self.conv_depth = nn.Conv2d(f, 1, 1)
        self.offset_prev = ConvGN(f, f, g)
        self.conv_offsets = nn.Conv2d(f, 3 * num_joints, 1)
        self.sigma_prev = ConvGN(f, f, g)
        self.conv_sigma = nn.Conv2d(f, 3 * num_joints, 1)
        self.centerness_prev = ConvGN(f, centerness_channels, g)
        self.conv_centerness = nn.Conv2d(centerness_channels, 1, 1)
        self.scales = nn.ModuleList(LevelScales() for _ in range(num_levels))

        # Channel 3·root + 2 (root d): offset forced to 0, sigma logit forced to 1 (DAS_SPEC §4.4).
        keep = torch.ones(1, 3 * num_joints, 1, 1)
        keep[:, 3 * root_index + 2] = 0.0
        self.register_buffer("_root_d_keep", keep, persistent=False)
        is_uv = torch.ones(1, 3 * num_joints, 1, 1)
        is_uv[:, 2::3] = 0.0
        self.register_buffer("_is_uv", is_uv, persistent=False)

        init_normal_convs(self)
        assert self.conv_cls.bias is not None
        nn.init.constant_(self.conv_cls.bias, -math.log((1 - PRIOR_PROB) / PRIOR_PROB))

    def forward_level(self, x: Tensor, level: int) -> LevelOutputs:
        """One level: x (B, C, H, W) float32 → :class:`LevelOutputs`."""
        pose_feat = self.pose_convs(x)
        cls_feat = self.cls_convs(x)
        reg_feat = self.reg_convs(x)
        s = self.scales[level]
        assert isinstance(s, LevelScales)
        cls_logits = self.conv_cls(self.cls_prev(cls_feat))
        centerness = self.conv_centerness(self.centerness_prev(reg_feat))
        root_depth = self.conv_depth(self.depth_prev(reg_feat)) * s.depth
        raw = self.conv_offsets(self.offset_prev(pose_feat))  # (B, 3K, H, W) interleaved (u, v, d)
        # u, v share one scale, d has its own; then the root's d is exactly 0.
        scale = self._is_uv * s.uv + (1.0 - self._is_uv) * s.d
        offsets = raw * scale * self._root_d_keep
        logits = self.conv_sigma(self.sigma_prev(pose_feat))
        logits = logits * self._root_d_keep + (1.0 - self._root_d_keep)  # root d-sigma logit := 1
        sigma = torch.sigmoid(logits) + 1e-9
        # _make, not LevelOutputs(...): compiled code must not call a NamedTuple's generated __new__
        # (das_core.engine.compile_cache.enable_dynamo_cache says why)
        return LevelOutputs._make((cls_logits, centerness, root_depth, offsets, sigma, pose_feat))
