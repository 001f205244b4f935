"""Sigmoid focal loss (DAS_SPEC §6.1)."""

from __future__ import annotations

import math

import pytest
import torch

from das_core.training.losses.focal import sigmoid_focal_loss


def test_matches_the_closed_form_at_logit_zero() -> None:
    logits = torch.zeros(2)
    targets = torch.tensor([1.0, 0.0])
    loss = sigmoid_focal_loss(logits, targets, alpha=0.25, gamma=2.0)
    # p = 0.5 for both: CE = ln 2, (1 − p_t)^2 = 0.25, α_t = 0.25 (positive) / 0.75 (negative)
    assert loss.tolist() == pytest.approx([0.25 * 0.25 * math.log(2), 0.75 * 0.25 * math.log(2)])


def test_confident_correct_cells_cost_almost_nothing_compared_with_cross_entropy() -> None:
    logits = torch.tensor([6.0, -6.0])
    targets = torch.tensor([1.0, 0.0])
    focal = sigmoid_focal_loss(logits, targets)
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    assert (focal < 1e-4 * ce).all()


def test_gamma_zero_and_no_alpha_is_plain_cross_entropy() -> None:
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(50, generator=gen) * 3
    targets = (torch.rand(50, generator=gen) > 0.5).float()
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0.0), ce)


def test_large_logits_stay_finite() -> None:
    loss = sigmoid_focal_loss(torch.tensor([100.0, -100.0]), torch.tensor([0.0, 1.0]))
    assert torch.isfinite(loss).all()


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="logits"):
        sigmoid_focal_loss(torch.zeros(3), torch.zeros(4))
