"""Flatten per-level ``HeadOutputs`` into ``DenseOutputs`` and the matching cell centres."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from das_core.model.outputs import DenseOutputs, HeadOutputs

__all__ = ["cell_center", "cell_centers", "cell_grid", "concat_levels", "level_sizes", "level_to_dense", "to_dense"]


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
    scores = (torch.sigmoid(_flat(cls_logits)) * torch.sigmoid(_flat(centerness_logits))).squeeze(-1)
    off, sig = _flat(offsets), _flat(sigma)
    b, p, c = off.shape
    # _make: compiled code must not call a NamedTuple's generated __new__ (compile_cache.enable_dynamo_cache)
    return DenseOutputs._make(
        (scores, _flat(root_depth).squeeze(-1) / depth_factor, off.reshape(b, p, c // 3, 3), sig.reshape(b, p, c // 3, 3))
    )


def _flat(m: Tensor) -> Tensor:
    """(B, C, H, W) → (B, H·W, C)."""
    return m.flatten(2).transpose(1, 2)


def concat_levels(levels: list[DenseOutputs]) -> DenseOutputs:
    """Per-level :class:`DenseOutputs` → one, concatenated along P in level order."""
    return DenseOutputs._make(torch.cat(parts, dim=1) for parts in zip(*levels, strict=True))


def level_sizes(height: int, width: int, strides: Sequence[int]) -> list[tuple[int, int]]:
    """Feature-map size of each level for a padded (H, W) input: ``ceil(H / S)`` × ``ceil(W / S)``.

    Stride-2 convs with padding 1 (and the 3×3 max-pool) round up, and nested ceil divisions compose.
    """
    return [(-(-height // s), -(-width // s)) for s in strides]


def cell_center(index: Tensor, stride: float) -> Tensor:
    """Where a cell is — the one rule: cell ``index`` (per axis) of a level of ``stride`` has its centre at
    ``S·(index + 0.5)`` network-input pixels; ``stride=1`` gives grid units (the recursive update's)."""
    return (index + 0.5) * stride


def cell_grid(h: int, w: int, stride: float, device: torch.device | str = "cpu") -> Tensor:
    """(H, W, 2) float32 centres (x, y) of one level's cells: cell (i, j) at ``S·(j + 0.5), S·(i + 0.5)``."""
    ys = cell_center(torch.arange(h, device=device, dtype=torch.float32), stride)
    xs = cell_center(torch.arange(w, device=device, dtype=torch.float32), stride)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx, yy], dim=-1)


def cell_centers(
    sizes: list[tuple[int, int]], strides: tuple[int, ...], device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """Cell centres of every level in network-input pixels, in ``to_dense`` order.

    Returns (P, 2) float32 centres (x, y) and (P,) float32 strides.
    """
    pts, strd = [], []
    for (h, w), s in zip(sizes, strides, strict=False):
        pts.append(cell_grid(h, w, s, device).reshape(-1, 2))
        strd.append(torch.full((h * w,), float(s), device=device))
    return torch.cat(pts), torch.cat(strd)
