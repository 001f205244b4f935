"""Benchmark the inference engine: latency per stage, throughput, GPU memory, people-count scaling, and
agreement of every backend with eager fp32.

What is timed is what a user gets: :class:`~das_core.engine.estimator.Estimator` on a ``W×H`` uint8 RGB frame in
host memory → :class:`~das_core.persons.Persons` in host memory (upload, resize/normalise/pad on the
device, network, decode, one device→host copy). *total* is host wall-clock per frame; *preprocess /
forward / decode* are the Estimator's per-stage CUDA-event times (CPU clock on the CPU).

**Forced people.** Randomly initialised weights find nobody (centre logits start at −4.6, DAS_SPEC §4.4),
and a real frame needs a trained model, so a scene with N people is made by *adding* N person-shaped
patterns to the network's dense outputs (:class:`ForcedPeople`): for each person a 3×3 block of cells on
one level gets scores above the threshold and offsets that point at the same 15 joints (so OKS-NMS must
suppress 8 duplicates per person, as with a trained model's neighbouring cells), and a root depth of 3–7 m.
The addition is one fused elementwise op on the device, timed inside *forward*. Because it is additive,
a backend's numerical differences still reach the decoded people, which is how people are compared
across backends. (The decoder works on fixed-size candidate sets — ``nms_pre`` per level — so its cost
should hardly depend on N; the scenes measure that.)

Examples::

    das bench das_r18_fpn --device cpu --backends eager onnx --repeats 20
    das bench das_r50_fpn --device cuda --backends eager:fp32 eager:fp16 compile:fp16 aoti:fp16 \\
        --json bench.json
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from das_core.camera import Intrinsics, ResizeRecord
from das_core.config import ModelConfig
from das_core.engine.decode import lift_all_cells  # re-exported: it lived here first
from das_core.engine.export import AGREEMENT
from das_core.model.outputs import DenseOutputs

__all__ = [
    "BenchSettings",
    "ForcedPeople",
    "ForcedPeopleBackend",
    "add_arguments",
    "bench_backend",
    "format_table",
    "lift_all_cells",
    "run",
    "synthetic_frame",
]

log = logging.getLogger(__name__)

# A standing person, panoptic15 joint order (skeletons.PANOPTIC15), in units of body height relative to
# the mid-hip root: (x right, y down).
_PANOPTIC15_TEMPLATE = np.array(
    [[0.0, -0.30], [0.0, -0.42], [0.0, 0.0], [0.10, -0.28], [0.14, -0.15], [0.15, -0.02], [0.06, 0.0],
     [0.07, 0.22], [0.07, 0.45], [-0.10, -0.28], [-0.14, -0.15], [-0.15, -0.02], [-0.06, 0.0],
     [-0.07, 0.22], [-0.07, 0.45]], dtype=np.float64)


def synthetic_frame(width: int = 1280, height: int = 720, seed: int = 0) -> np.ndarray:
    """A fixed-seed (H, W, 3) uint8 RGB frame: smooth colour gradients plus noise (content does not change
    the network's cost; it only has to be a valid image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width, yy / height, 0.5 + 0.5 * np.sin(xx / 50.0) * np.cos(yy / 40.0)], axis=-1)
    img = 255.0 * base + rng.normal(0.0, 12.0, size=(height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def default_camera(width: int, height: int) -> Intrinsics:
    """A plausible camera for a ``width × height`` frame (60° horizontal field of view)."""
    f = 0.5 * width / math.tan(math.radians(30.0))
    return Intrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0)


# ----------------------------------------------------------------------------------------------
# Forced people
# ----------------------------------------------------------------------------------------------


class ForcedPeople:
    """Additive person patterns for the dense outputs of one input size (see the module docstring).

    Args:
        cfg: model config (strides, ``z_norm``, skeleton size via ``num_joints``).
        num_joints: K.
        input_hw: padded network input (H, W).
        record: the frame's resize record (people are placed inside the resized, unpadded area).
        camera: intrinsics of the original frame (root depths are ``Z / f_eff``).
        num_people: N ≥ 0.
        device: where the patterns live.

    Attributes:
        expected_roots_m: (N, 3) the people's root positions (metres) the decoder should find.
    """

    def __init__(
        self,
        cfg: ModelConfig,
        num_joints: int,
        input_hw: tuple[int, int],
        record: ResizeRecord,
        camera: Intrinsics,
        num_people: int,
        device: torch.device | str,
    ) -> None:
        from das_core.engine.estimator import level_sizes

        h, w = input_hw
        strides = tuple(cfg.strides)
        sizes = level_sizes(h, w, strides)
        starts = np.cumsum([0] + [a * b for a, b in sizes])
        p = int(starts[-1])
        k = num_joints
        if k == 15:
            template = _PANOPTIC15_TEMPLATE
        else:  # any other skeleton: a fixed pseudo-random joint cloud of the same extent
            rng = np.random.default_rng(k)
            template = np.stack([rng.uniform(-0.15, 0.15, k), rng.uniform(-0.45, 0.45, k)], axis=-1)
        scores = np.zeros((p,), np.float32)
        offsets = np.zeros((p, k, 3), np.float32)
        root = np.zeros((p,), np.float32)
        # People on the level whose regress range fits a person of height 6·S: the 2nd level if there is one.
        lvl = 1 if len(strides) > 1 else 0
        s = strides[lvl]
        lh, lw = sizes[lvl]
        if num_people and (lh < 3 or lw < 3):
            raise ValueError(f"level {lvl} map {lh}×{lw} is too small for forced people (needs ≥ 3×3)")
        rows = max(1, int(math.floor(math.sqrt(max(num_people, 1) * record.resized_height / record.resized_width))))
        cols = max(1, math.ceil(max(num_people, 1) / rows))
        f_eff = math.sqrt(camera.fx * record.sx * camera.fy * record.sy)
        roots = []
        used: set[int] = set()
        for i in range(num_people):
            r, c = divmod(i, cols)
            # cell of the person's centre: a grid over the resized image, away from the borders
            cy = int((r + 0.5) / rows * (record.resized_height / s))
            cx = int((c + 0.5) / cols * (record.resized_width / s))
            cy, cx = min(max(cy, 1), lh - 2), min(max(cx, 1), lw - 2)
            centre = np.array([s * (cx + 0.5), s * (cy + 0.5)])
            joints = centre + 6.0 * s * template  # (K, 2) network pixels
            z = 3.0 + 4.0 * i / max(num_people - 1, 1)  # metres
            base = 0.9 - 0.4 * i / max(num_people, 1)  # distinct per person, so the order is stable
            for j, (dy, dx) in enumerate([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]):
                yy, xx = cy + dy, cx + dx
                cell = int(starts[lvl]) + yy * lw + xx
                if cell in used:
                    raise ValueError(f"{num_people} forced people do not fit on a {lh}×{lw} level-{lvl} map "
                                     f"(input {h}×{w}); use a larger input or fewer people")
                used.add(cell)
                cell_c = np.array([s * (xx + 0.5), s * (yy + 0.5)])
                scores[cell] = base - 0.004 * j
                offsets[cell, :, :2] = (joints - cell_c) / s
                root[cell] = z / f_eff
            uv = record.to_original(joints[2 if k == 15 else 0])
            roots.append([(uv[0] - camera.cx) * z / camera.fx, (uv[1] - camera.cy) * z / camera.fy, z])
        self.num_people = num_people
        self.expected_roots_m = np.asarray(roots, np.float64).reshape(-1, 3)
        dev = torch.device(device)
        self.scores = torch.from_numpy(scores).to(dev)[None]
        self.offsets = torch.from_numpy(offsets).to(dev)[None]
        self.root_depth = torch.from_numpy(root).to(dev)[None]


class ForcedPeopleBackend:
    """A backend whose outputs get :class:`ForcedPeople` added; otherwise the wrapped backend unchanged.

    The patterns live in fixed buffers that ``forced = …`` overwrites, so a CUDA graph that captured the
    addition (the backend's own, or an Estimator frame graph) picks up a new scene without re-capture.
    """

    def __init__(self, backend: Any, forced: ForcedPeople | None) -> None:
        self.inner = backend
        self.name, self.device, self.precision = backend.name, backend.device, backend.precision
        self.frame_graphs = bool(getattr(backend, "frame_graphs", False))
        self.memory_format = getattr(backend, "memory_format", torch.contiguous_format)
        self.compile_frame = bool(getattr(backend, "compile_frame", False))
        self._buffers: tuple[Tensor, Tensor, Tensor] | None = None
        self._forced: ForcedPeople | None = None
        self.forced = forced

    @property
    def forced(self) -> ForcedPeople | None:
        return self._forced

    @forced.setter
    def forced(self, value: ForcedPeople | None) -> None:
        self._forced = value
        if value is None:
            if self._buffers is not None:
                for buf in self._buffers:
                    buf.zero_()
            return
        patterns = (value.scores, value.root_depth, value.offsets)
        if self._buffers is None or any(b.shape != p.shape for b, p in zip(self._buffers, patterns, strict=True)):
            self._buffers = tuple(p.clone() for p in patterns)  # type: ignore[assignment]
        else:
            for buf, pat in zip(self._buffers, patterns, strict=True):
                buf.copy_(pat)

    def _apply(self, dense: DenseOutputs) -> DenseOutputs:
        if self._buffers is None:  # never had a pattern (zeros once ``forced`` is set to None)
            return dense
        if dense.scores.shape[-1] != self._buffers[0].shape[-1]:
            raise ValueError(f"forced people were made for P={self._buffers[0].shape[-1]} cells, outputs have "
                             f"P={dense.scores.shape[-1]} (another input size?)")
        scores, root, offsets = self._buffers
        return DenseOutputs(dense.scores + scores, dense.root_depth + root, dense.offsets + offsets, dense.sigma)

    def run(self, images: Tensor) -> DenseOutputs:
        return self._apply(self.inner.run(images))

    def save_compile_cache(self) -> None:
        save = getattr(self.inner, "save_compile_cache", None)
        if callable(save):
            save()

    def capturable(self, images: Tensor) -> DenseOutputs:
        return self._apply(self.inner.capturable(images))


# ----------------------------------------------------------------------------------------------
# Agreement
# ----------------------------------------------------------------------------------------------


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, np.float64), q)) if values else float("nan")


