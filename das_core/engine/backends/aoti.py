"""AOTInductor backend: a ``.pt2`` package compiled ahead of time, loaded in seconds.

``das export … --format aoti`` (or the first run of this backend) builds the package with
``torch.export`` + ``torch._inductor.aoti_compile_and_package``; later starts only
``aoti_load_package`` it, so a robot's node is ready in seconds instead of recompiling for minutes.
Packages are cached per (torch version, GPU model / compute capability, precision, input shape, model
fingerprint, C++ compiler) — see :mod:`das_core.engine.backends.cache`. On CUDA the loaded package can be
replayed through a CUDA graph (one launch per frame) with ``cuda_graphs=True``; that is off by default (torch 2.11's
package call cannot be captured), so a frame costs the package's kernel launches (16–20 ms for ``das_r50_fpn`` on an
H200, docs/PERFORMANCE.md).

A package is verified against the eager fp32 model once per package file: the first process that loads it from
the cache runs the eager comparison and writes ``verified.json`` beside it (the file's SHA-256 and size, the
tolerances, the max |Δ| per output); a later process only hashes the file and compares (``reverify=True`` verifies
on every load).

Like the compiled backend, CUDA results are static buffers overwritten by the next ``run``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from das_core.atomic_file import atomic_write_text
from das_core.config import ModelConfig, dump_config
from das_core.engine.backends.base import BackendError, check_precision, resolve_device
from das_core.engine.backends.cache import ArtifactCache, device_fingerprint, model_fingerprint
from das_core.engine.backends.compiled import CudaGraphRunner
from das_core.file_digest import file_sha256
from das_core.model.outputs import DenseOutputs

__all__ = ["AOTIBackend", "load_package"]

log = logging.getLogger(__name__)

PACKAGE = "model.pt2"
RECORD = "verified.json"  # beside a cached package: the verification it passed (AOTIBackend._verify_cached)


def cpp_compiler() -> str | None:
    """The C++ compiler Inductor builds packages with (``CXX``, else ``g++``; torch's own search), as an absolute
    path, or None when there is none. It is part of a package's cache key: on the H200 machine packages built by
    its ``CXX=/opt/gcc/bin/g++`` wrapper crash torch's loader and ones built by ``/usr/bin/g++`` load, so a user who
    switches ``CXX`` after such a crash must get a new package, not the cached one."""
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        name = get_cpp_compiler()
    except Exception:  # noqa: BLE001 - a private torch API; it raises InvalidCxxCompiler when none is found
        return None
    return shutil.which(name) or name


class _DropCpuIsaMismatch(logging.Filter):
    """Drops torch's "Device information mismatch for AOTI_CPU_ISA" record, which a skipped probe always causes."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (str(record.msg).startswith("Device information mismatch") and args[:1] == ("AOTI_CPU_ISA",))


def load_package(path: str | Path, device_type: str = "cpu"):  # noqa: ANN201 - torch's loader type is private
    """``aoti_load_package`` with a clear error for a missing / foreign package.

    ``device_type`` is the device the package was built for. For a CUDA package the loader's CPU-ISA probe is
    skipped: ``aoti_load_package`` calls ``get_device_information``, whose ``pick_vec_isa`` builds a small C++
    program per x86 ISA (AVX2, AVX-512 and its bf16 / VNNI forms, AMX and AMX-fp16) and then starts a fresh
    Python that imports torch to load each one, only to compare the answer with the package's metadata and log
    a mismatch (torch 2.11–2.13). On the H200 machine those subprocesses were 49 s of a 56 s load of a
    one-Linear package (cProfile and stack dumps: docs/results/issue14_h200_2026-12-04d_aoti_load_profile.json);
    a CUDA package's kernels never use the CPU ISA. So for the load Inductor's own switch ``cpp.vec_isa_ok`` is
    False (True would still build the AVX-512 / AMX sub-probes), unless the user set it
    (``TORCHINDUCTOR_VEC_ISA_OK``), and the one mismatch record that causes is dropped. Inductor caches the
    answer for the process: a later *CPU* Inductor build in the same process would generate scalar code. CPU
    packages keep the probe.
    """
    import torch._inductor

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: AOTInductor package not found")
    skip_probe = device_type == "cuda" and torch._inductor.config.cpp.vec_isa_ok is None
    torch_log = logging.getLogger("torch.export.pt2_archive._package")
    quiet = _DropCpuIsaMismatch()
    if skip_probe:
        torch_log.addFilter(quiet)
    try:
        with torch._inductor.config.patch({"cpp.vec_isa_ok": False} if skip_probe else {}):
            return torch._inductor.aoti_load_package(str(path))
    except Exception as exc:  # torch raises RuntimeError / AssertionError variants here
        raise BackendError(f"{path}: cannot load AOTInductor package with torch {torch.__version__} "
                           f"(built by another torch / for another device?): {exc}") from exc
    finally:
        torch_log.removeFilter(quiet)


class AOTIBackend:
    """``run(images (B,3,H,W)) -> DenseOutputs`` through an AOTInductor package.

    Args:
        model: a ``DAS`` (only needed when a package has to be built; may be None with ``package``).
        cfg: its config.
        device: ``cuda[:i]`` or ``cpu`` (CPU packages need a C++ compiler at build time).
        precision: ``fp32`` | ``fp16`` | ``bf16`` (weights converted; see :func:`das_core.engine.export.export_aoti`).
        cache_dir: cache root. ``package``: load this ``.pt2`` directly (no cache, no building); it must
            have been built for the same shape, device and precision.
        persistent_inductor_cache: point Inductor's on-disk cache at the das cache folder before building or
            loading (:func:`das_core.engine.compile_cache.activate`, as the compile backend does). Why: even a
            load runs Inductor's CPU-ISA probes (``aoti_load_package`` → ``get_device_information`` →
            ``pick_vec_isa``, small C++ builds cached in Inductor's cache, ``/tmp`` by default); after a wiped
            ``/tmp`` they took 9 s of a 14 s restart on 2 cores (docs/results/restart_cpu_tiny_aoti.json).
            None (default): on CPU only; a CUDA package's load skips those probes (:func:`load_package`). The
            H200 segfaults once blamed on this cache were the machine's C++ compiler: packages built with its
            ``CXX=/opt/gcc/bin/g++`` wrapper crash torch's loader, ones built with ``/usr/bin/g++`` load
            (docs/PERFORMANCE.md, "AOTInductor on the H200").
        verify: refuse a package whose outputs differ from the eager fp32 model's beyond the precision's tolerance
            (needs ``model``). A cached package is verified once per package file (its ``verified.json`` record);
            a ``package`` path is verified on every load.
        reverify: verify against eager fp32 on every load, even when the package's verification record matches.
        cuda_graphs: try to replay through a CUDA graph on CUDA. Off by default: with torch 2.11 the
            package's call does work that is not permitted while a stream is capturing, so the capture
            fails (and is then dropped, the package reloaded, and the call run without a graph).
    """

    name = "aoti"

    def __init__(
        self,
        model: nn.Module | None,
        cfg: ModelConfig,
        device: torch.device | str = "auto",
        precision: str = "fp16",
        *,
        cache_dir: str | Path | None = None,
        package: str | Path | None = None,
        channels_last: bool = True,
        cuda_graphs: bool = False,
        max_autotune: bool = False,
        verify: bool = True,
        reverify: bool = False,
        persistent_inductor_cache: bool | None = None,
    ) -> None:
        import torch._inductor

        if not hasattr(torch._inductor, "aoti_compile_and_package"):
            raise BackendError(f"backend 'aoti' needs torch >= 2.6 (AOTInductor packaging); found {torch.__version__}")
        if model is None and package is None:
            raise BackendError("backend 'aoti': give a model (to build) or a package path")
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.name)
        self.model, self.cfg = model, cfg
        self.channels_last = channels_last  # the weights' layout inside the package
        # The package's input is NCHW-contiguous (das_core.engine.export.export_aoti says why).
        self.memory_format = torch.contiguous_format
        self.cache = ArtifactCache(cache_dir)
        self.package = Path(package) if package is not None else None
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.max_autotune = max_autotune
        self._loaded: dict[tuple[int, ...], object] = {}
        self._runners: dict[tuple[int, ...], CudaGraphRunner] = {}
        self._fingerprint: str | None = None
        self.build_seconds = 0.0
        self.load_seconds = 0.0
        self.verify_seconds = 0.0
        self.package_paths: dict[tuple[int, ...], Path] = {}  # per shape, the package loaded (or being verified)
        self.graph_error: str | None = None
        self.verify = verify and model is not None
        self.reverify = reverify
        self.persistent_inductor_cache = (self.device.type == "cpu" if persistent_inductor_cache is None
                                          else persistent_inductor_cache)

    def package_for(self, shape: tuple[int, ...]) -> Path:
        """The cached package for ``shape``, built now if missing or stale."""
        if self.package is not None:
            return self.package
        from das_core.engine.export import export_aoti

        assert self.model is not None
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model, dump_config(self.cfg))
        key = {
            "torch": torch.__version__,
            **device_fingerprint(self.device),
            "channels_last": self.channels_last,
            "max_autotune": self.max_autotune,
            "reduced_precision": "weights",  # packages of autocast exports (disagreeing) are rebuilt
            "input_layout": "nchw",  # packages compiled for a channels-last input (the 92 mm ones) are rebuilt
            "model_fingerprint": self._fingerprint,
            "cxx": self._compiler_for(shape),
        }
        entry = self.cache.entry("aoti", model=self.cfg.name, precision=self.precision, shape=shape, key=key,
                                 artefact=PACKAGE)
        path = entry.artefact(PACKAGE)
        if not entry.valid:
            log.info("aoti: building with the C++ compiler %s (Inductor uses $CXX, else g++)", key["cxx"])
            t0 = time.perf_counter()
            export_aoti(copy.deepcopy(self.model), self.cfg, path, tuple(shape),  # type: ignore[arg-type]
                        device=self.device, precision=self.precision, channels_last=self.channels_last,
                        max_autotune=self.max_autotune)
            self.build_seconds += time.perf_counter() - t0
            entry.commit()
        return path

    def _compiler_for(self, shape: tuple[int, ...]) -> str | None:
        """This machine's compiler; where it has none, the one the cached package was built with, so that a
        machine that cannot build keeps loading what it has."""
        found = cpp_compiler()
        if found is not None:
            return found
        stored = self.cache.stored_key("aoti", model=self.cfg.name, precision=self.precision, shape=shape) or {}
        return stored.get("cxx")

    def _fn(self, shape: tuple[int, ...]) -> object:
        fn = self._loaded.get(shape)
        if fn is None:
            if self.persistent_inductor_cache:
                from das_core.engine.compile_cache import activate

                activate(self.device, self.cache.root)  # process-wide and idempotent
            path = self.package_for(shape)
            self.package_paths[shape] = path
            t0 = time.perf_counter()
            fn = load_package(path, self.device.type)
            self.load_seconds += time.perf_counter() - t0
            log.info("aoti: loaded %s in %.2f s", path, time.perf_counter() - t0)
            if self.verify:
                t0 = time.perf_counter()
                try:
                    self._verify_cached(fn, shape, path)
                finally:  # the hash counts: a restart pays it, a first load the eager forward (benchmarks/restart.py)
                    self.verify_seconds += time.perf_counter() - t0
            self._loaded[shape] = fn
        return fn

    def _verify_cached(self, fn: object, shape: tuple[int, ...], path: Path) -> None:
        """:meth:`_verify`, skipped for a cached package whose record says these very bytes passed already.

        Why: the eager fp32 forward of a deep copy was 1.5 s of an 11.7 s restart on the H200 (issue 14 wants
        ≤ 10 s; docs/results/issue14_h200_2026-12-04e_restart_r50_aoti_no_probe.json); hashing its 77 MB package
        costs a fraction of that. A ``package`` path is the user's file, not a slot this backend owns, so it gets
        no record and is verified on every load.
        """
        if self.package is not None:
            self._verify(fn, shape, path)
            return
        identity = _file_identity(path)
        record = None if self.reverify else _matching_record(path, identity, self.precision)
        if record is not None:
            log.info("aoti: package %s was verified against eager fp32 when first loaded (max |Δ| %s, %s); its "
                     "SHA-256 matches, so it is not verified again (reverify=True would)",
                     path, record.get("max_abs"), record.get("verified_at"))
            return
        try:
            max_abs = self._verify(fn, shape, path)
        except BackendError:
            with contextlib.suppress(OSError):  # a pass recorded before (reverify) must not outlive this refusal
                path.with_name(RECORD).unlink(missing_ok=True)
            raise
        _write_record(path, identity, self.precision, max_abs)

    def _verify(self, fn: object, shape: tuple[int, ...], path: Path) -> dict[str, float]:
        """Refuse a package whose outputs differ from the eager fp32 model beyond the precision's tolerance;
        return the max |Δ| per output.

        Why: on torch 2.11 / H100 a das_r50_fpn fp16 package gave offsets 0.8 strides (people 92 mm) away
        from eager, while eager fp16 and ``compile`` fp16 stay within 0.004 strides (0.3 mm).
        """
        from das_core.engine.backends.eager import EagerBackend
        from das_core.engine.export import AGREEMENT, compare_dense

        assert self.model is not None
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=gen).to(self.device)
        reference = EagerBackend(copy.deepcopy(self.model).float(), self.cfg, device=self.device).run(x)
        with torch.no_grad():
            got = self._call(fn, x.contiguous(memory_format=self.memory_format))
        cmp = compare_dense(got, reference, AGREEMENT[self.precision]["dense"])
        if not cmp.ok:
            raise BackendError(
                f"backend 'aoti': package {path} disagrees with the eager fp32 model beyond the {self.precision} "
                f"tolerance (max |Δ| {', '.join(f'{k} {v:.3g}' for k, v in cmp.max_abs.items())}); this "
                f"AOTInductor build does not reproduce the network. Use backend 'compile' (same kernels, "
                f"verified), or verify=False to run the package anyway"
            )
        log.info("aoti: package verified against eager fp32 (max |Δ| %s)", cmp.max_abs)
        return cmp.max_abs

    def prepare(self, shape: tuple[int, int, int, int]) -> None:
        x = torch.zeros(shape, device=self.device).contiguous(memory_format=self.memory_format)
        self.run(x)

    def _call(self, fn: object, images: Tensor) -> tuple[Tensor, ...]:
        if images.dim() == 4 and not images.is_contiguous(memory_format=self.memory_format):
            # An AOTInductor package reads its input with the strides it was compiled for and checks nothing:
            # fed the other layout it returns wrong numbers, not an error (scripts/gpu/aoti_repro.py measures
            # it: a bf16 channels-last package fed NCHW was 2 strides off on the CPU).
            raise BackendError(f"backend 'aoti': input strides {tuple(images.stride())} are not the "
                               "NCHW-contiguous layout the package was compiled for")
        out = fn(images)  # type: ignore[operator]
        return tuple(out)

    def run(self, images: Tensor) -> DenseOutputs:
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        shape = tuple(images.shape)
        fn = self._fn(shape)
        if not self.cuda_graphs:
            with torch.no_grad():
                return DenseOutputs(*self._call(fn, images))
        runner = self._runners.get(shape)
        if runner is None:
            try:
                with torch.no_grad():
                    runner = CudaGraphRunner(lambda x: self._call(fn, x), images)
            except RuntimeError as exc:
                # Same package, only without graph replay: logged and kept in ``graph_error``. The loaded
                # package is dropped and loaded again: a failed capture can leave its runtime state (e.g.
                # constants folded during the capture attempt) corrupted.
                log.warning("aoti: CUDA graph capture failed (%s); running the package without CUDA graphs", exc)
                self.graph_error, self.cuda_graphs = str(exc), False
                self._loaded.pop(shape, None)
                fn = self._fn(shape)
                with torch.no_grad():
                    return DenseOutputs(*self._call(fn, images))
            self._runners[shape] = runner
        return DenseOutputs(*runner(images))


