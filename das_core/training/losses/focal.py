"""Sigmoid focal loss for the person-centre classifier (DAS_SPEC §6.1)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["sigmoid_focal_loss"]


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Element-wise binary focal loss ``−α_t (1 − p_t)^γ log p_t`` (Lin et al. 2017).

    Args:
        logits: (...) raw logits.
        targets: (...) same shape, 1 = person centre, 0 = background (soft values allowed).
        alpha: weight of the positive class (1 − alpha for negatives); a negative value disables it.
        gamma: focusing exponent.

    Returns:
        (...) per-element loss, unreduced (the caller normalises by ``|P| + N_img``).
    """
    if logits.shape != targets.shape:
        raise ValueError(f"sigmoid_focal_loss: logits {tuple(logits.shape)} vs targets {tuple(targets.shape)}")
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t).pow(gamma)
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss
