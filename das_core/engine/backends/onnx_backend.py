"""onnxruntime backend: an fp32 ONNX export of the model (or, on the CPU, its int8 quantisation), run by onnxruntime.

Device ``cpu`` uses the CPU execution provider. Device ``cuda`` needs the CUDA execution provider
(``pip install onnxruntime-gpu``); when it is missing this backend raises instead of quietly running on
the CPU. On CUDA, inputs and outputs stay on the GPU (I/O binding to torch tensors), so no host copy is
made. The ONNX file is built from the model on first use and cached (:mod:`das_core.engine.backends.cache`).

Precision ``int8`` (CPU only): the fp32 file's convolutions quantised to int8, calibrated and checked against
fp32 before use (:mod:`das_core.engine.backends.onnx_int8`); cached like the fp32 file, keyed also by the
calibration frames. The fastest CPU path for the shipped model (docs/PERFORMANCE.md, "CPU").
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from das_core.config import ModelConfig, dump_config
from das_core.engine.backends.base import BackendError, check_precision, resolve_device
from das_core.engine.backends.cache import ArtifactCache, model_fingerprint
from das_core.model.outputs import DenseOutputs

__all__ = ["OnnxBackend"]

log = logging.getLogger(__name__)


def _import_ort():  # noqa: ANN202 - module object
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendError(
            "backend 'onnx' needs onnxruntime: pip install onnxruntime (CPU) or onnxruntime-gpu (CUDA)"
        ) from exc
    return ort


class OnnxBackend:
    """Run the DAS ONNX graph in onnxruntime. ``run(images (B,3,H,W) float32) -> DenseOutputs``.

    Args:
        model: a ``DAS`` (used only to export the ONNX file when it is not cached).
        cfg: its config.
        device: ``auto``, ``cpu`` or ``cuda[:i]``.
        precision: ``fp32``, or ``int8`` on the CPU (fp16 ONNX runs go through TensorRT).
        cache_dir: cache root; ``onnx_path`` skips the cache and loads that file directly (any precision).
        threads: intra-op threads for the CPU provider (0 = onnxruntime's default).
        calibration: int8: a folder of images to calibrate and check on (None = rendered synthetic scenes).
        int8_max_joint_mm: int8: the largest accepted median joint difference from fp32 (the check).
    """

    name = "onnx"

    def __init__(
        self,
        model: nn.Module,
        cfg: ModelConfig,
        device: torch.device | str = "auto",
        precision: str = "fp32",
        *,
        cache_dir: str | Path | None = None,
        onnx_path: str | Path | None = None,
        threads: int = 0,
        calibration: str | Path | None = None,
        int8_max_joint_mm: float | None = None,
    ) -> None:
        self.ort = _import_ort()
        if precision not in ("fp32", "int8"):
            raise BackendError(f"backend 'onnx' runs fp32 only, or int8 on the CPU (got {precision!r}); for fp16 "
                               "use backend 'tensorrt', for fp16/bf16 'compile' or 'aoti'")
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.name, ("fp32", "int8"))
        if precision == "int8" and self.device.type != "cpu":
            raise BackendError(f"backend 'onnx' int8 runs on the CPU only (got device {self.device}); on a GPU "
                               "use backend 'tensorrt' or 'compile'")
        from das_core.engine.export import AGREEMENT

        self.calibration = Path(calibration) if calibration is not None else None
        self.int8_max_joint_mm = float(AGREEMENT["int8"]["joints_mm"] if int8_max_joint_mm is None
                                       else int8_max_joint_mm)
        self.int8_reports: dict[tuple[int, ...], dict] = {}
        self.model, self.cfg = model, cfg
        providers = self.ort.get_available_providers()
        if self.device.type == "cuda":
            if "CUDAExecutionProvider" not in providers:
                raise BackendError(
                    f"backend 'onnx' on {self.device}: onnxruntime has no CUDAExecutionProvider "
                    f"(available: {providers}); pip uninstall onnxruntime && pip install onnxruntime-gpu"
                )
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            self.providers: list = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        elif self.device.type == "cpu":
            self.providers = ["CPUExecutionProvider"]
        else:
            raise BackendError(f"backend 'onnx': unsupported device {self.device}")
        self.cache = ArtifactCache(cache_dir)
        self.onnx_path = Path(onnx_path) if onnx_path is not None else None
        self.threads = threads
        self._sessions: dict[tuple[int, ...], object] = {}
        self._fingerprint: str | None = None

    # -- building ---------------------------------------------------------------------------------

    def _file_for(self, shape: tuple[int, ...]) -> Path:
        if self.onnx_path is not None:
            return self.onnx_path
        fp32 = self._fp32_file(shape)
        return fp32 if self.precision == "fp32" else self._int8_file(shape, fp32)

    def _fp32_file(self, shape: tuple[int, ...]) -> Path:
        from das_core.engine.export import export_onnx

        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model, dump_config(self.cfg))
        key = {
            "torch": torch.__version__,
            "onnxruntime": self.ort.__version__,
            "opset": 17,
            "model_fingerprint": self._fingerprint,
        }
        entry = self.cache.entry("onnx", model=self.cfg.name, precision="fp32", shape=shape, key=key,
                                 artefact="model.onnx")
        path = entry.artefact("model.onnx")
        if not entry.valid:
            # Export from a CPU copy so the caller's model keeps its device and dtype.
            import copy

            cpu_model = copy.deepcopy(self.model).to("cpu").float().eval()
            export_onnx(cpu_model, self.cfg, path, tuple(shape), verify=True)  # type: ignore[arg-type]
            entry.commit()
        return path

    def _int8_file(self, shape: tuple[int, ...], fp32: Path) -> Path:
        import json

        from das_core.engine.backends import onnx_int8

        count = onnx_int8.CALIBRATION_COUNT + onnx_int8.CHECK_COUNT
        source = onnx_int8.calibration_source(self.calibration, count)
        key = {
            "torch": torch.__version__,
            "onnxruntime": self.ort.__version__,
            "opset": 17,
            "model_fingerprint": self._fingerprint,
            "quantization": "static QDQ Conv, per-channel s8 weights, u8 activations, MinMax",
            "calibration": source,
            "max_joint_mm": self.int8_max_joint_mm,
        }
        entry = self.cache.entry("onnx", model=self.cfg.name, precision="int8", shape=shape, key=key,
                                 artefact="model.onnx")
        path = entry.artefact("model.onnx")
        report_file = entry.artefact("int8_check.json")
        if not entry.valid:
            log.info("quantising %s to int8 for input %s (calibration: %s); about a minute on 2 CPU cores",
                     self.cfg.name, shape, source)
            frames = onnx_int8.calibration_frames(self.calibration, count)
            n = onnx_int8.CALIBRATION_COUNT
            report = onnx_int8.quantize_int8(self.ort, fp32, path, self.cfg, shape, frames[:n], frames[n:],
                                             self.int8_max_joint_mm, lambda p: self._new_session(p))
            report_file.write_text(json.dumps(report, indent=2))
            entry.commit()
        self.int8_reports[shape] = json.loads(report_file.read_text()) if report_file.is_file() else {}
        return path

    def _new_session(self, path: Path) -> object:
        opts = self.ort.SessionOptions()
        opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if self.threads:
            opts.intra_op_num_threads = self.threads
        if self.device.type == "cpu":
            # onnxruntime's workers otherwise spin after each run, stealing the cores that decoding
            # (PyTorch, right after) needs.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return self.ort.InferenceSession(str(path), opts, providers=self.providers)

    def _session(self, shape: tuple[int, ...]) -> object:
        sess = self._sessions.get(shape)
        if sess is None:
            sess = self._new_session(self._file_for(shape))
            fixed = [d for d in sess.get_inputs()[0].shape]  # type: ignore[attr-defined]
            if all(isinstance(d, int) for d in fixed) and tuple(fixed) != tuple(shape):
                raise ValueError(f"{self.onnx_path}: ONNX input shape {fixed} != images {tuple(shape)}")
            self._sessions[shape] = sess
        return sess

    def prepare(self, shape: tuple[int, int, int, int]) -> None:
        """Build (or load) the ONNX file and session for ``shape`` ahead of the first frame."""
        self._session(tuple(shape))

    # -- running ----------------------------------------------------------------------------------

    def run(self, images: Tensor) -> DenseOutputs:
        shape = tuple(images.shape)
        sess = self._session(shape)
        if self.device.type == "cpu":
            outs = sess.run(None, {"images": images.detach().float().cpu().contiguous().numpy()})  # type: ignore[attr-defined]
            return DenseOutputs(*(torch.from_numpy(np.ascontiguousarray(o)) for o in outs))
        return self._run_cuda(sess, images)

    def _run_cuda(self, sess: object, images: Tensor) -> DenseOutputs:
        # I/O binding: onnxruntime reads/writes torch's CUDA memory directly (no host round trip).
        # ORT runs on its own CUDA stream, so we synchronise torch's stream before and ORT's after.
        images = images.detach().to(self.device, torch.float32).contiguous()
        b, _, h, w = images.shape
        index = self.device.index if self.device.index is not None else torch.cuda.current_device()
        binding = sess.io_binding()  # type: ignore[attr-defined]
        binding.bind_input("images", "cuda", index, np.float32, list(images.shape), images.data_ptr())
        outs = []
        for o in sess.get_outputs():  # type: ignore[attr-defined]
            dims = [b if not isinstance(d, int) else d for d in o.shape]
            t = torch.empty(dims, device=self.device, dtype=torch.float32)
            binding.bind_output(o.name, "cuda", index, np.float32, dims, t.data_ptr())
            outs.append(t)
        torch.cuda.current_stream(self.device).synchronize()
        sess.run_with_iobinding(binding)  # type: ignore[attr-defined]
        return DenseOutputs(*outs)
