"""``HeadOutputs``: what ``DAS.forward`` always returns, in training and in eval alike."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

__all__ = ["DenseOutputs", "HeadOutputs"]


class HeadOutputs(NamedTuple):
    """Per-level dense maps; list index = pyramid level, strides in ``strides`` (network-input px).

    Letters: B batch, K joints, H_l × W_l the level's map. Offsets are interleaved per joint
    ``(u_0, v_0, d_0, u_1, …)``: u, v in stride units relative to the cell centre ``S·(j + 0.5)``,
    d = (Z_k − Z_root) / z_norm; the root's d channel is exactly 0 (DAS_SPEC §4.4).

    Attributes:
        cls_logits: L × (B, 1, H_l, W_l) person-centre logit.
        centerness_logits: L × (B, 1, H_l, W_l) centerness logit.
        root_depth: L × (B, 1, H_l, W_l) ``Z_root / f_eff × depth_factor`` (f_eff: focal length of the
            network input, pixels; Z in metres).
        offsets: L × (B, 3K, H_l, W_l) post-update offsets U^L (U⁰ when the update is off).
        sigma: L × (B, 3K, H_l, W_l) per-axis scale in (0, 1], ``sigmoid(logit) + 1e-9``; the root's
            d-sigma is sigmoid(1).
        offsets_init: L × (B, 3K, H_l, W_l) pre-update offsets U⁰ — training only, ``None`` in eval.
        strides: the stride of each level, read from the real feature maps.
    """

    cls_logits: list[Tensor]
    centerness_logits: list[Tensor]
    root_depth: list[Tensor]
    offsets: list[Tensor]
    sigma: list[Tensor]
    offsets_init: list[Tensor] | None
    strides: tuple[int, ...]


class DenseOutputs(NamedTuple):
    """All levels flattened to one candidate axis P = Σ_l H_l·W_l (level-major, then row-major).

    This is the exportable form (ONNX / AOTInductor / TensorRT return exactly these four tensors).

    Attributes:
        scores: (B, P) ``sigmoid(cls) · sigmoid(centerness)``.
        root_depth: (B, P) ``Z_root / f_eff`` (already divided by depth_factor), metres per pixel.
        offsets: (B, P, K, 3) post-update offsets (u, v in stride units, d in z_norm units).
        sigma: (B, P, K, 3) per-axis sigma.
    """

    scores: Tensor
    root_depth: Tensor
    offsets: Tensor
    sigma: Tensor
