"""onnxruntime backend: an fp32 ONNX export of the model, run by onnxruntime.

Device ``cpu`` uses the CPU execution provider. Device ``cuda`` needs the CUDA execution provider
(``pip install onnxruntime-gpu``); when it is missing this backend raises instead of quietly running on
the CPU. On CUDA, inputs and outputs stay on the GPU (I/O binding to torch tensors), so no host copy is
made. The ONNX file is built from the model on first use and cached (:mod:`das_core.engine.backends.cache`).
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
        precision: only ``fp32`` (reduced-precision ONNX runs go through TensorRT).
        cache_dir: cache root; ``onnx_path`` skips the cache and loads that file directly.
        threads: intra-op threads for the CPU provider (0 = onnxruntime's default).
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
    ) -> None:
        self.ort = _import_ort()
        if precision != "fp32":
            raise BackendError(f"backend 'onnx' runs fp32 only (got {precision!r}); for fp16/int8 use "
                               "backend 'tensorrt', for fp16/bf16 'compile' or 'aoti'")
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.name)
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

    def _session(self, shape: tuple[int, ...]) -> object:
        sess = self._sessions.get(shape)
        if sess is None:
            opts = self.ort.SessionOptions()
            opts.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            opts.log_severity_level = 3
            if self.threads:
                opts.intra_op_num_threads = self.threads
            if self.device.type == "cpu":
                # onnxruntime's workers otherwise spin after each run, stealing the cores that decoding
                # (PyTorch, right after) needs.
                opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            sess = self.ort.InferenceSession(str(self._file_for(shape)), opts, providers=self.providers)
            fixed = [d for d in sess.get_inputs()[0].shape]
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
