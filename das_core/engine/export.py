"""Export a DAS model: checkpoint → ONNX (opset ≥ 17) → AOTInductor package (``.pt2``) / TensorRT engine.

Every exported artefact computes exactly :class:`~das_core.model.outputs.DenseOutputs` — four tensors
``scores (B,P)``, ``root_depth (B,P)``, ``offsets (B,P,K,3)``, ``sigma (B,P,K,3)`` — from one normalised,
padded image batch ``(B,3,H,W)``; preprocessing and decoding stay in Python (``das_core.engine.preprocess`` /
``das_core.engine.decode``) so that every backend shares them. Shapes are fixed at export time (one artefact per
input-size bucket); ``--dynamic-batch`` makes the ONNX batch axis symbolic.

ONNX uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): the ``dynamo=True``
exporter needs the ``onnxscript`` package, which is not a dependency of this project. Both the recursive
update's bilinear sampling and the optional DCN are ``grid_sample`` calls, which export as ONNX
``GridSample`` (opset 16+). Each ONNX file is checked against PyTorch in onnxruntime on the CPU
(tolerances: :data:`ONNX_TOLERANCES`). TensorRT engines are built here too (:func:`build_engine`, UNTESTED:
see :mod:`das_core.engine.backends.tensorrt`); the backends import this module, never the reverse.

Examples::

    das export runs/r18/best --format onnx --frame-size 1280x720 -o das_r18.onnx
    das export config/model/das_r50_fpn.yaml --format aoti --device cuda --precision fp16 -o r50.pt2
    das export runs/r50/best --format tensorrt --precision int8 --calib-images frames/ -o r50.engine
"""

from __future__ import annotations

import argparse
import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from das_core.camera import ResizeRecord
from das_core.config import ModelConfig, load_config
from das_core.engine.backends.base import BackendError
from das_core.model.dense import to_dense
from das_core.model.outputs import DenseOutputs

__all__ = [
    "DenseExportWrapper",
    "ONNX_TOLERANCES",
    "OUTPUT_NAMES",
    "ExportError",
    "add_arguments",
    "compare_dense",
    "export_aoti",
    "export_onnx",
    "load_model",
    "network_input_shape",
    "run",
    "verify_onnx",
]

log = logging.getLogger(__name__)

INPUT_NAME = "images"
OUTPUT_NAMES: tuple[str, ...] = DenseOutputs._fields  # ("scores", "root_depth", "offsets", "sigma")
DEFAULT_OPSET = 17
_DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "model"

# Agreement with eager fp32, per precision: dense-output tolerances (atol, rtol) and the largest allowed
# 3D joint difference (mm) of the decoded people of the forced 5-person scene (``bench.people_for_agreement``). fp32
# backends may differ by kernel choice (TF32 on Ampere+ in both), fp16/bf16 by rounding of the backbone/FPN activations.
AGREEMENT: dict[str, dict[str, Any]] = {
    "fp32": {"dense": {"scores": (1e-4, 1e-3), "root_depth": (1e-6, 1e-3), "offsets": (1e-3, 1e-3),
                       "sigma": (1e-4, 1e-3)}, "joints_mm": 1.0},
    "fp16": {"dense": {"scores": (2e-3, 2e-2), "root_depth": (1e-5, 2e-2), "offsets": (2e-2, 2e-2),
                       "sigma": (2e-3, 2e-2)}, "joints_mm": 10.0},
    "bf16": {"dense": {"scores": (1e-2, 5e-2), "root_depth": (5e-5, 5e-2), "offsets": (1e-1, 5e-2),
                       "sigma": (1e-2, 5e-2)}, "joints_mm": 30.0},
    "int8": {"dense": {"scores": (3e-2, 1e-1), "root_depth": (1e-4, 1e-1), "offsets": (2e-1, 1e-1),
                       "sigma": (3e-2, 1e-1)}, "joints_mm": 50.0},
}
# An fp32 artefact (ONNX, AOTI) against eager fp32 PyTorch: |a − b| ≤ atol + rtol·|b| per output. scores are
# probabilities; root_depth is Z/f (≈ 1e-3 … 1e-2 m/px); offsets are in stride units (1e-3 of a stride is
# < 0.13 px at stride 128); sigma is in (0, 1].
ONNX_TOLERANCES: dict[str, tuple[float, float]] = AGREEMENT["fp32"]["dense"]


