"""``torch.compile`` backend: Inductor-compiled model, one CUDA graph per input-size bucket.

Why a hand-held CUDA graph rather than ``mode="reduce-overhead"``: the graph then owns one static input
buffer that we copy each frame into, replay costs one launch, and the compile mode can still be chosen
freely (``default`` compiles in about a minute; ``max-autotune-no-cudagraphs`` benchmarks Triton
kernels and takes several). Each padded input shape ``(B,3,H,W)`` is a bucket with its own compiled
graph and CUDA graph, built on first use (or by :meth:`CompiledBackend.prepare`).

Reduced precision is autocast (fp16 / bf16) inside the compiled functions — GroupNorm and softmax stay
fp32 as DAS_SPEC §4.4 wants — or, by default (``cast_weights``), weights converted to that dtype (no per-frame
weight casts, GroupNorm on fp16 tensors; the update's sampling positions stay fp32 either way), and ``channels_last``
feeds cuDNN / Triton NHWC convolutions.

The tensors :meth:`CompiledBackend.run` returns on CUDA are the graph's static outputs: they are
overwritten by the next ``run`` on the same bucket, so decode (or ``.clone()``) before the next frame.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from das_core.config import ModelConfig, dump_config
from das_core.engine.backends.base import BackendError, autocast_dtype, check_precision, resolve_device
from das_core.engine.backends.cache import model_fingerprint
from das_core.engine.capture_lock import CAPTURE_LOCK
from das_core.engine.compile_cache import CompileCache, dynamo_cache_counts, enable_dynamo_cache
from das_core.model.dense import concat_levels, level_to_dense
from das_core.model.outputs import DenseOutputs

__all__ = ["CompiledBackend", "CudaGraphRunner"]

log = logging.getLogger(__name__)


class CudaGraphRunner:
    """Capture ``fn(static_input)`` once into a CUDA graph; each call copies the input in and replays.

    Args:
        fn: ``images (B,3,H,W) -> tuple of tensors``; must not synchronise with the host.
        example: an input of the exact shape, dtype, memory format and device to capture with.
        warmup: eager calls on a side stream before capture (lets cuDNN/Triton pick algorithms and the
            caching allocator settle, which capture requires).
    """

    def __init__(self, fn: Callable[[Tensor], tuple[Tensor, ...]], example: Tensor, warmup: int = 3) -> None:
        with CAPTURE_LOCK:  # no other thread's CUDA work between the warm-up and the end of the capture
            self._capture(fn, example, warmup)

    def _capture(self, fn: Callable[[Tensor], tuple[Tensor, ...]], example: Tensor, warmup: int) -> None:
        self.static_in = example.clone()
        stream = torch.cuda.Stream(example.device)
        stream.wait_stream(torch.cuda.current_stream(example.device))
        with torch.cuda.stream(stream):
            for _ in range(warmup):
                fn(self.static_in)
        torch.cuda.current_stream(example.device).wait_stream(stream)
        torch.cuda.synchronize(example.device)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.static_out = fn(self.static_in)

    def __call__(self, images: Tensor) -> tuple[Tensor, ...]:
        self.static_in.copy_(images, non_blocking=True)
        self.graph.replay()
        return self.static_out


class CompiledBackend:
    """``run(images (B,3,H,W) normalised float) -> DenseOutputs`` through ``torch.compile``.

    The network is compiled in two parts: backbone + FPN, and head + update + flattening of one level
    (one specialisation per level). On CUDA the levels can run on parallel streams (``level_streams``):
    the four small levels are latency-bound chains of ~100 tiny kernels each, which otherwise run one
    after the other behind the big stride-8 level. The recursive update uses the ``gather`` sampler
    (:mod:`das_core.model.update`), ~40 % faster than ``grid_sample`` once compiled.

    Args:
        model: a ``DAS``; moved to ``device`` and eval mode (the caller's object is modified).
        cfg: its config (``depth_factor``).
        device: ``cuda[:i]`` (CUDA graphs) or ``cpu`` (compiled, no graphs; needs a C++ compiler).
        precision: ``fp32`` | ``fp16`` | ``bf16`` (autocast).
        channels_last: NHWC model and input (recommended on GPUs with tensor cores).
        mode: ``torch.compile`` mode without CUDA graphs: ``default`` or ``max-autotune-no-cudagraphs``.
        cuda_graphs: capture one CUDA graph per bucket (CUDA only).
        level_streams: run levels 1… on their own CUDA streams, concurrently with level 0.
        frame_graphs: let the :class:`~das_core.engine.estimator.Estimator` capture whole frames (upload,
            preprocessing, network, decoding) in one graph per frame size (:mod:`das_core.engine.frame_graph`).
        persistent_cache: keep Inductor's caches and one cache-artefact bundle per input shape under the das
            cache folder (:mod:`das_core.engine.compile_cache`), so that a restarted process (also after a
            wiped ``/tmp``) loads instead of rebuilding; the log says whether each shape was a hit or why not.
        cache_dir: the das cache folder (default ``$DAS_CACHE_DIR`` / ``$XDG_CACHE_HOME/das`` / ``~/.cache/das``).
        freezing: Inductor's ``freezing``: the weights become constants of the compiled graphs, which lets
            Inductor fold each BatchNorm into its convolution (one memory pass less per backbone conv).
            Experimental (measured by ``engine_suite.py --compile-freezing``); the compile cache key then
            includes the weights' fingerprint, since they are inside the compiled code.
        dynamo_cache: also keep Dynamo's traced graphs (torch's "caching precompile",
            :func:`~das_core.engine.compile_cache.enable_dynamo_cache`), so that a restart installs them instead
            of tracing the model again. Needs ``persistent_cache``; process-wide once on. Experimental: opt-in
            until measured on a GPU (``benchmarks/restart.py --dynamo-cache``).
        cast_weights: reduced precision as weights (and input) converted to fp16 / bf16 instead of autocast, the
            form ``export_aoti`` packages: autocast casts every weight on every frame and runs GroupNorm in fp32.
            Default (``None``): on for fp16 / bf16 — on the H200 3.80–4.02 ms p50 against 4.32 ms with autocast,
            joints 0.35 mm from eager fp32 (docs/PERFORMANCE.md); ``False`` keeps autocast.
    """

    name = "compile"

    def __init__(
        self,
        model: nn.Module,
        cfg: ModelConfig,
        device: torch.device | str = "auto",
        precision: str = "fp16",
        *,
        channels_last: bool = True,
        mode: str = "default",
        cuda_graphs: bool = True,
        level_streams: bool = True,
        frame_graphs: bool = True,
        persistent_cache: bool = True,
        cache_dir: str | Path | None = None,
        freezing: bool = False,
        dynamo_cache: bool = False,
        cast_weights: bool | None = None,
    ) -> None:
        self.precision = check_precision(precision, self.name)
        if cast_weights is None:
            cast_weights = autocast_dtype(precision) is not None
        if cast_weights and autocast_dtype(precision) is None:
            raise BackendError(f"backend 'compile': cast_weights converts the weights to fp16 or bf16; precision "
                               f"is {precision!r}")
        if dynamo_cache and not persistent_cache:
            raise BackendError("backend 'compile': dynamo_cache needs persistent_cache (the traced graphs are kept "
                               "in the das cache folder)")
        if mode in ("reduce-overhead", "max-autotune"):
            raise BackendError(f"backend 'compile': mode {mode!r} adds Inductor's own CUDA graphs; this backend "
                               "captures its own — use 'default' or 'max-autotune-no-cudagraphs'")
        if mode not in ("default", "max-autotune-no-cudagraphs"):
            raise BackendError(f"backend 'compile': unknown mode {mode!r}")
        if not (hasattr(model, "forward_pyramid") and hasattr(model, "forward_level")):
            raise BackendError("backend 'compile': needs a DAS model (forward_pyramid / forward_level)")
        self.device = resolve_device(device)
        if precision == "fp16" and self.device.type == "cpu":
            raise BackendError("backend 'compile' on cpu: use fp32 or bf16 (fp16 autocast is a GPU feature)")
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(self.device).eval().to(memory_format=self.memory_format)  # type: ignore[call-overload]
        update = getattr(model, "update", None)
        if update is not None:
            update.sampler = "gather"
        self._input_dtype: torch.dtype | None = None
        if cast_weights:
            self._input_dtype = autocast_dtype(precision)
            model = model.to(self._input_dtype)
        self.model, self.depth_factor = model, float(cfg.depth_factor)
        self._autocast = None if cast_weights else autocast_dtype(precision)
        self.cast_weights = bool(cast_weights)
        self.mode = mode
        self.num_levels = len(cfg.strides)
        self.compile_cache: CompileCache | None = None
        if persistent_cache:
            # Before the first torch.compile call: Inductor reads its cache folder when it first compiles.
            self.compile_cache = CompileCache(
                self.device, self.precision, cfg.name, dump_config(cfg), root=cache_dir,
                options={"mode": mode, "channels_last": bool(channels_last), "level_streams": bool(level_streams),
                         "sampler": "gather", "freezing": bool(freezing), "dynamo_cache": bool(dynamo_cache),
                         **({"cast_weights": True} if cast_weights else {}),
                         **({"weights": model_fingerprint(model)} if freezing else {})})
        _allow_specialisations(4 * self.num_levels * 8)
        # dynamic=False: every input-size bucket (and level) is specialised, as CUDA graphs need.
        compile_args: dict[str, object] = {"mode": mode}
        if freezing:  # torch.compile takes a mode or options, not both: the mode's options plus freezing
            from torch._inductor import list_mode_options

            compile_args = {"options": {**list_mode_options(mode), "freezing": True}}
        self.freezing = bool(freezing)
        # Before torch.compile: that call is where a saved trace is looked up and installed.
        self.dynamo_cache = bool(dynamo_cache) and enable_dynamo_cache()
        hits_before = dynamo_cache_counts()["hit"] if self.dynamo_cache else 0
        self._trunk = torch.compile(self._trunk_fn, dynamic=False, fullgraph=False, **compile_args)  # type: ignore[call-overload]
        self._level = torch.compile(self._level_fn, dynamic=False, fullgraph=False, **compile_args)  # type: ignore[call-overload]
        if self.dynamo_cache:
            assert self.compile_cache is not None
            hits = dynamo_cache_counts()["hit"] - hits_before
            log.info("compile: Dynamo cache %s (%d of 2 traced functions installed from %s)",
                     "hit" if hits == 2 else "miss", hits, self.compile_cache.inductor_dir / "dynamo")
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.frame_graphs = frame_graphs and self.cuda_graphs
        self.compile_frame = True  # frame graphs compile preprocessing and decoding too
        self.level_streams = level_streams and self.device.type == "cuda"
        self._streams = [torch.cuda.Stream(self.device) for _ in range(self.num_levels - 1)] if self.level_streams else []
        self._runners: dict[tuple[int, ...], CudaGraphRunner] = {}
        self._warm = False
        self.graph_error: str | None = None

    def _autocast_ctx(self) -> contextlib.AbstractContextManager[object]:
        if self._autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast)

    def _trunk_fn(self, images: Tensor) -> list[Tensor]:
        if self._input_dtype is not None:
            images = images.to(self._input_dtype)
        with self._autocast_ctx():
            return self.model.forward_pyramid(images)  # type: ignore[operator,no-any-return]

    def _level_fn(self, x: Tensor, level: int) -> DenseOutputs:
        with self._autocast_ctx():
            maps = self.model.forward_level(x, level)[:5]  # type: ignore[operator]
            scores, depth, offsets, sigma = level_to_dense(*maps, depth_factor=self.depth_factor)
        # _make: compiled code must not call a NamedTuple's generated __new__ (compile_cache.enable_dynamo_cache)
        return DenseOutputs._make((scores.float(), depth.float(), offsets.float(), sigma.float()))

    def capturable(self, images: Tensor) -> DenseOutputs:
        """The compiled network without graph replay: no host sync, fixed shapes, so callers may capture it."""
        with torch.no_grad():
            if self.compile_cache is not None:
                self.compile_cache.open(tuple(images.shape))  # once per shape: hit (load) or miss (log why)
            check = None
            if not self._warm:
                # The model checks its pyramid sizes once, at its first forward. Traced, that check's attribute
                # write would invalidate the compiled trunk (a second trace); an eager pass to run it costs a
                # whole fp32 forward at start-up. So: mark it done, and run the same check on the compiled
                # trunk's first output below.
                check = getattr(self.model, "_check_sizes", None)
                if check is not None:
                    setattr(self.model, "_sizes_checked", True)  # noqa: B010 - a plain attribute, not a submodule
                self._warm = True
            pyramid = self._trunk(images)
            if check is not None:
                check((int(images.shape[-2]), int(images.shape[-1])), pyramid)
            if not self._streams:
                return concat_levels([self._level(x, i) for i, x in enumerate(pyramid)])
            main = torch.cuda.current_stream(self.device)
            outs = []
            for stream in self._streams:
                stream.wait_stream(main)
            outs.append(self._level(pyramid[0], 0))
            for i, (x, stream) in enumerate(zip(pyramid[1:], self._streams, strict=True), start=1):
                with torch.cuda.stream(stream):
                    outs.append(self._level(x, i))
            for stream in self._streams:
                main.wait_stream(stream)
            return concat_levels(outs)

    def prepare(self, shape: tuple[int, int, int, int]) -> float:
        """Compile (and capture) the bucket for ``shape`` now; returns the seconds it took."""
        t0 = time.perf_counter()
        x = torch.zeros(shape, device=self.device).contiguous(memory_format=self.memory_format)
        if self.cuda_graphs:
            self._runner(x)
        else:
            self.capturable(x)
            self.save_compile_cache()
        dt = time.perf_counter() - t0
        log.info("compiled: bucket %s ready in %.1f s (%s, %s)", tuple(shape), dt, self.mode, self.precision)
        return dt

    def _runner(self, images: Tensor) -> CudaGraphRunner:
        key = tuple(images.shape)
        runner = self._runners.get(key)
        if runner is None:
            example = images.detach().contiguous(memory_format=self.memory_format)
            runner = CudaGraphRunner(self.capturable, example)
            self._runners[key] = runner
            self.save_compile_cache()
        return runner

    def save_compile_cache(self) -> None:
        """Write the cache-artefact bundle of every input shape that was built (not loaded) in this process.

        Called after a bucket's warm-up, and by the Estimator after it built a frame graph (whose compiled
        preprocessing and decoding belong in the bundle too). Never fatal: a full disk costs the next start
        a rebuild, not this one its frames.
        """
        if self.compile_cache is None:
            return
        try:
            self.compile_cache.save()
        except (OSError, RuntimeError) as exc:
            log.warning("compile cache: could not save (%s: %s); the next start rebuilds", type(exc).__name__, exc)

    def run(self, images: Tensor) -> DenseOutputs:
        images = images.to(self.device, non_blocking=True)
        if self.cuda_graphs:
            try:
                runner = self._runner(images)
            except RuntimeError as exc:
                # Same backend, same compiled kernels, only without graph replay: said loudly, kept in
                # ``graph_error`` (the benchmark reports it), never a switch to another backend.
                log.warning("compile: CUDA graph capture failed (%s); running the compiled model without "
                            "CUDA graphs", exc)
                self.graph_error, self.cuda_graphs, self.frame_graphs = str(exc), False, False
            else:
                return DenseOutputs(*runner(images))
        out = self.capturable(images.contiguous(memory_format=self.memory_format))
        if self.compile_cache is not None and not self.compile_cache.slots[tuple(images.shape)].saved:
            self.save_compile_cache()  # no graphs: the first call compiled everything for this shape
        return out


def _allow_specialisations(n: int) -> None:
    """Let Dynamo keep ``n`` specialisations of one function (levels × input sizes) before it gives up.

    Dynamo's default limit (8) would silently send the 9th (level, size) pair to eager PyTorch.
    """
    import torch._dynamo.config as dynamo_config

    for key in ("recompile_limit", "cache_size_limit"):
        if hasattr(dynamo_config, key) and getattr(dynamo_config, key) < n:
            setattr(dynamo_config, key, n)
            log.debug("compile: torch._dynamo.config.%s raised to %d", key, n)
            return
