"""Residual log-likelihood estimation (RLE) loss for joint offsets (DAS_SPEC §6.4).

Per joint slot and axis a ∈ {u, v, d}, with normalised residual ``z̄ = (U − T) / σ``:

    ℓ_a = log σ_a − log φ(z̄)  +  log(σ_a·√(2π)) + |T_a − U_a| / (√2·σ_a + 1e−9)

Faithful to the reference implementation (DAS_SPEC §11.12): ``log σ`` appears twice and the flow
log-density ``log φ`` is counted once *per axis* (three times per joint, also for 2D-only persons, whose
depth axis is kept with constant values). Persons with 3D labels use the 3D flow on (z̄_u, z̄_v, z̄_d);
2D-only persons use the 2D flow on (z̄_u, z̄_v), with predicted d forced to 0 and the d-sigma forced to
``sigmoid(1)`` (the value the head gives the root's d-sigma).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from das_core.training.losses.flows import RealNVP

__all__ = ["rle_loss"]

_SQRT_2PI = math.sqrt(2 * math.pi)
_SIGMA_EPS = 1e-9
# sigmoid(1) + 1e-9: the d-sigma of 2D-only persons, as if its logit were forced to 1 (DAS_SPEC §6.4).
_FIXED_D_SIGMA = 1.0 / (1.0 + math.exp(-1.0)) + _SIGMA_EPS


def rle_loss(
    pred: Tensor,
    sigma: Tensor,
    target: Tensor,
    weight: Tensor,
    has_depth: Tensor,
    flow_3d: RealNVP,
    flow_2d: RealNVP,
) -> tuple[Tensor, Tensor]:
    """RLE negative log-likelihood summed over weighted joint slots.

    Args:
        pred: (M, K, 3) predicted offsets (u, v in stride units, d in z_norm units) of M positive cells.
        sigma: (M, K, 3) per-axis scale in (0, 1].
        target: (M, K, 3) target offsets, same units.
        weight: (M, K) joint weights (visibility); slots with weight 0 are skipped entirely.
        has_depth: (M,) bool, the cell's person has 3D labels.
        flow_3d: density of (z̄_u, z̄_v, z̄_d) for persons with depth.
        flow_2d: density of (z̄_u, z̄_v) for 2D-only persons.

    Returns:
        ``(Σ_slots weight · Σ_a ℓ_a, Σ_slots weight)`` as 0-dim float tensors; the caller applies the
        pose weight and divides by the total count (DAS_SPEC §6.4). An empty selection gives exactly 0.
    """
    if not (pred.shape == sigma.shape == target.shape) or pred.shape[-1] != 3:
        raise ValueError(
            f"rle_loss: pred {tuple(pred.shape)}, sigma {tuple(sigma.shape)}, target {tuple(target.shape)} "
            "must all be (M, K, 3)"
        )
    m, k, _ = pred.shape
    slot_depth = has_depth[:, None].expand(m, k)
    keep = weight > 0  # (M, K); computing only these slots keeps invisible garbage out of the graph
    u, s, t = pred[keep], sigma[keep], target[keep]  # (V, 3)
    w, depth = weight[keep], slot_depth[keep]  # (V,)

    # 2D-only: the depth axis becomes a constant (pred d = 0 = target d, fixed sigma).
    no_depth = ~depth[:, None]
    axis_d = torch.zeros_like(u, dtype=torch.bool)
    axis_d[:, 2] = True
    u = torch.where(no_depth & axis_d, torch.zeros_like(u), u)
    t = torch.where(no_depth & axis_d, torch.zeros_like(t), t)
    s = torch.where(no_depth & axis_d, torch.full_like(s, _FIXED_D_SIGMA), s)

    z = (u - t) / s  # (V, 3) normalised residual
    # Both flows always run (possibly on zero rows) so each gets a defined (zero) gradient every step.
    log_phi = z.new_zeros(z.shape[0])
    log_phi = log_phi.index_put((depth,), flow_3d.log_prob(z[depth]))
    log_phi = log_phi.index_put((~depth,), flow_2d.log_prob(z[~depth][:, :2]))

    log_sigma = torch.log(s)
    flow_term = log_sigma - log_phi[:, None]  # (V, 3): log φ once per axis (DAS_SPEC §11.12)
    prior_term = torch.log(s * _SQRT_2PI) + (t - u).abs() / (math.sqrt(2.0) * s + _SIGMA_EPS)
    per_slot = (flow_term + prior_term).sum(-1)  # (V,)
    return (per_slot * w).sum(), w.sum()
