"""RLE joint-offset loss (DAS_SPEC §6.4) and the plain-L1 ablation loss."""

from __future__ import annotations

import math

import pytest
import torch

from das_core.training.losses.flows import RealNVP
from das_core.training.losses.l1 import l1_pose_loss
from das_core.training.losses.rle import rle_loss

SIGMOID_1 = 1 / (1 + math.exp(-1))


def identity_flow(dim: int) -> RealNVP:
    """s = t = 0 in every coupling, so log φ is the standard-normal log-density."""
    flow = RealNVP(dim).double()
    with torch.no_grad():
        for nets in (flow.s, flow.t):
            for net in nets:
                net[4].weight.zero_()
                net[4].bias.zero_()
    return flow


def log_normal(z: torch.Tensor) -> float:
    return float(-0.5 * (z @ z) - 0.5 * len(z) * math.log(2 * math.pi))


def one_slot(pred: list[float], sigma: list[float], target: list[float]) -> tuple[torch.Tensor, ...]:
    as_t = lambda v: torch.tensor(v, dtype=torch.float64).reshape(1, 1, 3)  # noqa: E731
    return as_t(pred), as_t(sigma), as_t(target), torch.ones(1, 1, dtype=torch.float64)


def test_three_d_slot_matches_the_reference_formula_with_log_sigma_twice_and_log_phi_per_axis() -> None:
    pred, sigma, target, weight = one_slot([0.3, -0.2, 0.5], [0.5, 0.25, 0.8], [0.1, 0.1, -0.1])
    total, count = rle_loss(pred, sigma, target, weight, torch.tensor([True]), identity_flow(3), identity_flow(2))
    u, s, t = pred[0, 0], sigma[0, 0], target[0, 0]
    log_phi = log_normal((u - t) / s)
    expected = sum(
        math.log(s[a]) - log_phi + math.log(s[a] * math.sqrt(2 * math.pi)) + abs(t[a] - u[a]) / (math.sqrt(2) * s[a] + 1e-9)
        for a in range(3)
    )
    assert count.item() == 1
    assert total.item() == pytest.approx(float(expected), rel=1e-9)


def test_two_d_only_slot_uses_the_2d_flow_zero_depth_and_sigmoid_one_depth_sigma() -> None:
    # The depth prediction/sigma are garbage on purpose: they must be overridden.
    pred, sigma, target, weight = one_slot([0.3, -0.2, 7.0], [0.5, 0.25, 0.01], [0.1, 0.1, 0.0])
    total, _ = rle_loss(pred, sigma, target, weight, torch.tensor([False]), identity_flow(3), identity_flow(2))
    u, s, t = pred[0, 0, :2], sigma[0, 0, :2], target[0, 0, :2]
    log_phi = log_normal((u - t) / s)  # 2D density on (u, v) only
    sig = [s[0].item(), s[1].item(), SIGMOID_1 + 1e-9]
    res = [abs(t[0] - u[0]).item(), abs(t[1] - u[1]).item(), 0.0]
    expected = sum(
        math.log(sig[a]) - log_phi + math.log(sig[a] * math.sqrt(2 * math.pi)) + res[a] / (math.sqrt(2) * sig[a] + 1e-9)
        for a in range(3)
    )
    assert total.item() == pytest.approx(float(expected), rel=1e-9)


def test_loss_decreases_as_predictions_move_to_the_target() -> None:
    torch.manual_seed(0)
    flow3, flow2 = RealNVP(3), RealNVP(2)
    target = torch.randn(4, 15, 3)
    sigma = torch.full_like(target, 0.3)
    weight = torch.ones(4, 15)
    has_depth = torch.tensor([True, True, False, True])
    direction = torch.randn_like(target)
    losses = [
        rle_loss(target + step * direction, sigma, target, weight, has_depth, flow3, flow2)[0].item()
        for step in (2.0, 1.0, 0.5, 0.1, 0.0)
    ]
    assert losses == sorted(losses, reverse=True)


def test_invisible_slots_are_skipped_even_when_their_values_are_nan() -> None:
    torch.manual_seed(0)
    pred = torch.randn(2, 3, 3)
    pred[0, 1] = float("nan")
    target, sigma = torch.zeros_like(pred), torch.full_like(pred, 0.5)
    weight = torch.ones(2, 3)
    weight[0, 1] = 0
    pred.requires_grad_(True)
    total, count = rle_loss(pred, sigma, target, weight, torch.tensor([True, False]), RealNVP(3), RealNVP(2))
    total.backward()
    assert count.item() == 5
    assert torch.isfinite(total) and torch.isfinite(pred.grad).all()
    assert (pred.grad[0, 1] == 0).all()


def test_sigma_prediction_and_both_flows_receive_gradients() -> None:
    torch.manual_seed(0)
    flow3, flow2 = RealNVP(3), RealNVP(2)
    pred = torch.randn(3, 5, 3, requires_grad=True)
    sigma_logit = torch.zeros(3, 5, 3, requires_grad=True)
    target = torch.randn(3, 5, 3)
    total, _ = rle_loss(pred, torch.sigmoid(sigma_logit) + 1e-9, target, torch.ones(3, 5),
                        torch.tensor([True, False, True]), flow3, flow2)
    total.backward()
    assert pred.grad.abs().sum() > 0 and sigma_logit.grad.abs().sum() > 0
    # 2D-only row: the depth axis is constant, so its prediction and sigma get no gradient
    assert (pred.grad[1, :, 2] == 0).all() and (sigma_logit.grad[1, :, 2] == 0).all()
    for flow in (flow3, flow2):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.s[0].parameters())


def test_empty_selection_is_exactly_zero() -> None:
    total, count = rle_loss(torch.zeros(0, 15, 3), torch.ones(0, 15, 3), torch.zeros(0, 15, 3),
                            torch.zeros(0, 15), torch.zeros(0, dtype=torch.bool), RealNVP(3), RealNVP(2))
    assert total.item() == 0.0 and count.item() == 0.0


def test_l1_weights_visibility_and_ignores_depth_of_2d_only_persons() -> None:
    pred = torch.tensor([[[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]], [[1.0, -1.0, 4.0], [0.0, 0.0, 0.0]]])
    target = torch.zeros_like(pred)
    weight = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    total, count = l1_pose_loss(pred, target, weight, torch.tensor([True, False]))
    assert total.item() == pytest.approx((1 + 2 + 3) + (1 + 1) + 0)
    assert count.item() == 3
