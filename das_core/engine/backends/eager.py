"""Eager PyTorch backend: the model as written, under ``inference_mode`` (and autocast for fp16/bf16)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from das_core.config import ModelConfig
from das_core.engine.backends.base import BackendError, autocast_dtype, check_precision, resolve_device
from das_core.model.dense import to_dense
from das_core.model.outputs import DenseOutputs, HeadOutputs

__all__ = ["EagerBackend"]


class EagerBackend:
    """Run a ``DAS`` module eagerly. ``run(images (B, 3, H, W)) -> DenseOutputs`` (float32).

    Args:
        model: a module whose ``forward(images) -> HeadOutputs`` (``DAS``); put in eval mode and moved to
            ``device`` here (weights stay float32; fp16/bf16 use autocast, which keeps reductions such as
            GroupNorm in float32).
        cfg: its config (``depth_factor``, declared ``strides``).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, …
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"``.
        channels_last: run convolutions in NHWC memory format (faster with tensor cores).
    """

    name = "eager"

    def __init__(
        self,
        model: nn.Module,
        cfg: ModelConfig,
        device: torch.device | str = "auto",
        precision: str = "fp32",
        channels_last: bool = False,
    ) -> None:
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.name)
        self.cfg = cfg
        self.channels_last = channels_last
        self.model = model.eval().to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._dtype = autocast_dtype(precision)

    def forward_heads(self, images: Tensor) -> HeadOutputs:
        """The raw per-level ``HeadOutputs`` (used by ``run`` and by export checks)."""
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self._dtype is None:
                out: HeadOutputs = self.model(images)
            else:
                with torch.autocast(self.device.type, dtype=self._dtype):
                    out = self.model(images)
        return out

    def run(self, images: Tensor) -> DenseOutputs:
        if images.ndim != 4 or images.shape[1] != 3:
            raise BackendError(f"backend 'eager': expected images (B, 3, H, W), got {tuple(images.shape)}")
        heads = self.forward_heads(images.to(self.device))
        if tuple(heads.strides) != tuple(self.cfg.strides):
            raise BackendError(
                f"backend 'eager': the model's level strides {tuple(heads.strides)} differ from the config's "
                f"strides {tuple(self.cfg.strides)}"
            )
        with torch.inference_mode():
            dense = to_dense(heads, self.cfg.depth_factor)
            return DenseOutputs(*(t.to(torch.float32) for t in dense))
