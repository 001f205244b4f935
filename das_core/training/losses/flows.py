"""RealNVP normalizing flow used by the RLE loss as a learned residual density (DAS_SPEC §6.4).

Six affine coupling layers with alternating binary masks. In layer i the coordinates where
``mask_i = 1`` pass through unchanged and condition the scale ``s`` and translation ``t`` applied to the
others. Parameter names (``mask``, ``s.{i}.{0,2,4}``, ``t.{i}.{0,2,4}``) follow the official checkpoint
(OFFICIAL_CHECKPOINT.md §5.4) so its flows can be loaded directly.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["RealNVP"]

_NUM_LAYERS = 6
_HIDDEN = 64


def _mlp(dim: int, tanh: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Linear(dim, _HIDDEN),
        nn.LeakyReLU(),
        nn.Linear(_HIDDEN, _HIDDEN),
        nn.LeakyReLU(),
        nn.Linear(_HIDDEN, dim),
    ]
    if tanh:  # bounds the log-scale so exp(±s) can never overflow
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class RealNVP(nn.Module):
    """Density on R^D (D = 2 or 3) with a standard-normal prior on the latent.

    Args:
        dim: D, the dimension of the modelled vector (3: (u, v, d) residuals; 2: (u, v)).

    Direction names: *data* x is what the density is over (normalised residuals), *latent* z ~ N(0, I).
    ``log_prob`` maps data → latent; ``inverse`` and ``sample`` map latent → data.
    """

    mask: Tensor  # (6, D) float32 buffer, one coupling mask per layer

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"RealNVP: dim must be 2 or 3, got {dim}")
        self.dim = dim
        # 3D: [0,0,1], [1,1,0], …; 2D: [0,1], [1,0], … (DAS_SPEC §6.4); persistent so checkpoints match.
        first = [0.0] * (dim - 1) + [1.0]
        rows = [first if i % 2 == 0 else [1.0 - m for m in first] for i in range(_NUM_LAYERS)]
        self.register_buffer("mask", torch.tensor(rows, dtype=torch.float32), persistent=True)
        self.t = nn.ModuleList(_mlp(dim, tanh=False) for _ in range(_NUM_LAYERS))
        self.s = nn.ModuleList(_mlp(dim, tanh=True) for _ in range(_NUM_LAYERS))

    def to_latent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Data → latent. x: (..., D) → z (..., D) and log|det ∂z/∂x| (...,)."""
        self._check(x)
        z = x
        log_det = x.new_zeros(x.shape[:-1])
        for i in reversed(range(_NUM_LAYERS)):
            m = self.mask[i]
            z_kept = z * m
            s = self.s[i](z_kept) * (1 - m)
            t = self.t[i](z_kept) * (1 - m)
            z = z_kept + (1 - m) * (z - t) * torch.exp(-s)
            log_det = log_det - s.sum(-1)
        return z, log_det

    def inverse(self, z: Tensor) -> Tensor:
        """Latent → data. z: (..., D) → x (..., D); exact inverse of :meth:`to_latent`."""
        self._check(z)
        x = z
        for i in range(_NUM_LAYERS):
            m = self.mask[i]
            x_kept = x * m
            s = self.s[i](x_kept) * (1 - m)
            t = self.t[i](x_kept) * (1 - m)
            x = x_kept + (1 - m) * (x * torch.exp(s) + t)
        return x

    def log_prob(self, x: Tensor) -> Tensor:
        """log density of data x: (..., D) → (...,) = log N(z; 0, I) + log|det ∂z/∂x|."""
        z, log_det = self.to_latent(x)
        log_prior = -0.5 * (z * z).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return log_prior + log_det

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """n samples from the modelled density: (n, D)."""
        z = torch.randn(n, self.dim, generator=generator, device=self.mask.device, dtype=self.mask.dtype)
        return self.inverse(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def _check(self, x: Tensor) -> None:
        if x.shape[-1] != self.dim:
            raise ValueError(f"RealNVP(dim={self.dim}): last input dimension is {x.shape[-1]}")
