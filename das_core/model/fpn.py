"""Feature pyramid (mmdet FPN semantics, DAS_SPEC §4.1b / §4.2) with strides read from the backbone record.

Levels used: backbone outputs ``start_level .. start_level + n − 1`` (lateral 1×1 + output 3×3 convs,
top-down nearest upsampling to the finer map's size), then ``num_outs − n`` extra 3×3 stride-2 convs.
The first extra conv reads the last backbone map (``extra_convs_on: input``) or the last FPN output
(``output``) with no ReLU in front; a ReLU precedes each further extra conv when
``relu_before_extra_convs`` (the official neck, OFFICIAL_CHECKPOINT.md §4). Names ``lateral_convs.i`` /
``fpn_convs.i`` (``.conv``, ``.bn``) equal the official neck's.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from das_core.model.backbone import FeatureInfo, check_feature_info, make_norm

__all__ = ["FPN", "ConvNorm"]


class ConvNorm(nn.Module):
    """Conv with an optional BatchNorm and no activation (conv bias only when there is no norm)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int, norm: str) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, bias=norm == "none")
        self.bn = make_norm(norm, out_ch) if norm != "none" else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return x if self.bn is None else self.bn(x)


class FPN(nn.Module):
    """``forward(features: list[Tensor]) -> list[Tensor]`` of ``num_outs`` maps with ``out_channels``.

    Args:
        in_info: the backbone's ``feature_info`` (channels and strides of its outputs).
        out_channels, start_level, num_outs, extra_convs_on, relu_before_extra_convs, norm: ``FPNConfig``.
    ``feature_info`` / ``strides`` of the outputs are derived from ``in_info`` (extra levels double).
    """

    def __init__(
        self,
        *,
        in_info: list[FeatureInfo],
        out_channels: int = 256,
        start_level: int = 1,
        num_outs: int = 5,
        extra_convs_on: str = "output",
        relu_before_extra_convs: bool = True,
        norm: str = "none",
    ) -> None:
        super().__init__()
        check_feature_info(in_info)
        if not 0 <= start_level < len(in_info):
            raise ValueError(f"fpn.start_level: {start_level} but the backbone has {len(in_info)} outputs")
        if extra_convs_on not in ("input", "output"):
            raise ValueError(f"fpn.extra_convs_on: expected 'input' or 'output', got {extra_convs_on!r}")
        if norm not in ("none", "bn", "syncbn"):
            raise ValueError(f"fpn.norm: expected 'none', 'bn' or 'syncbn', got {norm!r}")
        self.start_level = start_level
        self.num_used = min(num_outs, len(in_info) - start_level)
        self.extra_convs_on = extra_convs_on
        self.relu_before_extra_convs = relu_before_extra_convs
        used = in_info[start_level : start_level + self.num_used]
        self.lateral_convs = nn.ModuleList(ConvNorm(f.channels, out_channels, 1, 1, norm) for f in used)
        fpn_convs = [ConvNorm(out_channels, out_channels, 3, 1, norm) for _ in used]
        self.feature_info = [FeatureInfo(out_channels, f.stride) for f in used]
        for i in range(num_outs - self.num_used):
            src_ch = used[-1].channels if (i == 0 and extra_convs_on == "input") else out_channels
            fpn_convs.append(ConvNorm(src_ch, out_channels, 3, 2, norm))
            self.feature_info.append(FeatureInfo(out_channels, self.feature_info[-1].stride * 2))
        self.fpn_convs = nn.ModuleList(fpn_convs)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(f.stride for f in self.feature_info)

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        inputs = features[self.start_level : self.start_level + self.num_used]
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs, strict=True)]
        for i in range(len(laterals) - 1, 0, -1):  # top-down: coarse → fine
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=laterals[i - 1].shape[-2:], mode="nearest")
        outs = [self.fpn_convs[i](lat) for i, lat in enumerate(laterals)]
        for j in range(self.num_used, len(self.fpn_convs)):
            if j == self.num_used:
                x = inputs[-1] if self.extra_convs_on == "input" else outs[-1]
            else:
                x = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
            outs.append(self.fpn_convs[j](x))
        return outs
