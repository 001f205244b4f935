"""Plain L1 joint-offset loss: the "no MLE" baseline of the Table 1 ablations (DAS_SPEC §12)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["l1_pose_loss"]


def l1_pose_loss(pred: Tensor, target: Tensor, weight: Tensor, has_depth: Tensor) -> tuple[Tensor, Tensor]:
    """L1 on (u, v, d) offsets weighted by visibility; 2D-only persons get no depth term.

    Args:
        pred: (M, K, 3) predicted offsets (u, v in stride units, d in z_norm units).
        target: (M, K, 3) target offsets.
        weight: (M, K) joint weights (visibility).
        has_depth: (M,) bool, the cell's person has 3D labels.

    Returns:
        ``(Σ weight · Σ_a |U_a − T_a|, Σ weight)``, normalised by the caller exactly like the RLE loss.
    """
    if pred.shape != target.shape or pred.shape[-1] != 3:
        raise ValueError(f"l1_pose_loss: pred {tuple(pred.shape)} and target {tuple(target.shape)} must be (M, K, 3)")
    axis_w = torch.ones_like(pred)
    axis_w[..., 2] = has_depth.to(pred.dtype)[:, None]  # (M, K, 3): depth counts only with 3D labels
    keep = weight > 0
    err = ((pred - target).abs() * axis_w)[keep].sum(-1)  # (V,)
    w = weight[keep]
    return (err * w).sum(), w.sum()