def _file_identity(path: Path) -> dict[str, Any]:
    """The SHA-256 and size of the bytes in ``path`` now."""
    return {"sha256": file_sha256(path), "size": path.stat().st_size}


def _tolerances(precision: str) -> dict[str, Any]:
    from das_core.engine.export import AGREEMENT

    return json.loads(json.dumps(AGREEMENT[precision]["dense"]))  # tuples → lists, as a record holds them


def _matching_record(package: Path, identity: dict[str, Any], precision: str) -> dict[str, Any] | None:
    """The package's record if it vouches for these bytes under today's tolerances and torch, else None.

    Tolerances and torch are compared too: a pass under looser tolerances or another torch's eager kernels
    says nothing about this one.
    """
    record_path = package.with_name(RECORD)
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        record = None
    wanted = {**identity, "tolerance": precision, "tolerances": _tolerances(precision), "torch": torch.__version__}
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in wanted.items()):
        log.info("aoti: %s is unreadable or does not match the package on disk; verifying it again", record_path)
        return None
    return record


def _write_record(package: Path, identity: dict[str, Any], precision: str, max_abs: dict[str, float]) -> None:
    """Record a passed verification; a cache that cannot be written only means the next load verifies again."""
    record = {**identity, "package": package.name, "tolerance": precision, "tolerances": _tolerances(precision),
              "max_abs": max_abs, "torch": torch.__version__,
              "verified_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        atomic_write_text(package.with_name(RECORD), json.dumps(record, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        log.warning("aoti: cannot write %s (%s); the next load verifies the package again", package.with_name(RECORD),
                    exc)
