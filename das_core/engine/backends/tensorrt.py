"""TensorRT backend: an engine built from the fp32 ONNX export, fp16 or int8 (entropy calibration).

**UNTESTED.** TensorRT is installed neither on the development machine nor on the benchmark GPU machine,
so nothing below this docstring's import guard has ever run. The code follows the TensorRT 10 Python API
(``build_serialized_network``, named I/O tensors with ``set_tensor_address`` + ``execute_async_v3``,
``IInt8EntropyCalibrator2``); the only tested path is the error raised when ``tensorrt`` is missing.
Install with ``pip install tensorrt`` (matching the CUDA of your torch build; NVIDIA's wheels bundle the
libraries) before selecting ``--backend tensorrt``. Engines are built by
:func:`das_core.engine.export.build_engine_from_model` (with ``das export --format tensorrt``), the
calibrator and ``import_tensorrt`` live there too: export is the layer below the backends.

Untested specifics worth checking first on a machine with TensorRT:
* the ``GridSample`` ONNX op (recursive update, DCN) needs TensorRT ≥ 8.6's built-in ``IGridSampleLayer``;
* int8: the calibrator feeds preprocessed calibration frames; GridSample and the final sigmoid/softmax
  layers are best kept in fp16/fp32 — TensorRT chooses per layer, check ``trtexec --dumpLayerInfo``;
* engines are specific to the GPU and TensorRT version: the cache key holds both.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from das_core.config import ModelConfig, dump_config
from das_core.engine.backends.base import BackendError, check_precision, resolve_device
from das_core.engine.backends.cache import ArtifactCache, device_fingerprint, model_fingerprint
from das_core.engine.export import OUTPUT_NAMES, build_engine_from_model, import_tensorrt
from das_core.model.outputs import DenseOutputs

__all__ = ["TensorRTBackend"]

log = logging.getLogger(__name__)


class TensorRTBackend:
    """``run(images (B,3,H,W)) -> DenseOutputs`` with a TensorRT engine (cached per shape). UNTESTED.

    Raises :class:`RuntimeError` naming ``pip install tensorrt`` at construction when TensorRT is absent.
    """

    name = "tensorrt"

    def __init__(
        self,
        model: nn.Module | None,
        cfg: ModelConfig,
        device: torch.device | str = "auto",
        precision: str = "fp16",
        *,
        cache_dir: str | Path | None = None,
        engine: str | Path | None = None,
        calib_images: str | Path | None = None,
    ) -> None:
        self.trt = import_tensorrt()
        self.device = resolve_device(device)
        if self.device.type != "cuda":
            raise BackendError(f"backend 'tensorrt' needs a CUDA device (got {self.device})")
        self.precision = check_precision(precision, self.name, ("fp32", "fp16", "int8"))
        if precision == "int8" and engine is None and calib_images is None:
            raise BackendError("backend 'tensorrt' int8 needs calib_images (a folder of representative frames)")
        self.model, self.cfg = model, cfg
        self.cache = ArtifactCache(cache_dir)
        self.engine_path = Path(engine) if engine is not None else None
        self.calib_images = Path(calib_images) if calib_images is not None else None
        self.runtime = self.trt.Runtime(self.trt.Logger(self.trt.Logger.WARNING))
        self._contexts: dict[tuple[int, ...], tuple[object, object, dict[str, Tensor]]] = {}

    def _engine_file(self, shape: tuple[int, int, int, int]) -> Path:
        if self.engine_path is not None:
            return self.engine_path
        assert self.model is not None, "backend 'tensorrt': a model is needed to build an engine"
        key = {
            "tensorrt": self.trt.__version__,
            "torch": torch.__version__,
            **device_fingerprint(self.device),
            "model_fingerprint": model_fingerprint(self.model, dump_config(self.cfg)),
            "calibration": str(self.calib_images) if self.precision == "int8" else None,
        }
        entry = self.cache.entry("tensorrt", model=self.cfg.name, precision=self.precision, shape=shape, key=key,
                                 artefact="model.engine")
        path = entry.artefact("model.engine")
        if not entry.valid:
            build_engine_from_model(self.model, self.cfg, path, shape, precision=self.precision,
                                    calib_images=self.calib_images)
            entry.commit()
        return path

    def _context(self, shape: tuple[int, int, int, int]) -> tuple[object, object, dict[str, Tensor]]:
        ctx = self._contexts.get(shape)
        if ctx is None:
            trt = self.trt
            engine = self.runtime.deserialize_cuda_engine(self._engine_file(shape).read_bytes())
            if engine is None:
                raise RuntimeError(f"{self._engine_file(shape)}: cannot deserialise the TensorRT engine "
                                   "(built by another TensorRT version or for another GPU?)")
            context = engine.create_execution_context()
            outputs: dict[str, Tensor] = {}
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                    dims = tuple(engine.get_tensor_shape(name))
                    dtype = torch.from_numpy(np.empty(0, dtype=trt.nptype(engine.get_tensor_dtype(name)))).dtype
                    outputs[name] = torch.empty(dims, dtype=dtype, device=self.device)
                    context.set_tensor_address(name, outputs[name].data_ptr())
            ctx = (engine, context, outputs)
            self._contexts[shape] = ctx
        return ctx

    def prepare(self, shape: tuple[int, int, int, int]) -> None:
        self._context(tuple(shape))  # type: ignore[arg-type]

    def run(self, images: Tensor) -> DenseOutputs:
        images = images.to(self.device, torch.float32).contiguous()
        _, context, outputs = self._context(tuple(images.shape))  # type: ignore[arg-type]
        context.set_tensor_address("images", images.data_ptr())  # type: ignore[attr-defined]
        stream = torch.cuda.current_stream(self.device)
        if not context.execute_async_v3(stream.cuda_stream):  # type: ignore[attr-defined]
            raise RuntimeError("TensorRT execute_async_v3 failed")

        return DenseOutputs(*(outputs[n].float() for n in OUTPUT_NAMES))