# ----------------------------------------------------------------------------------------------
# One backend
# ----------------------------------------------------------------------------------------------


@dataclass
class BenchSettings:
    frame_size: tuple[int, int] = (1280, 720)
    warmup: int = 10
    repeats: int = 100
    scene_repeats: int = 50
    people: tuple[int, ...] = (1, 5, 10, 20)
    batch: int = 8
    # Batch sizes to measure (one call with N frames, e.g. N cameras); empty = just ``batch``.
    batches: tuple[int, ...] = ()
    device: str = "auto"
    cache_dir: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # per backend name


def _time_frames(est: Any, frames: list[np.ndarray], cams: list[Intrinsics], n: int) -> tuple[list[float], list[Any]]:
    totals, stages = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        est.batch(frames, cams)
        totals.append((time.perf_counter() - t0) * 1e3)
        stages.append(est.timings)
    return totals, stages


@dataclass
class _Case:
    """One (backend, precision) under test: the estimator around it, the frame and the forced scenes."""

    cfg: ModelConfig
    device: torch.device
    frame: np.ndarray
    cam: Intrinsics
    hw: tuple[int, int]
    record: ResizeRecord
    k: int
    backend: Any
    wrapped: ForcedPeopleBackend
    forced: dict[int, ForcedPeople]
    est: Any


