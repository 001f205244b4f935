"""Flatten per-level ``HeadOutputs`` into ``DenseOutputs`` and the matching cell centres."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from das_core.model.outputs import DenseOutputs, HeadOutputs

__all__ = ["cell_centers", "concat_levels", "level_sizes", "level_to_dense", "to_dense"]


def to_dense(outputs: HeadOutputs, depth_factor: float) -> DenseOutputs:
    """L levels of (B, C, H_l, W_l) → one (B, P, …) axis, level-major then row-major (P = Σ H_l·W_l)."""
    levels = [
        level_to_dense(*maps, depth_factor=depth_factor)
        for maps in zip(outputs.cls_logits, outputs.centerness_logits, outputs.root_depth, outputs.offsets,
                        outputs.sigma, strict=True)
    ]
    return concat_levels(levels)


def level_to_dense(
    cls_logits: Tensor, centerness_logits: Tensor, root_depth: Tensor, offsets: Tensor, sigma: Tensor,
    *, depth_factor: float,
) -> DenseOutputs:
    """One level's maps (B, ·, H, W) → (B, H·W, …) :class:`DenseOutputs` rows of that level."""

    def flat(m: Tensor) -> Tensor:  # (B, C, H, W) → (B, H·W, C)
        return m.flatten(2).transpose(1, 2)

    scores = (torch.sigmoid(flat(cls_logits)) * torch.sigmoid(flat(centerness_logits))).squeeze(-1)
    off, sig = flat(offsets), flat(sigma)
    b, p, c = off.shape
    return DenseOutputs(
        scores, flat(root_depth).squeeze(-1) / depth_factor, off.reshape(b, p, c // 3, 3), sig.reshape(b, p, c // 3, 3)
    )


def concat_levels(levels: list[DenseOutputs]) -> DenseOutputs:
    """Per-level :class:`DenseOutputs` → one, concatenated along P in level order."""
    return DenseOutputs(*(torch.cat(parts, dim=1) for parts in zip(*levels, strict=True)))


def level_sizes(height: int, width: int, strides: Sequence[int]) -> list[tuple[int, int]]:
    """Feature-map size of each level for a padded (H, W) input: ``ceil(H / S)`` × ``ceil(W / S)``.

    Stride-2 convs with padding 1 (and the 3×3 max-pool) round up, and nested ceil divisions compose.
    """
    return [(-(-height // s), -(-width // s)) for s in strides]


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
