"""Flatten per-level ``HeadOutputs`` into ``DenseOutputs`` and the matching cell centres."""

from __future__ import annotations

import torch
from torch import Tensor

from das_core.model.outputs import DenseOutputs, HeadOutputs

__all__ = ["cell_centers", "to_dense"]


def to_dense(outputs: HeadOutputs, depth_factor: float) -> DenseOutputs:
    """L levels of (B, C, H_l, W_l) → one (B, P, …) axis, level-major then row-major (P = Σ H_l·W_l)."""

    def flat(maps: list[Tensor]) -> Tensor:
        # (B, C, H, W) → (B, H·W, C), concatenated over levels → (B, P, C)
        return torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)

    scores = (torch.sigmoid(flat(outputs.cls_logits)) * torch.sigmoid(flat(outputs.centerness_logits))).squeeze(-1)
    root_depth = flat(outputs.root_depth).squeeze(-1) / depth_factor
    offsets = flat(outputs.offsets)
    sigma = flat(outputs.sigma)
    b, p, c = offsets.shape
    return DenseOutputs(scores, root_depth, offsets.reshape(b, p, c // 3, 3), sigma.reshape(b, p, c // 3, 3))


def cell_centers(
    sizes: list[tuple[int, int]], strides: tuple[int, ...], device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """Cell centres ``S·(j + 0.5), S·(i + 0.5)`` in network-input pixels, in ``to_dense`` order.

    Returns (P, 2) float32 centres (x, y) and (P,) float32 strides.
    """
    pts, strd = [], []
    for (h, w), s in zip(sizes, strides, strict=False):
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * s
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * s
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        pts.append(torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=-1))
        strd.append(torch.full((h * w,), float(s), device=device))
    return torch.cat(pts), torch.cat(strd)
