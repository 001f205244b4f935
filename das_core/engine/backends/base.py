"""The contract every inference backend fulfils, and the checks they share.

A backend turns a normalised, padded image batch into :class:`~das_core.model.outputs.DenseOutputs`;
preprocessing and decoding are shared by all backends and live in :mod:`das_core.engine.preprocess` and
:mod:`das_core.engine.decode`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from das_core.model.outputs import DenseOutputs

__all__ = ["PRECISIONS", "Backend", "BackendError", "check_precision", "resolve_device", "autocast_dtype"]

PRECISIONS = ("fp32", "fp16", "bf16")


class BackendError(RuntimeError):
    """A backend cannot be built or run: unknown name, unsupported precision or device, bad outputs."""


@runtime_checkable
class Backend(Protocol):
    """Runs the network. ``run`` must not synchronise with the host (the frame's one sync is in decoding).

    Attributes:
        name: the name ``make_backend`` knows it by (``"eager"``, …).
        device: where inputs are expected and outputs are returned.
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"`` — the compute precision; outputs are float32.
    """

    name: str
    device: torch.device
    precision: str

    def run(self, images: Tensor) -> DenseOutputs:
        """(B, 3, H, W) float32 normalised batch on ``device`` → (B, P, …) float32 dense outputs."""
        ...


def check_precision(precision: str, backend: str, allowed: tuple[str, ...] = PRECISIONS) -> str:
    if precision not in allowed:
        raise BackendError(f"backend {backend!r}: precision {precision!r} not supported; choose from {list(allowed)}")
    return precision


def resolve_device(device: torch.device | str) -> torch.device:
    """``"auto"`` → ``cuda`` when available, else ``cpu``; a CUDA request without CUDA is an error."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device {str(device)!r} requested but CUDA is not available (use 'cpu' or 'auto')")
    return dev


def autocast_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype for a precision name (None for fp32)."""
    return {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