def _latency(case: _Case, settings: BenchSettings) -> dict[str, Any]:
    """Batch-1 latency percentiles per stage over ``settings.repeats`` frames."""
    totals, stages = _time_frames(case.est, [case.frame], [case.cam], settings.repeats)
    return {
        "total_p50": _pct(totals, 50), "total_p99": _pct(totals, 99),
        # min: the least-disturbed frame (on a shared machine, the best estimate of the uncontended cost)
        "total_min": min(totals), "forward_min": min(t.forward_ms for t in stages),
        **{f"{s}_p50": _pct([getattr(t, f"{s}_ms") for t in stages], 50) for s in ("preprocess", "forward", "decode")},
        **{f"{s}_p99": _pct([getattr(t, f"{s}_ms") for t in stages], 99) for s in ("preprocess", "forward", "decode")},
    }


def _scene_scaling(case: _Case, settings: BenchSettings) -> dict[str, Any]:
    """People-count scaling: total latency for each forced scene."""
    scenes = {}
    for n in settings.people:
        case.wrapped.forced = case.forced[n]
        for _ in range(3):
            people = case.est(case.frame, case.cam)
        t, _ = _time_frames(case.est, [case.frame], [case.cam], settings.scene_repeats)
        scenes[str(n)] = {"total_p50": _pct(t, 50), "total_p99": _pct(t, 99), "found": len(people)}
    return scenes


