"""RealNVP flow (DAS_SPEC §6.4): exact log-density, invertibility, checkpoint layout."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from das_core.training.losses.flows import RealNVP


def random_flow(dim: int, seed: int = 0) -> RealNVP:
    """A float64 flow with weights scaled up so the couplings are far from the identity."""
    torch.manual_seed(seed)
    flow = RealNVP(dim).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.mul_(2.0)
    return flow


@pytest.mark.parametrize("dim", [2, 3])
def test_log_prob_equals_prior_plus_numerical_log_jacobian(dim: int) -> None:
    flow = random_flow(dim)
    x = torch.randn(5, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2
    got = flow.log_prob(x)
    for i in range(len(x)):
        jac = jacobian(lambda v: flow.to_latent(v)[0], x[i])  # (D, D) = ∂z/∂x
        z = flow.to_latent(x[i])[0]
        log_prior = -0.5 * (z @ z) - 0.5 * dim * math.log(2 * math.pi)
        expected = log_prior + torch.linalg.slogdet(jac).logabsdet
        assert got[i].item() == pytest.approx(expected.item(), abs=1e-9)


@pytest.mark.parametrize("dim", [2, 3])
def test_flow_is_invertible_both_ways(dim: int) -> None:
    flow = random_flow(dim)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, dim, dtype=torch.float64, generator=gen) * 3
    z, _ = flow.to_latent(x)
    torch.testing.assert_close(flow.inverse(z), x)
    z2 = torch.randn(64, dim, dtype=torch.float64, generator=gen)
    torch.testing.assert_close(flow.to_latent(flow.inverse(z2))[0], z2)
    assert not torch.allclose(z, x)  # the flow is not the identity


def test_two_d_density_integrates_to_one_and_samples_have_its_mean() -> None:
    flow = random_flow(2, seed=3)
    step = 0.15
    with torch.no_grad():
        samples = flow.sample(5000, generator=torch.Generator().manual_seed(5))
        # Integrate on a grid covering the samples with a 1.5-unit margin (the density is ~0 beyond).
        lo, hi = samples.min(0).values - 1.5, samples.max(0).values + 1.5
        xs = torch.arange(lo[0].item(), hi[0].item(), step, dtype=torch.float64) + step / 2
        ys = torch.arange(lo[1].item(), hi[1].item(), step, dtype=torch.float64) + step / 2
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="ij"), -1).reshape(-1, 2)
        density = flow.log_prob(grid).exp() * step * step  # probability mass per grid cell
    assert density.sum().item() == pytest.approx(1.0, abs=5e-3)
    mean_by_density = (density[:, None] * grid).sum(0)
    torch.testing.assert_close(samples.mean(0), mean_by_density, atol=0.05, rtol=0)


@pytest.mark.parametrize(("dim", "params", "rows"), [(3, 55332, [[0, 0, 1], [1, 1, 0]]), (2, 53784, [[0, 1], [1, 0]])])
def test_layout_matches_the_official_checkpoint(dim: int, params: int, rows: list[list[int]]) -> None:
    flow = RealNVP(dim)
    state = flow.state_dict()
    assert sum(p.numel() for p in flow.parameters()) == params
    assert "mask" in state and state["mask"].shape == (6, dim)  # persistent buffer
    assert state["mask"].tolist() == [rows[i % 2] for i in range(6)]
    assert len(state) == 73
    assert {"t.5.4.weight", "s.0.0.weight", "s.3.2.bias"} <= set(state)
    assert isinstance(flow.s[0][5], torch.nn.Tanh) and len(flow.t[0]) == 5


def test_wrong_dimension_is_an_error() -> None:
    with pytest.raises(ValueError, match="dim"):
        RealNVP(3).log_prob(torch.zeros(4, 2))