class ExportError(RuntimeError):
    """An export or its verification failed; the message names the format, file and problem."""


class DenseExportWrapper(nn.Module):
    """``images (B,3,H,W)`` normalised float → the four :class:`DenseOutputs` tensors, always float32.

    Args:
        model: a ``DAS`` in eval mode (``forward(images) -> HeadOutputs``).
        depth_factor: ``cfg.depth_factor`` (``to_dense`` divides it out).
        autocast: ``None`` for fp32, else the autocast dtype (fp16 / bf16). Autocast keeps GroupNorm,
            softmax and the sampling coordinates' arithmetic in fp32 where PyTorch's autocast lists say
            so, which is the mixed-precision split of DAS_SPEC §4.4.
        input_dtype: cast the images to this dtype first — for a model whose weights were converted to
            fp16 / bf16 (AOTInductor packages, see :func:`export_aoti`); the update's sampling still runs
            in float32 because it casts explicitly.
    """

    def __init__(self, model: nn.Module, depth_factor: float, autocast: torch.dtype | None = None,
                 input_dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.model = model
        self.depth_factor = float(depth_factor)
        self.autocast = autocast
        self.input_dtype = input_dtype

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        if self.input_dtype is not None:
            images = images.to(self.input_dtype)
        if self.autocast is not None:
            with torch.autocast(device_type=images.device.type, dtype=self.autocast):
                dense = to_dense(self.model(images), self.depth_factor)
        else:
            dense = to_dense(self.model(images), self.depth_factor)
        return tuple(t.float() for t in dense)  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------
# Model loading and shapes
# ----------------------------------------------------------------------------------------------


def load_model(source: str | Path, device: torch.device | str = "cpu") -> tuple[ModelConfig, nn.Module, bool]:
    """A checkpoint (``NAME`` / ``NAME.safetensors`` + ``NAME.yaml``), a model YAML or a config name.

    Returns ``(cfg, model in eval mode on device, has_weights)``. A model YAML or a name from
    ``config/model`` (``das_r50_fpn``) gives **random weights** (logged as a warning): fine for speed and
    export checks, meaningless for poses.
    """
    from das_core.checkpoint import checkpoint_paths, load_checkpoint
    from das_core.model.das import DAS

    src = Path(source)
    st_path, _ = checkpoint_paths(src)
    if st_path.is_file():
        ckpt = load_checkpoint(src)
        model = DAS.from_config(ckpt.config)
        missing, unexpected = model.load_state_dict(ckpt.state_dict, strict=False)
        if missing or unexpected:
            raise ExportError(f"{st_path}: weights do not match the config: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
        return ckpt.config, model.eval().to(device), True
    if src.suffix in (".yaml", ".yml") and src.is_file():
        cfg = load_config(src)
    elif (_CONFIG_DIR / f"{source}.yaml").is_file():
        cfg = load_config(_CONFIG_DIR / f"{source}.yaml")
    else:
        raise FileNotFoundError(f"{source}: neither a checkpoint (NAME.safetensors + NAME.yaml), a model YAML, "
                                f"nor a config name in {_CONFIG_DIR}")
    log.warning("%s: model config only, using RANDOM weights (speed/export checks only)", source)
    torch.manual_seed(0)
    return cfg, DAS.from_config(cfg).eval().to(device), False


def network_input_shape(cfg: ModelConfig, width: int, height: int) -> tuple[int, int]:
    """Padded network input ``(H, W)`` for a ``width × height`` frame (keep-ratio resize, pad to divisor)."""
    rec = ResizeRecord.for_image(width, height, cfg.input.long_side, cfg.input.short_side, cfg.input.size_divisor)
    return rec.padded_height, rec.padded_width


def example_input(shape: tuple[int, int, int, int], device: torch.device | str = "cpu", seed: int = 0) -> Tensor:
    """A fixed-seed normalised image batch (roughly unit variance, like a real normalised photo)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g).to(device)


# ----------------------------------------------------------------------------------------------
# Comparison
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """Max abs error and worst ratio ``|a−b| / (atol + rtol·|b|)`` (≤ 1 passes) per output."""

    max_abs: dict[str, float]
    worst_ratio: dict[str, float]

    @property
    def ok(self) -> bool:
        return all(r <= 1.0 for r in self.worst_ratio.values())

    def summary(self) -> str:
        return ", ".join(f"{k}: max|Δ|={self.max_abs[k]:.2e} ({self.worst_ratio[k]:.2f} of tol)" for k in self.max_abs)


def compare_dense(
    got: DenseOutputs | tuple[Any, ...] | list[Any],
    ref: DenseOutputs | tuple[Any, ...] | list[Any],
    tolerances: dict[str, tuple[float, float]] | None = None,
) -> Comparison:
    """Compare two sets of dense outputs (tensors or arrays) output by output."""
    tolerances = tolerances or ONNX_TOLERANCES
    max_abs, ratio = {}, {}
    if len(got) != len(OUTPUT_NAMES) or len(ref) != len(OUTPUT_NAMES):
        raise ExportError(f"expected {len(OUTPUT_NAMES)} outputs {OUTPUT_NAMES}, got {len(got)} and {len(ref)}")
    for name, a, b in zip(OUTPUT_NAMES, got, ref, strict=True):
        a_t = a.detach().float().cpu() if isinstance(a, Tensor) else torch.from_numpy(np.asarray(a, np.float32))
        b_t = b.detach().float().cpu() if isinstance(b, Tensor) else torch.from_numpy(np.asarray(b, np.float32))
        if a_t.shape != b_t.shape:
            raise ExportError(f"output {name}: shape {tuple(a_t.shape)} != reference {tuple(b_t.shape)}")
        atol, rtol = tolerances[name]
        diff = (a_t.double() - b_t.double()).abs()
        max_abs[name] = float(diff.max()) if diff.numel() else 0.0
        ratio[name] = float((diff / (atol + rtol * b_t.double().abs())).max()) if diff.numel() else 0.0
        if not torch.isfinite(a_t).all():
            ratio[name] = float("inf")
    return Comparison(max_abs, ratio)


# ----------------------------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------------------------


def export_onnx(
    model: nn.Module,
    cfg: ModelConfig,
    path: str | Path,
    shape: tuple[int, int, int, int],
    *,
    opset: int = DEFAULT_OPSET,
    dynamic_batch: bool = False,
    verify: bool = True,
    tolerances: dict[str, tuple[float, float]] | None = None,
) -> Path:
    """Export ``model`` (fp32, on CPU) to ONNX with input ``images`` and the four ``OUTPUT_NAMES``.

    ``shape`` is the ``(B,3,H,W)`` example (H, W multiples of the largest stride). With ``verify`` the
    file is run in onnxruntime (CPU) on a fixed-seed input and compared with PyTorch; a mismatch beyond
    ``tolerances`` (default :data:`ONNX_TOLERANCES`) raises :class:`ExportError`.
    """
    if opset < 17:
        raise ExportError(f"ONNX opset {opset}: need >= 17 (GridSample is opset 16, LayerNorm-style ops 17)")
    try:
        import onnx
    except ImportError as exc:
        raise ExportError("ONNX export needs the 'onnx' package: pip install onnx (or pip install das[export])") from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = DenseExportWrapper(model, cfg.depth_factor).eval().to("cpu").float()
    x = example_input(shape)
    dynamic_axes = None
    if dynamic_batch:
        dynamic_axes = {INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in OUTPUT_NAMES}}
    with torch.no_grad(), warnings.catch_warnings():
        # The legacy exporter warns that it is legacy and about traced shape arithmetic; the fixed-shape
        # export is exactly what we want, and the numerical check below is the real test.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (x,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(str(path))
    log.info("wrote %s (opset %d, input %s)", path, opset, tuple(shape))
    if verify:
        cmp = verify_onnx(path, wrapper, x, tolerances)
        log.info("onnxruntime vs PyTorch: %s", cmp.summary())
        if dynamic_batch and shape[0] == 1:
            x2 = example_input((2, *shape[1:]), seed=1)
            verify_onnx(path, wrapper, x2, tolerances)
    return path


def verify_onnx(
    path: str | Path, wrapper: nn.Module, images: Tensor, tolerances: dict[str, tuple[float, float]] | None = None
) -> Comparison:
    """Run ``path`` in onnxruntime (CPU) and compare with ``wrapper(images)``; raise on mismatch."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ExportError("ONNX verification needs onnxruntime: pip install onnxruntime") from exc
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    got = sess.run(list(OUTPUT_NAMES), {INPUT_NAME: images.detach().cpu().float().numpy()})
    with torch.no_grad():
        ref = wrapper(images.cpu().float())
    cmp = compare_dense(tuple(got), ref, tolerances)
    if not cmp.ok:
        raise ExportError(f"{path}: onnxruntime disagrees with PyTorch beyond tolerance: {cmp.summary()}")
    return cmp


# ----------------------------------------------------------------------------------------------
# AOTInductor
# ----------------------------------------------------------------------------------------------


def export_aoti(
    model: nn.Module,
    cfg: ModelConfig,
    path: str | Path,
    shape: tuple[int, int, int, int],
    *,
    device: torch.device | str = "cuda",
    precision: str = "fp16",
    channels_last: bool = True,
    max_autotune: bool = False,
) -> Path:
    """``torch.export`` + ``aoti_compile_and_package`` → a ``.pt2`` package for one input shape.

    The package embeds the weights and the compiled kernels; :class:`das_core.engine.backends.aoti.AOTIBackend`
    loads it in seconds with ``torch._inductor.aoti_load_package``. ``precision`` fp16 / bf16 converts the
    weights to that dtype (the update's sampling stays float32; outputs are float32). ``channels_last`` is the
    weights' layout; the package's input is always NCHW-contiguous (see the comment below). A package only runs
    on the device type (and, for CUDA, the GPU architecture) it was compiled for — the backend cache keys on that.
    """
    if precision not in _DTYPES:
        raise ExportError(f"AOTInductor precision {precision!r}: choose from {sorted(_DTYPES)}")
    device = torch.device(device)
    path = Path(path)
    if path.suffix != ".pt2":
        raise ExportError(f"{path}: an AOTInductor package must end in .pt2")
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.to(device).eval()
    mem = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=mem)  # type: ignore[call-overload]
    update = getattr(model, "update", None)
    if update is not None:
        update.sampler = "gather"  # what Inductor compiles well (das_core.model.update); same numbers
    dtype = _DTYPES[precision]
    if dtype is not None:
        # Reduced precision as converted weights rather than a traced autocast region (strict export
        # refuses that region on torch 2.11). On an H100 neither form reproduced eager (offsets 0.8 strides
        # off, people 92 mm), which is why AOTIBackend verifies every package it loads.
        model = model.to(dtype)
    wrapper = DenseExportWrapper(model, cfg.depth_factor, input_dtype=dtype).eval()
    # The package's *input* is NCHW-contiguous whatever the weights' layout. A package reads its input with the
    # strides it was compiled for and checks nothing; a channels-last input is where the H100's 92 mm came
    # from: its refused fp16 package (scores 6.1e-4, root_depth 5.3e-5, offsets 0.30, sigma 0.041 off on the
    # verification input) matches, digit for digit, a bf16 das_r50_fpn package fed the other layout on the CPU
    # (6.1e-4 / 5.6e-5 / 0.33 / 0.043; docs/results/aoti_repro_cpu_r50.json). NCHW is also what preprocessing
    # produces, so no layout copy is needed per frame (Inductor still picks channels-last inside on CUDA).
    x = example_input(shape, device).contiguous()
    configs: dict[str, Any] = {"max_autotune": bool(max_autotune)}
    with torch.no_grad():
        ep = torch.export.export(wrapper, (x,))
        out = torch._inductor.aoti_compile_and_package(ep, package_path=str(path), inductor_configs=configs)
    log.info("wrote %s (AOTInductor, %s, %s, input %s)", out, device.type, precision, tuple(shape))
    return Path(out)


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# TensorRT engines (built from the fp32 ONNX export; used by das export and backends.tensorrt). UNTESTED
# beyond the error raised when tensorrt is missing: see das_core/engine/backends/tensorrt.py.
# ----------------------------------------------------------------------------------------------

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
    engine_path = Path(engine_path)
    onnx_path = export_onnx(copy.deepcopy(model).cpu().float(), cfg, engine_path.with_suffix(".onnx"), shape)
    batches = calibration_batches(calib_images, cfg, shape, calib_count) if precision == "int8" and calib_images else None
    return build_engine(onnx_path, engine_path, precision=precision, calib_batches=batches)


def parse_size(text: str) -> tuple[int, int]:
    """``1280x720`` → (1280, 720)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 1280x720") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be > 0")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="checkpoint (NAME[.safetensors]), model YAML or config name (random weights)")
    parser.add_argument("--format", choices=("onnx", "aoti", "tensorrt"), default="onnx")
    parser.add_argument("-o", "--output", type=Path, help="output file (default: <model>-<precision>-<H>x<W>.<ext>)")
    parser.add_argument("--frame-size", type=parse_size, default=(1280, 720),
                        help="camera frame WIDTHxHEIGHT; the network input is its resized, padded size")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16", "int8"), default="fp32")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda for aoti/tensorrt if present)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument("--dynamic-batch", action="store_true", help="ONNX: symbolic batch axis")
    parser.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-vs-PyTorch check")
    parser.add_argument("--max-autotune", action="store_true", help="aoti: Inductor max-autotune (slow build)")
    parser.add_argument("--calib-images", type=Path, help="tensorrt int8: folder of calibration images")
    parser.add_argument("--calib-count", type=int, default=64, help="tensorrt int8: images to calibrate on")


def run(args: argparse.Namespace) -> int:
    default_dev = "cuda" if torch.cuda.is_available() and args.format != "onnx" else "cpu"
    device = torch.device(args.device or default_dev)
    cfg, model, _ = load_model(args.source, "cpu")
    h, w = network_input_shape(cfg, *args.frame_size)
    shape = (args.batch, 3, h, w)
    ext = {"onnx": ".onnx", "aoti": ".pt2", "tensorrt": ".engine"}[args.format]
    out = args.output or Path(f"{cfg.name}-{args.precision}-{h}x{w}{ext}")
    if args.format == "onnx":
        if args.precision != "fp32":
            raise ExportError("ONNX files are exported in fp32; reduced precision is chosen when the TensorRT "
                              "engine is built (--format tensorrt --precision fp16|int8)")
        path = export_onnx(model, cfg, out, shape, opset=args.opset, dynamic_batch=args.dynamic_batch,
                           verify=not args.no_verify)
    elif args.format == "aoti":
        if args.precision == "int8":
            raise ExportError("AOTInductor export supports fp32 / fp16 / bf16; int8 needs --format tensorrt")
        path = export_aoti(model, cfg, out, shape, device=device, precision=args.precision,
                           max_autotune=args.max_autotune)
    else:

        if args.precision == "bf16":
            raise ExportError("TensorRT engines here support fp32 / fp16 / int8")
        path = build_engine_from_model(model, cfg, out, shape, precision=args.precision,
                                       calib_images=args.calib_images, calib_count=args.calib_count)
    print(path)
    return 0
