"""Modulated deformable convolution (DCNv2) in plain PyTorch: bilinear sampling + one matmul.

Runs on any device, differentiates w.r.t. input, weights, offsets and masks, and exports to ONNX
(``GridSample``, opset ≥ 16). Layout of the offset/mask tensor is the mmcv / torchvision one
(OFFICIAL_CHECKPOINT.md §6), so official DCNv2 weights copy 1:1: for kernel tap ``t = kw·row + col``
channel ``2t`` is Δy_t and ``2t + 1`` is Δx_t (input-map pixels), followed by k·k mask logits (sigmoid).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ModulatedDeformConv2d", "modulated_deform_conv2d"]


def modulated_deform_conv2d(
    x: Tensor,
    offset: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int = 1,
    padding: int = 1,
    dilation: int = 1,
) -> Tensor:
    """DCNv2: ``y[o, p] = Σ_t Σ_c w[o, c, t] · mask_t[p] · x_c(p_t + Δ_t[p]) + b[o]``.

    Args:
        x: (B, C, H, W) input.
        offset: (B, 2·T, H_o, W_o), T = kh·kw taps, interleaved (Δy_t, Δx_t) in input pixels.
        mask: (B, T, H_o, W_o) modulation in [0, 1] (already passed through a sigmoid).
        weight: (O, C, kh, kw); bias: (O,) or None.
        p_t = (i·stride − padding + row·dilation, j·stride − padding + col·dilation) is the regular tap
        position of output cell (i, j); samples outside the map read zero (bilinear, torchvision rule).

    Returns:
        (B, O, H_o, W_o).
    """
    b, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    taps = kh * kw
    ho, wo = offset.shape[-2:]
    dtype = x.dtype
    # Regular grid of tap positions, (T, H_o, W_o) each, in input pixel indices.
    ys = torch.arange(ho, device=x.device, dtype=offset.dtype) * stride - padding
    xs = torch.arange(wo, device=x.device, dtype=offset.dtype) * stride - padding
    ky = (torch.arange(kh, device=x.device, dtype=offset.dtype) * dilation).repeat_interleave(kw)
    kx = (torch.arange(kw, device=x.device, dtype=offset.dtype) * dilation).repeat(kh)
    base_y = ys.reshape(1, ho, 1) + ky.reshape(taps, 1, 1)  # (T, H_o, 1)
    base_x = xs.reshape(1, 1, wo) + kx.reshape(taps, 1, 1)  # (T, 1, W_o)
    off = offset.reshape(b, taps, 2, ho, wo)
    py = base_y.unsqueeze(0) + off[:, :, 0]  # (B, T, H_o, W_o)
    px = base_x.unsqueeze(0) + off[:, :, 1]
    # Pixel index → grid_sample's normalised coords (align_corners=False: index i ↔ (2i + 1)/W − 1).
    gx = (2.0 * px + 1.0) / w - 1.0
    gy = (2.0 * py + 1.0) / h - 1.0
    grid = torch.stack([gx, gy], dim=-1).reshape(b, taps * ho, wo, 2)  # taps stacked along rows
    sampled = F.grid_sample(x, grid.to(dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    sampled = sampled.reshape(b, c, taps, ho, wo) * mask.to(dtype).unsqueeze(1)  # (B, C, T, H_o, W_o)
    # (O, C·T) @ (B, C·T, H_o·W_o): the weight flattens as c·T + t, matching sampled's layout.
    out = torch.matmul(weight.reshape(o, c * taps), sampled.reshape(b, c * taps, ho * wo))
    out = out.reshape(b, o, ho, wo)
    if bias is not None:
        out = out + bias.reshape(1, o, 1, 1)
    return out


class ModulatedDeformConv2d(nn.Module):
    """DCNv2 layer whose offsets and masks come from its own ``conv_offset`` (3·k·k output channels).

    Parameter names (``weight``, ``bias``, ``conv_offset.weight``, ``conv_offset.bias``) and the
    27-channel layout equal mmcv's ``ModulatedDeformConv2dPack`` (OFFICIAL_CHECKPOINT.md §6).
    ``conv_offset`` starts at zero, so a fresh layer is a plain conv scaled by sigmoid(0) = 0.5.

    Shapes: (B, C_in, H, W) → (B, C_out, H_o, W_o).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.dilation = kernel_size, stride, padding, dilation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        taps = kernel_size * kernel_size
        self.conv_offset = nn.Conv2d(in_channels, 3 * taps, kernel_size, stride, padding, dilation, bias=True)
        # Same default as nn.Conv2d (kaiming-uniform a=√5); offsets/masks start neutral (zero logits).
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)  # type: ignore[arg-type]  # built with bias=True

    def forward(self, x: Tensor) -> Tensor:
        taps = self.kernel_size * self.kernel_size
        om = self.conv_offset(x)  # (B, 3T, H_o, W_o): [Δy_0, Δx_0, …, Δy_{T−1}, Δx_{T−1}, m_0 … m_{T−1}]
        offset, mask = om[:, : 2 * taps], torch.sigmoid(om[:, 2 * taps :])
        return modulated_deform_conv2d(x, offset, mask, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, bias={self.bias is not None}"
        )
