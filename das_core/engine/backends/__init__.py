"""Inference backends: one ``Backend`` protocol (:mod:`das_core.engine.backends.base`), one module per backend.

Names known to :func:`make_backend` (keep :data:`BACKEND_NAMES` in step with its branches):

* ``"eager"`` — :class:`das_core.engine.backends.eager.EagerBackend`, plain PyTorch (fp32 / fp16 / bf16).
* ``"onnx"`` — :class:`das_core.engine.backends.onnx_backend.OnnxBackend`, onnxruntime (fp32; int8 on the CPU).

To add a backend: write ``das_core/engine/backends/<name>.py`` with a class that has ``name``, ``device``,
``precision`` and ``run(images) -> DenseOutputs``, add its name to :data:`BACKEND_NAMES` and an explicit
``if name == ...`` branch in :func:`make_backend` that imports the module lazily (so optional dependencies
such as onnxruntime or TensorRT are only needed when that backend is picked). Names in
:data:`PLANNED_BACKENDS` are reserved for backends not in this build yet; asking for one is an error that
lists what is available.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from das_core.config import ModelConfig
from das_core.engine.backends.base import PRECISIONS, Backend, BackendError, check_precision, resolve_device

__all__ = ["ALL_PRECISIONS", "BACKEND_NAMES", "EXTRA_PRECISIONS", "PLANNED_BACKENDS", "PRECISIONS", "Backend",
           "BackendError", "make_backend", "resolve_device"]

BACKEND_NAMES: tuple[str, ...] = ("eager", "compile", "aoti", "onnx", "tensorrt")
PLANNED_BACKENDS: tuple[str, ...] = ()
# Precisions beyond PRECISIONS that a backend accepts (onnx: an int8 QDQ graph, calibrated, on the CPU); the
# backend itself refuses those of PRECISIONS it cannot run, with a message that says what to use instead.
EXTRA_PRECISIONS: dict[str, tuple[str, ...]] = {"onnx": ("int8",)}
# Every precision some backend accepts (the node's ``precision`` parameter choices).
ALL_PRECISIONS: tuple[str, ...] = (*PRECISIONS, "int8")


def make_backend(
    name: str,
    model: nn.Module,
    cfg: ModelConfig,
    device: torch.device | str = "auto",
    precision: str = "fp32",
    channels_last: bool = False,
    **options: Any,
) -> Backend:
    """Build the backend called ``name`` around ``model``.

    Args:
        name: one of :data:`BACKEND_NAMES`.
        model: the ``DAS`` module (eval mode is set by the backend).
        cfg: its config.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda[:i]"``.
        precision: one of :data:`PRECISIONS`.
        channels_last: NHWC convolutions (backends that support it).
        **options: backend-specific keyword arguments (e.g. a cache directory), passed on unchanged.

    Raises:
        BackendError: unknown or not-yet-available name (the message lists the valid names), or an
            unsupported precision/device.
    """
    # Validate everything that can be checked without building, so a refused call leaves ``model`` untouched.
    if name in PLANNED_BACKENDS:
        raise BackendError(f"backend {name!r} is not available in this build; valid names: {list(BACKEND_NAMES)}")
    if name not in BACKEND_NAMES:
        raise BackendError(f"unknown backend {name!r}; valid names: {list(BACKEND_NAMES)}")
    check_precision(precision, name, (*PRECISIONS, *EXTRA_PRECISIONS.get(name, ())))
    try:
        resolve_device(device)
    except BackendError:
        raise
    except (RuntimeError, ValueError) as exc:  # torch's own message for a malformed device string
        raise BackendError(f"device {device!r} is not a torch device: {exc}") from None
    if name == "eager" and options:
        raise BackendError(f"backend 'eager' takes no options, got {sorted(options)}")
    previous = getattr(model, "fp32_head", None)
    if precision != "fp32" and previous is not None:
        # Reduced precision at inference covers the head too (see DAS.fp32_head).
        setattr(model, "fp32_head", False)  # noqa: B010 - a plain attribute, not a submodule
    try:
        return _build(name, model, cfg, device, precision, channels_last, options)
    except BaseException:
        if previous is not None:  # a backend that refuses (device, precision, options) leaves the model as it was
            setattr(model, "fp32_head", previous)  # noqa: B010
        raise


def _build(name: str, model: nn.Module, cfg: ModelConfig, device: torch.device | str, precision: str,
           channels_last: bool, options: dict[str, Any]) -> Backend:
    if name == "eager":
        from das_core.engine.backends.eager import EagerBackend

        return EagerBackend(model, cfg, device=device, precision=precision, channels_last=channels_last)
    # Extension point: one explicit branch per backend name, each importing its own module lazily.
    if name == "compile":
        from das_core.engine.backends.compiled import CompiledBackend

        return CompiledBackend(model, cfg, device=device, precision=precision, channels_last=channels_last, **options)
    if name == "aoti":
        from das_core.engine.backends.aoti import AOTIBackend

        return AOTIBackend(model, cfg, device=device, precision=precision, channels_last=channels_last, **options)
    if name == "onnx":
        from das_core.engine.backends.onnx_backend import OnnxBackend

        return OnnxBackend(model, cfg, device=device, precision=precision, **options)
    if name == "tensorrt":
        from das_core.engine.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(model, cfg, device=device, precision=precision, **options)
    raise BackendError(f"unknown backend {name!r}; valid names: {list(BACKEND_NAMES)}")
