"""Flip test: average the dense outputs of an input and of its mirror image before decoding.

Not part of the paper's test pipeline (DAS_SPEC §3.6: "no flip, no TTA"); it is the usual test-time
augmentation of pose estimators, and an option of the :class:`~das_core.engine.estimator.Estimator`
(``flip_test``), off by default because it runs the network twice.

The mirror is the training flip (DAS_SPEC §3.3): a pixel x of a W-wide input goes to W − 1 − x, left and right
joints swap, depths stay. The network input is first padded on the right to a multiple of the coarsest
stride, so that every level's cell j of the mirrored input covers exactly the pixels of cell w − 1 − j of the
input (pixel columns S·j … S·j + S − 1 ↔ W − 1 − those). A joint at ``S·(j + 0.5 + u')`` in the mirrored input is then at
``W − 1 − S·(j + 0.5 + u') = S·(i + 0.5 + u)`` with ``i = w − 1 − j`` and **u = −u' − 1/S** (the one pixel:
cell centres ``S·(j + 0.5)`` sit half a pixel right of the mean of their pixels' indices); v and d are
unchanged. Scores, root depths, offsets and sigmas of the two are averaged cell by cell (probabilities, not
logits: what decoding thresholds).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from das_core.model.dense import concat_levels, level_sizes
from das_core.model.outputs import DenseOutputs

__all__ = ["flip_pad_width", "fuse_flipped", "mirror_dense", "mirrored_input"]


def flip_pad_width(width: int, strides: Sequence[int]) -> int:
    """The padded width at which every level's cells mirror onto cells: a multiple of the largest stride."""
    s = max(strides)
    return -(-width // s) * s


def mirrored_input(x: Tensor, strides: Sequence[int]) -> Tensor:
    """(B, 3, H, W) network input → (2B, 3, H, W') the input and its mirror, W' = :func:`flip_pad_width`.

    The extra columns are zeros on the right (the normalised mean colour, as the preprocessing's own
    padding), so the input's content stays where decoding expects it.
    """
    wp = flip_pad_width(x.shape[-1], strides)
    x = F.pad(x, (0, wp - x.shape[-1]))
    return torch.cat([x, x.flip(-1)])


def mirror_dense(dense: DenseOutputs, height: int, width: int, strides: Sequence[int],
                 flip_perm: Sequence[int]) -> DenseOutputs:
    """Dense outputs of a mirrored (H, W) input → the same predictions in the unmirrored input's cells.

    Args:
        dense: (B, P, …) outputs of the mirrored input, P = Σ H_l·W_l in ``to_dense`` order.
        height, width: the padded network input; ``width`` must be a multiple of every stride.
        strides: the levels' strides.
        flip_perm: the skeleton's left/right permutation (:meth:`~das_core.skeletons.Skeleton.flip_permutation`).

    Raises:
        ValueError: a width that does not mirror cells onto cells, or outputs of another size.
    """
    sizes = level_sizes(height, width, strides)
    bad = [s for (_, w), s in zip(sizes, strides, strict=True) if w * s != width]
    if bad:
        raise ValueError(f"flip test: padded width {width} is not a multiple of stride(s) {bad}; "
                         f"pad to {flip_pad_width(width, strides)} (flip_pad_width)")
    if dense.scores.shape[1] != sum(h * w for h, w in sizes):
        raise ValueError(f"flip test: {dense.scores.shape[1]} cells, but a {height}×{width} input has "
                         f"{sum(h * w for h, w in sizes)} at strides {tuple(strides)}")
    perm = torch.as_tensor(list(flip_perm), device=dense.offsets.device)
    levels, start = [], 0
    for (h, w), s in zip(sizes, strides, strict=True):
        n = h * w
        scores, depth, off, sig = (t[:, start:start + n] for t in dense)
        b = scores.shape[0]
        k = off.shape[2]
        off = off.reshape(b, h, w, k, 3).flip(2).index_select(3, perm)
        off = torch.cat([-off[..., :1] - 1.0 / s, off[..., 1:]], dim=-1)
        sig = sig.reshape(b, h, w, k, 3).flip(2).index_select(3, perm)
        levels.append(DenseOutputs._make((
            scores.reshape(b, h, w).flip(2).reshape(b, n),
            depth.reshape(b, h, w).flip(2).reshape(b, n),
            off.reshape(b, n, k, 3),
            sig.reshape(b, n, k, 3),
        )))
        start += n
    return concat_levels(levels)


def fuse_flipped(dense: DenseOutputs, height: int, width: int, strides: Sequence[int],
                 flip_perm: Sequence[int]) -> DenseOutputs:
    """Outputs of :func:`mirrored_input`'s (2B, …) batch → the (B, …) average of each input and its mirror.

    ``height`` × ``width``: the mirrored batch's input size (width a multiple of every stride).
    """
    b = dense.scores.shape[0] // 2
    plain = DenseOutputs._make(t[:b] for t in dense)
    back = mirror_dense(DenseOutputs._make(t[b:] for t in dense), height, width, strides, flip_perm)
    return DenseOutputs._make(0.5 * (p + q) for p, q in zip(plain, back, strict=True))