def _agreement(case: _Case, precision: str, reference: dict[str, Any]) -> dict[str, Any]:
    """Agreement with eager fp32 on the same preprocessed input: dense outputs, every cell lifted to 3D,
    and the decoded people of the forced reference scene."""
    from das_core.engine.export import compare_dense
    from das_core.engine.preprocess import preprocess

    cfg, hw, record, cam = case.cfg, case.hw, case.record, case.cam
    x, _ = preprocess(case.frame, cfg.input, case.device)
    with torch.inference_mode():
        dense = DenseOutputs(*(t.clone() for t in case.backend.run(x)))
    tol = AGREEMENT[precision]
    cmp = compare_dense(dense, reference["dense"], tol["dense"])
    j_got = lift_all_cells(dense, cfg, hw, record, cam)
    j_ref = lift_all_cells(reference["dense"], cfg, hw, record, cam)
    cell_mm = (j_got - j_ref).norm(dim=-1).amax(dim=-1).flatten() * 1e3  # (P,) worst joint per cell
    n_cmp = reference["people_n"]
    case.wrapped.forced = case.forced.get(n_cmp) or ForcedPeople(cfg, case.k, hw, record, cam, n_cmp, case.device)
    people = case.est(case.frame, cam)
    ref_people = reference["people"]
    same = len(people) == len(ref_people)
    joints_mm = float(np.abs(people.joints_3d - ref_people.joints_3d).max() * 1e3) if same and len(people) else float("nan")
    return {
        "dense_max_abs": cmp.max_abs,
        "dense_within_tol": cmp.ok,
        "all_cells_joint_mm_max": float(cell_mm.max()),
        "all_cells_joint_mm_p99": float(torch.quantile(cell_mm.double().cpu(), 0.99)),
        "people_same_count": same,
        "people_count": [len(people), len(ref_people)],
        "people_joints_mm_max": joints_mm,
        "tolerance_joints_mm": tol["joints_mm"],
        "pass": bool(cmp.ok and same and joints_mm <= tol["joints_mm"]),
    }


