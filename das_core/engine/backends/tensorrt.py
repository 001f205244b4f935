"""TensorRT backend: an engine built from the fp32 ONNX export, fp16 or int8 (entropy calibration).

**UNTESTED.** TensorRT is installed neither on the development machine nor on the benchmark GPU machine,
so nothing below this docstring's import guard has ever run. The code follows the TensorRT 10 Python API
(``build_serialized_network``, named I/O tensors with ``set_tensor_address`` + ``execute_async_v3``,
``IInt8EntropyCalibrator2``); the only tested path is the error raised when ``tensorrt`` is missing.
Install with ``pip install tensorrt`` (matching the CUDA of your torch build; NVIDIA's wheels bundle the
libraries) before selecting ``--backend tensorrt``.

Untested specifics worth checking first on a machine with TensorRT:
* the ``GridSample`` ONNX op (recursive update, DCN) needs TensorRT ≥ 8.6's built-in ``IGridSampleLayer``;
* int8: the calibrator feeds preprocessed calibration frames; GridSample and the final sigmoid/softmax
  layers are best kept in fp16/fp32 — TensorRT chooses per layer, check ``trtexec --dumpLayerInfo``;
* engines are specific to the GPU and TensorRT version: the cache key holds both.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from das_core.config import ModelConfig, dump_config
from das_core.engine.backends.base import BackendError, check_precision, resolve_device
from das_core.engine.backends.cache import ArtifactCache, device_fingerprint, model_fingerprint
from das_core.model.outputs import DenseOutputs

__all__ = ["TensorRTBackend", "build_engine", "build_engine_from_model", "import_tensorrt"]

log = logging.getLogger(__name__)

_INSTALL = ("backend 'tensorrt' needs NVIDIA TensorRT >= 8.6 and a CUDA GPU: pip install tensorrt "
            "(see https://docs.nvidia.com/deeplearning/tensorrt/install-guide/). It is not installed here; "
            "use backend 'aoti' or 'compiled' instead")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def import_tensorrt():  # noqa: ANN201 - module object
    """``import tensorrt`` or raise :class:`BackendError` saying what to install."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendError(_INSTALL) from exc
    return trt


def _calibrator_class(trt):  # noqa: ANN001, ANN202 - built lazily because the base class lives in tensorrt
    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):  # type: ignore[name-defined]  # tensorrt is optional
        """Feeds preprocessed calibration frames (one batch at a time, on the GPU). UNTESTED."""

        def __init__(self, batches: list[Tensor], cache_file: Path) -> None:
            super().__init__()
            self.batches, self.index, self.cache_file = batches, 0, cache_file
            self.device_batch = torch.empty_like(batches[0], device="cuda")

        def get_batch_size(self) -> int:
            return int(self.batches[0].shape[0])

        def get_batch(self, names):  # noqa: ANN001, ANN201
            if self.index >= len(self.batches):
                return None
            self.device_batch.copy_(self.batches[self.index])
            self.index += 1
            return [int(self.device_batch.data_ptr())]

        def read_calibration_cache(self):  # noqa: ANN201
            return self.cache_file.read_bytes() if self.cache_file.is_file() else None

        def write_calibration_cache(self, cache) -> None:  # noqa: ANN001
            self.cache_file.write_bytes(bytes(cache))

    return EntropyCalibrator


def calibration_batches(
    folder: Path, cfg: ModelConfig, shape: tuple[int, int, int, int], count: int
) -> list[Tensor]:
    """Up to ``count`` images from ``folder`` → normalised, padded (B,3,H,W) batches of ``shape``.

    Each image is resized with the model's keep-ratio rule into the engine's fixed input (images of other
    aspect ratios are letterboxed by the padding), like a camera frame at inference time.
    """
    import cv2

    from das_core.engine.preprocess import preprocess

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:count]
    if not files:
        raise FileNotFoundError(f"{folder}: no calibration images ({', '.join(IMAGE_SUFFIXES)})")
    b, _, h, w = shape
    frames = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{f}: cannot decode image")
        x, _ = preprocess(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), cfg.input, "cpu")
        canvas = torch.zeros((1, 3, h, w))
        hh, ww = min(h, x.shape[2]), min(w, x.shape[3])
        canvas[:, :, :hh, :ww] = x[:, :, :hh, :ww]
        frames.append(canvas)
    return [torch.cat(frames[i : i + b]) for i in range(0, len(frames) - b + 1, b)]


def build_engine(
    onnx_path: Path,
    engine_path: Path,
    *,
    precision: str = "fp16",
    calib_batches: list[Tensor] | None = None,
    workspace_gib: float = 4.0,
) -> Path:
    """Parse ``onnx_path`` and serialise a TensorRT engine to ``engine_path``. UNTESTED (no TensorRT here)."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # TensorRT 8.x; implicit in 10.x
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT cannot parse the ONNX file: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        if not calib_batches:
            raise ValueError("TensorRT int8 needs calibration images (--calib-images DIR)")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator_class(trt)(calib_batches, Path(engine_path).with_suffix(".calib"))
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT engine build failed (see the TensorRT log above)")
    engine_path = Path(engine_path)
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    engine_path.write_bytes(bytes(serialized))
    log.info("wrote TensorRT engine %s (%s)", engine_path, precision)
    return engine_path


def build_engine_from_model(
    model: nn.Module,
    cfg: ModelConfig,
    engine_path: str | Path,
    shape: tuple[int, int, int, int],
    *,
    precision: str = "fp16",
    calib_images: Path | None = None,
    calib_count: int = 64,
) -> Path:
    """Model → verified fp32 ONNX (next to the engine) → TensorRT engine. UNTESTED beyond the ONNX step."""
    import_tensorrt()  # fail before the (slow) ONNX export if TensorRT is missing
    from das_core.engine.export import export_onnx

    engine_path = Path(engine_path)
    onnx_path = export_onnx(copy.deepcopy(model).cpu().float(), cfg, engine_path.with_suffix(".onnx"), shape)
    batches = calibration_batches(calib_images, cfg, shape, calib_count) if precision == "int8" and calib_images else None
    return build_engine(onnx_path, engine_path, precision=precision, calib_batches=batches)


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
        from das_core.engine.export import OUTPUT_NAMES

        return DenseOutputs(*(outputs[n].float() for n in OUTPUT_NAMES))