def _batch_throughput(case: _Case, settings: BenchSettings, batch: int | None = None) -> dict[str, Any]:
    """Throughput at batch N (a new input-size bucket: compiled backends build it now, not timed)."""
    batch = settings.batch if batch is None else batch
    case.wrapped.forced = case.forced[settings.people[0]] if settings.people else None
    frames, cams = [case.frame] * batch, [case.cam] * batch
    tb = time.perf_counter()
    case.est.batch(frames, cams)
    first_call_s = round(time.perf_counter() - tb, 2)
    for _ in range(3):
        case.est.batch(frames, cams)
    t, _ = _time_frames(case.est, frames, cams, max(10, settings.repeats // 5))
    return {"batch_first_call_s": first_call_s, "batch": batch, "batch_total_p50_ms": _pct(t, 50),
            "batch_total_p99_ms": _pct(t, 99), "throughput_bN_fps": batch * 1e3 / _pct(t, 50)}


def _backend_facts(backend: Any) -> dict[str, Any]:
    """What a backend reports about itself: CUDA graphs in use, build and load times."""
    facts: dict[str, Any] = {}
    if hasattr(backend, "cuda_graphs"):
        facts["cuda_graphs"] = bool(backend.cuda_graphs)
        facts["graph_error"] = getattr(backend, "graph_error", None)
    if hasattr(backend, "build_seconds"):
        facts["build_s"] = round(backend.build_seconds, 2)
        facts["load_s"] = round(getattr(backend, "load_seconds", 0.0), 2)
    return facts


def _build_case(name: str, precision: str, model: nn.Module, cfg: ModelConfig, settings: BenchSettings,
                device: torch.device, frame: np.ndarray) -> _Case:
    from das_core.engine.backends import make_backend
    from das_core.engine.estimator import Estimator
    from das_core.engine.export import network_input_shape
    from das_core.skeletons import get_skeleton

    w, h = settings.frame_size
    cam = default_camera(w, h)
    hw = network_input_shape(cfg, w, h)
    record = ResizeRecord.for_image(w, h, cfg.input.long_side, cfg.input.short_side, cfg.input.size_divisor)
    k = get_skeleton(cfg.skeleton).num_joints
    opts = dict(settings.options.get(name, {}))
    if name in ("aoti", "onnx", "tensorrt") and settings.cache_dir:
        opts.setdefault("cache_dir", settings.cache_dir)
    channels_last = device.type == "cuda" and name in ("eager", "compile", "aoti") and precision != "fp32"
    backend = make_backend(name, copy.deepcopy(model), cfg, device=device, precision=precision,
                           channels_last=channels_last, **opts)
    forced = {n: ForcedPeople(cfg, k, hw, record, cam, n, device) for n in settings.people}
    wrapped = ForcedPeopleBackend(backend, forced[settings.people[0]] if settings.people else None)
    est = Estimator(cfg, wrapped)  # type: ignore[arg-type]
    return _Case(cfg, device, frame, cam, hw, record, k, backend, wrapped, forced, est)


def bench_backend(
    name: str,
    precision: str,
    model: nn.Module,
    cfg: ModelConfig,
    settings: BenchSettings,
    reference: dict[str, Any] | None = None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Measure one (backend, precision). ``reference`` (from the eager fp32 run) enables agreement checks.

    Returns a JSON-ready dict; a failure to build/run is recorded as ``{"error": message}``, not raised.
    """
    from das_core.engine.backends import resolve_device
    from das_core.engine.export import network_input_shape

    device = resolve_device(settings.device)
    w, h = settings.frame_size
    frame = synthetic_frame(w, h)
    result: dict[str, Any] = {"backend": name, "precision": precision, "device": str(device),
                              "input": [1, 3, *network_input_shape(cfg, w, h)], "frame": [w, h]}
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    try:
        case = _build_case(name, precision, model, cfg, settings, device, frame)
        case.est(case.frame, case.cam)  # first call: compiles / builds / loads
        result["first_call_s"] = round(time.perf_counter() - t0, 2)
        for _ in range(settings.warmup):
            case.est(case.frame, case.cam)
        if device.type == "cuda":
            result.update(_gpu_memory(device, "warmup"))
        result["scene_people"] = settings.people[0] if settings.people else 0
        result["latency_ms"] = _latency(case, settings)
        result["throughput_b1_fps"] = 1e3 / result["latency_ms"]["total_p50"]
        if device.type == "cuda":
            result.update(_gpu_memory(device, "steady"))
        scenes = result["scenes"] = _scene_scaling(case, settings)
        if "1" in scenes and "20" in scenes:
            result["ratio_20_vs_1"] = scenes["20"]["total_p50"] / scenes["1"]["total_p50"]
        if reference is not None:
            result["agreement"] = _agreement(case, precision, reference)
        batch_sizes = [n for n in (settings.batches or (settings.batch,)) if n > 1]
        for n in batch_sizes:
            if deadline is not None and time.perf_counter() >= deadline:
                result.setdefault("batch_skipped", []).append(n)  # not started: the time budget was spent
                continue
            res_n = _batch_throughput(case, settings, n)
            result.setdefault("batches", {})[str(n)] = res_n
            # one call with N frames against one call with one frame (issue 14: 4 cameras <= 1.5x one)
            result[f"ratio_b{n}_vs_b1"] = res_n["batch_total_p50_ms"] / result["latency_ms"]["total_p50"]
            result.update(res_n)  # the flat batch keys hold the largest batch measured (format_row, das bench)
        if device.type == "cuda" and "batches" in result:
            # the batch bucket is a new input size: its build and its frames (and the people-scaling and
            # agreement runs before it) are this phase, apart from the single-frame steady state
            result.update(_gpu_memory(device, "batch"))
        result.update(_backend_facts(case.backend))
    except Exception as exc:  # one backend failing must not lose the others' numbers
        log.exception("%s:%s failed", name, precision)
        result["error"] = f"{type(exc).__name__}: {exc}"
    result["wall_s"] = round(time.perf_counter() - t0, 2)
    return result


def _gpu_memory(device: torch.device, phase: str) -> dict[str, float]:
    """GPU memory of one benchmark phase, MiB, then a fresh peak counter for the next phase.

    ``warmup`` holds the first call's build (compilation, cuDNN's algorithm search, graph capture): its peak
    is what a process needs once at start-up, not per frame. ``steady`` is what serving frames holds:
    memory allocated after the latency loop, the peak during it, and what PyTorch's caching allocator has
    reserved from the driver (what ``nvidia-smi`` shows for this process, minus the CUDA context).
    """
    mib = 2.0**20
    out = {f"gpu_mem_{phase}_peak_mib": torch.cuda.max_memory_allocated(device) / mib}
    if phase != "warmup":
        out[f"gpu_mem_{phase}_allocated_mib"] = torch.cuda.memory_allocated(device) / mib
        out[f"gpu_mem_{phase}_reserved_mib"] = torch.cuda.memory_reserved(device) / mib
    torch.cuda.reset_peak_memory_stats(device)
    return out


def eager_reference(model: nn.Module, cfg: ModelConfig, settings: BenchSettings) -> dict[str, Any]:
    """Eager fp32 dense outputs for the benchmark frame and the people of the forced 5-person scene."""
    from das_core.engine.backends import make_backend, resolve_device
    from das_core.engine.estimator import Estimator
    from das_core.engine.export import network_input_shape
    from das_core.engine.preprocess import preprocess
    from das_core.skeletons import get_skeleton

    device = resolve_device(settings.device)
    w, h = settings.frame_size
    frame, cam = synthetic_frame(w, h), default_camera(w, h)
    hw = network_input_shape(cfg, w, h)
    record = ResizeRecord.for_image(w, h, cfg.input.long_side, cfg.input.short_side, cfg.input.size_divisor)
    backend = make_backend("eager", copy.deepcopy(model), cfg, device=device, precision="fp32")
    x, _ = preprocess(frame, cfg.input, device)
    with torch.inference_mode():
        dense = DenseOutputs(*(t.clone() for t in backend.run(x)))
    n = people_for_agreement(settings)
    forced = ForcedPeople(cfg, get_skeleton(cfg.skeleton).num_joints, hw, record, cam, n, device)
    people = Estimator(cfg, ForcedPeopleBackend(backend, forced))(frame, cam)  # type: ignore[arg-type]
    return {"dense": dense, "people": people, "people_n": n, "expected_roots_m": forced.expected_roots_m}


def people_for_agreement(settings: BenchSettings) -> int:
    """The forced scene whose decoded people are compared across backends: 5 people, or the largest
    benchmarked scene below that."""
    return max([n for n in settings.people if 0 < n <= 5], default=1)


def environment(device: str) -> dict[str, Any]:
    env: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                           "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads()}
    if torch.cuda.is_available() and device != "cpu":
        env["gpu"] = torch.cuda.get_device_name()
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return env


# Seconds a backend needs at least (first build + measurements) on an H100-class machine; with a time budget,
# a backend is skipped rather than started when less than this remains.
MIN_SECONDS = {"eager": 20.0, "onnx": 60.0, "tensorrt": 240.0, "compile": 200.0, "aoti": 240.0}
# Extra seconds needed to also measure batch N (a new input-size bucket means a new build for these).
BATCH_SECONDS = {"compile": 150.0, "aoti": 200.0, "tensorrt": 200.0, "onnx": 30.0}


def run_suite(source: str, specs: list[tuple[str, str]], settings: BenchSettings,
              budget_s: float | None = None, on_result: Any = None) -> dict[str, Any]:
    """Benchmark every ``(backend, precision)`` in ``specs`` on one model; eager fp32 is the reference.

    ``on_result(report)`` is called after each backend (e.g. to write partial JSON, so a killed run keeps
    what it measured).
    """
    from das_core.engine.export import load_model

    start = time.perf_counter()
    deadline = start + budget_s if budget_s else None
    cfg, model, has_weights = load_model(source, "cpu")
    report: dict[str, Any] = {"model": cfg.name, "weights": "checkpoint" if has_weights else "random",
                              "settings": {**settings.__dict__, "people": list(settings.people)},
                              "environment": environment(settings.device), "results": []}
    ref = eager_reference(model, cfg, settings)
    report["agreement_scene_people"] = ref["people_n"]
    report["reference_people_found"] = len(ref["people"])
    for name, precision in specs:
        if deadline is not None and deadline - time.perf_counter() < MIN_SECONDS.get(name, 60.0):
            report["results"].append({"backend": name, "precision": precision, "error": "skipped: time budget"})
            print(format_row(report["results"][-1]), flush=True)
            continue
        log.info("benchmarking %s:%s", name, precision)
        batch_deadline = None if deadline is None else deadline - BATCH_SECONDS.get(name, 0.0)
        res = bench_backend(name, precision, model, cfg, settings, ref, batch_deadline)
        report["results"].append(res)
        print(format_row(res), flush=True)
        if on_result is not None:
            on_result(report)
    base = next((r for r in report["results"] if r["backend"] == "eager" and r["precision"] == "fp32"
                 and "latency_ms" in r), None)
    if base is not None:
        for r in report["results"]:
            if "latency_ms" in r:
                r["speedup_vs_eager_fp32"] = base["latency_ms"]["total_p50"] / r["latency_ms"]["total_p50"]
    report["wall_s"] = round(time.perf_counter() - start, 1)
    return report


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------

_HEADER = (f"{'backend':<10}{'prec':<6}{'total p50':>10}{'p99':>9}{'pre':>8}{'fwd':>9}{'dec':>8}"
           f"{'fps b1':>8}{'fps bN':>8}{'MiB':>7}{'1p':>9}{'5p':>9}{'10p':>9}{'20p':>9}{'20/1':>6}  agree")


def format_row(r: dict[str, Any]) -> str:
    """One backend's line; MiB is the steady-state peak of allocated GPU memory (after warm-up, cuDNN's search and
    compilation excluded: those are ``gpu_mem_warmup_peak_mib`` in the JSON)."""
    if "latency_ms" not in r:
        return f"{r['backend']:<10}{r['precision']:<6}  {r.get('error', 'no result')}"
    lat, sc = r["latency_ms"], r.get("scenes", {})

    def f(v: Any, d: int = 2) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"

    agree = r.get("agreement")
    agree_s = "ref" if agree is None else (
        f"{'ok' if agree['pass'] else 'FAIL'} {f(agree['people_joints_mm_max'], 2)}mm")
    return (f"{r['backend']:<10}{r['precision']:<6}{f(lat['total_p50']):>10}{f(lat['total_p99']):>9}"
            f"{f(lat['preprocess_p50']):>8}{f(lat['forward_p50']):>9}{f(lat['decode_p50']):>8}"
            f"{f(r.get('throughput_b1_fps'), 1):>8}{f(r.get('throughput_bN_fps'), 1):>8}"
            f"{f(r.get('gpu_mem_steady_peak_mib'), 0):>7}"
            + "".join(f" {f(sc.get(str(n), {}).get('total_p50')):>8}" for n in (1, 5, 10, 20))
            + f"{f(r.get('ratio_20_vs_1')):>6}  {agree_s}" + (f"  ERROR {r['error']}" if "error" in r else ""))


def format_table(report: dict[str, Any]) -> str:
    env = report["environment"]
    lines = [f"model {report['model']} ({report['weights']} weights), frame "
             f"{report['settings']['frame_size'][0]}x{report['settings']['frame_size'][1]}, "
             f"{env.get('gpu', env['cpu'])}, torch {env['torch']}",
             "latency in ms (total = host frame → host Persons; pre/fwd/dec = per-stage device time); "
             "Np = total p50 with N forced people",
             _HEADER]
    lines += [format_row(r) for r in report["results"]]
    return "\n".join(lines)


def parse_spec(text: str) -> tuple[str, str]:
    """``compile:fp16`` → (``compile``, ``fp16``); a bare name means fp32."""
    name, _, prec = text.partition(":")
    return name, prec or "fp32"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="checkpoint, model YAML or config name (e.g. das_r50_fpn; random weights)")
    parser.add_argument("--backends", nargs="+", default=["eager:fp32"],
                        help="NAME[:PRECISION] list, e.g. eager:fp32 eager:fp16 compile:fp16 aoti:fp16 onnx")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--frame-size", default="1280x720", help="WIDTHxHEIGHT of the host frame")
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--scene-repeats", type=int, default=50)
    parser.add_argument("--people", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--batch", type=int, default=8, help="batch size for the throughput row (1 = skip)")
    parser.add_argument("--cache-dir", default=None, help="compiled artefacts (default $DAS_CACHE_DIR or ~/.cache/das)")
    parser.add_argument("--budget-s", type=float, default=None, help="skip remaining backends after this long")
    parser.add_argument("--compile-mode", default="default", help="compile backend: default | max-autotune-no-cudagraphs")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch / onnxruntime (0 = default)")
    parser.add_argument("--json", type=Path, help="write the full report here")


def run(args: argparse.Namespace) -> int:
    from das_core.engine.export import parse_size

    if args.threads:
        torch.set_num_threads(args.threads)
    settings = BenchSettings(
        frame_size=parse_size(args.frame_size), warmup=args.warmup, repeats=args.repeats,
        scene_repeats=args.scene_repeats, people=tuple(args.people), batch=args.batch, device=args.device,
        cache_dir=args.cache_dir,
        options={"compile": {"mode": args.compile_mode}, **({"onnx": {"threads": args.threads}} if args.threads else {})},
    )
    print(_HEADER, flush=True)
    report = run_suite(args.source, [parse_spec(s) for s in args.backends], settings, args.budget_s)
    print()
    print(format_table(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0 if all("error" not in r for r in report["results"]) else 1
