"""A compile cache that survives restarts and reboots: Inductor's and Triton's caches under the das cache folder,
plus one ``torch.compiler`` cache-artefact bundle per (model, precision, input shape) slot.

Why: ``torch.compile`` keeps its caches (FX graphs, AOTAutograd graphs, Triton kernels) in
``/tmp/torchinductor_<user>`` by default. A robot's perception stack restarts often, and a reboot clears
``/tmp``: every restart then pays the full build (two minutes for ``das_r50_fpn`` fp16 on an H200), and even a
warm ``/tmp`` leaves a restart at 25 s. Here:

* :func:`activate` points ``TORCHINDUCTOR_CACHE_DIR`` (and ``TRITON_CACHE_DIR``) at
  ``<das cache>/compile/inductor/torch-<version>-<device>/`` before anything is compiled, so the caches
  survive a wiped ``/tmp``; one folder per torch version and device, so an upgrade starts a fresh folder
  instead of filling an old one (Inductor's own keys include the torch version anyway). A cache folder the
  user chose (``TORCHINDUCTOR_CACHE_DIR`` set before das touched it) is kept and said so.
* :class:`CompileCache` keeps, per slot ``<das cache>/compile/<model>-<precision>-b<B>x<H>x<W>/``, the bytes of
  :func:`torch.compiler.save_cache_artifacts` written after the slot's first warm-up, with a ``key.json``
  (torch version, device name and compute capability, precision, shape, the model config's hash, the
  compile options). At start-up the bundle is loaded into the caches before compiling
  (:func:`torch.compiler.load_cache_artifacts`), and the log says whether the slot was hit or rebuilt and
  why ("no entry for this key", "cache key changed (torch '2.11.0' → '2.13.0')", …) — the wording of
  :class:`~das_core.engine.backends.cache.ArtifactCache`, which this reuses.

The weights are not part of the key: ``torch.compile`` (without Inductor's ``freezing``) treats parameters as
graph inputs, so a new checkpoint of the same config reuses the compiled kernels.

With every kernel a cache hit, a restart still re-traces the Python model with Dynamo (15 s of a 30 s restart of
``das_r50_fpn`` on an H200). :func:`enable_dynamo_cache` (opt-in: ``CompiledBackend(dynamo_cache=True)``) turns
on torch's Dynamo cache ("caching precompile"): the traced graphs and their guards are saved with the bundle
into ``<Inductor cache>/dynamo/`` and a later process installs them when it calls ``torch.compile``, without
tracing. Three torch limitations (torch 2.13) shape the code around it:

* compiled code must not construct a ``NamedTuple`` with its class call: Dynamo traces the generated
  ``__new__``, whose globals are an anonymous dict, and guards on it under a process-specific name, so the
  saved entry never matches in another process. das builds them with ``_make`` in everything it compiles;
* Dynamo numbers the globals it installs (``__builtins_dict___0``, …) from 0 in every process, and an
  installed entry brings the names of the process that saved it: the first fresh trace of the same module
  (a new input size) then fails with ``AssertionError: Name '__builtins_dict___0' already exists in scope``.
  :func:`enable_dynamo_cache` therefore starts this process's numbering at its start time in microseconds,
  which no earlier process's names reach;
* saved guards never match a call under ``torch.inference_mode()``, so the ``Estimator`` runs such a backend
  under ``torch.no_grad()`` (``Estimator._no_autograd``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from das_core.engine.backends.cache import ArtifactCache, CacheEntry, default_cache_dir, device_fingerprint

__all__ = ["ARTEFACT", "CompileCache", "activate", "dynamo_cache_counts", "enable_dynamo_cache", "inductor_cache_dir",
           "slug"]

log = logging.getLogger(__name__)

ARTEFACT = "cache_artifacts.bin"
BACKEND = "compile"


def slug(text: str) -> str:
    """A folder-name-safe version of ``text`` (``NVIDIA H200`` → ``NVIDIA-H200``)."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "x"


def inductor_cache_dir(device: torch.device | str, root: str | Path | None = None) -> Path:
    """``<root>/compile/inductor/torch-<version>-<device name>``; ``root`` defaults to the das cache folder."""
    base = Path(root).expanduser() if root is not None else default_cache_dir()
    fp = device_fingerprint(device)
    name = f"torch-{torch.__version__}-{fp['device']}" + (f"-{fp['compute_capability']}" if fp["compute_capability"] != "none" else "")
    return base / BACKEND / "inductor" / slug(name)


_HAS_ARTEFACT_API = hasattr(torch.compiler, "save_cache_artifacts") and hasattr(torch.compiler, "load_cache_artifacts")
_ACTIVE: Path | None = None  # the folder this process's Inductor cache was pointed at by activate()


def activate(device: torch.device | str, root: str | Path | None = None) -> Path:
    """Point Inductor's (and Triton's) on-disk caches at the das cache folder for ``device``; returns the folder.

    Process-wide and idempotent. ``TORCHINDUCTOR_CACHE_DIR`` set by the user before (to anything but
    Inductor's own ``/tmp`` default, which Inductor itself writes into the variable on first use) wins.
    """
    global _ACTIVE
    wanted = inductor_cache_dir(device, root)
    current = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if _ACTIVE is not None and current == str(_ACTIVE):
        if _ACTIVE != wanted:
            log.info("compile cache: Inductor cache stays %s for this process (asked for %s)", _ACTIVE, wanted)
        return _ACTIVE
    if current and os.path.abspath(current) != os.path.abspath(_inductor_default_dir()):
        log.info("compile cache: keeping TORCHINDUCTOR_CACHE_DIR=%s (set by the user)", current)
        _ACTIVE = Path(current)
        return _ACTIVE
    wanted.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(wanted)
    if "TRITON_CACHE_DIR" not in os.environ:
        os.environ["TRITON_CACHE_DIR"] = str(wanted / "triton")
    _clear_inductor_memo()
    _move_precompiled_headers(wanted)
    # Explicit, in case a site config turned them off: these are what a restart reads back.
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = True
    functorch_config.enable_autograd_cache = True
    if hasattr(inductor_config, "bundle_triton_into_fx_graph_cache"):
        inductor_config.bundle_triton_into_fx_graph_cache = True
    log.info("compile cache: Inductor/Triton caches in %s (survive a wiped /tmp)", wanted)
    _ACTIVE = wanted
    return wanted


def enable_dynamo_cache() -> bool:
    """Turn on torch's Dynamo cache for this process (module docstring); False when this torch lacks it.

    Process-wide and idempotent; call it before the ``torch.compile`` calls it should serve, with the Inductor
    cache folder already chosen (:func:`activate`): the entries live in ``<that folder>/dynamo/``.
    """
    import itertools

    import torch._dynamo.bytecode_transformation as bytecode
    import torch._dynamo.config as dynamo_config

    if not hasattr(dynamo_config, "caching_precompile") or not hasattr(bytecode, "_unique_id_counter"):
        log.warning("compile cache: this torch (%s) has no Dynamo cache (torch._dynamo.config.caching_precompile); "
                    "a restart traces the model again", torch.__version__)
        return False
    if not dynamo_config.caching_precompile:
        # Names of installed globals: from this process's start time on, past every saved entry's (docstring).
        bytecode._unique_id_counter = itertools.count(time.time_ns() // 1000)
        dynamo_config.caching_precompile = True
        log.info("compile cache: Dynamo cache on (traced graphs saved and reloaded, not traced again on restart)")
    return True


def dynamo_cache_counts() -> dict[str, int]:
    """This process's Dynamo-cache lookups so far: ``{"hit": n, "miss": n, "error": n}`` (one per compiled function)."""
    from torch._dynamo.utils import counters

    c = counters["dynamo_cache"]
    return {k: int(c.get(f"dynamo_cache_{k}", 0)) for k in ("hit", "miss", "error")}


def _inductor_default_dir() -> str:
    """Inductor's own default cache folder (``$TMPDIR/torchinductor_<user>``)."""
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir as inductor_default
    except ImportError:  # pragma: no cover - older torch: the same rule, spelled out
        import getpass
        import tempfile

        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown_user"
        return os.path.join(tempfile.gettempdir(), "torchinductor_" + re.sub(r'[\\/:*?"<>|]', "_", user))
    return inductor_default()


def _move_precompiled_headers(folder: Path) -> None:
    """Inductor's C++ backend keeps its precompiled header (~150 MB, ~10 s to rebuild on 2 cores) in the *default*
    temp folder whatever ``TORCHINDUCTOR_CACHE_DIR`` says (a module constant, torch 2.13); move it along, so a
    CPU restart after a wiped /tmp is as fast as any other. Private API: skipped when it is not there."""
    try:
        from torch._inductor import codecache
    except ImportError:  # pragma: no cover
        return
    if hasattr(codecache, "_HEADER_DIR") and hasattr(codecache, "_HEADER_LOCK_DIR"):
        codecache._HEADER_DIR = str(folder / "precompiled_headers")
        codecache._HEADER_LOCK_DIR = str(folder / "precompiled_headers" / "locks")


def _clear_inductor_memo() -> None:
    """Forget cache paths Inductor may have memoised before the folder changed (private API: best effort)."""
    try:
        from torch._inductor.utils import clear_caches
    except ImportError:  # pragma: no cover - other torch versions
        return
    clear_caches()


@dataclass
class _Slot:
    entry: CacheEntry
    saved: bool = False
    loaded: dict[str, int] = field(default_factory=dict)


class CompileCache:
    """Per-slot ``torch.compiler`` cache-artefact bundles (see the module docstring).

    Args:
        device: the device compiled for (its name and compute capability are part of the key).
        precision: ``fp32`` | ``fp16`` | ``bf16``.
        model: the model config's name (the slot folder's prefix).
        config_text: the model config dumped to text (its hash is in the key: another graph, another slot key).
        options: compile options that change the generated code (mode, channels_last, …), in the key.
        root: the das cache folder (default ``$DAS_CACHE_DIR`` / ``$XDG_CACHE_HOME/das`` / ``~/.cache/das``).
    """

    def __init__(self, device: torch.device | str, precision: str, model: str, config_text: str,
                 options: dict[str, Any] | None = None, root: str | Path | None = None) -> None:
        self.device = torch.device(device)
        self.precision, self.model = precision, model
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.cache = ArtifactCache(self.root)
        self.config_hash = hashlib.sha256(config_text.encode("utf-8")).hexdigest()[:16]
        self.options = dict(options or {})
        self.inductor_dir = activate(self.device, self.root)
        self.slots: dict[tuple[int, ...], _Slot] = {}

    def key(self) -> dict[str, Any]:
        return {"torch": torch.__version__, **device_fingerprint(self.device), "config_hash": self.config_hash,
                "options": self.options}

    def open(self, shape: tuple[int, ...]) -> _Slot:
        """Before compiling ``shape``: find its slot and load its bundle (hit), or prepare to write one (miss).

        Logs one line either way: ``compile cache hit …`` or ``compile cache miss … : <why>; building``.
        """
        shape = tuple(int(s) for s in shape)
        slot = self.slots.get(shape)
        if slot is not None:
            return slot
        entry = self.cache.entry(BACKEND, model=self.model, precision=self.precision, shape=shape, key=self.key(),
                                 artefact=ARTEFACT)
        slot = _Slot(entry)
        self.slots[shape] = slot
        name = entry.path.name
        if entry.valid and not _HAS_ARTEFACT_API:
            slot.saved = True  # nothing to load: the Inductor cache folder alone serves the restart
            log.info("compile cache hit for %s (Inductor cache folder only: this torch has no "
                     "torch.compiler.load_cache_artifacts)", name)
        elif entry.valid:
            t0 = time.perf_counter()
            try:
                info = torch.compiler.load_cache_artifacts(entry.artefact(ARTEFACT).read_bytes())
            except Exception as exc:  # a truncated / foreign bundle: rebuild, said loudly
                log.warning("compile cache miss for %s: bundle unreadable (%s: %s); rebuilding", name,
                            type(exc).__name__, exc)
                slot.entry = CacheEntry(entry.path, entry.key, False)
                return slot
            slot.loaded = _counts(info)
            slot.saved = True
            log.info("compile cache hit for %s: loaded %s in %.2f s", name,
                     ", ".join(f"{v} {k}" for k, v in slot.loaded.items()) or "an empty bundle",
                     time.perf_counter() - t0)
        else:
            log.info("compile cache miss for %s; building (the first build takes minutes on a GPU, later "
                     "starts load it from %s)", name, entry.path)
        return slot

    @property
    def hit(self) -> bool | None:
        """Whether every slot opened so far was a hit (None before any)."""
        if not self.slots:
            return None
        return all(s.entry.valid for s in self.slots.values())

    def save(self) -> list[Path]:
        """After warm-up: write this process's cache artefacts into every slot that was a miss; returns them.

        The bundle holds everything compiled in this process so far (network, and the frame graph's
        preprocessing and decoding when the Estimator calls this after building it), so it is written again
        on a later call while a slot is still fresh in this process.
        """
        pending = [s for s in self.slots.values() if not s.entry.valid]
        if not pending:
            return []
        t0 = time.perf_counter()
        if not _HAS_ARTEFACT_API:  # torch < 2.7: an empty bundle marks the slot; the Inductor folder holds all
            out: Any = (b"", None)
        else:
            out = torch.compiler.save_cache_artifacts()
        if out is None:
            log.warning("compile cache: torch.compiler.save_cache_artifacts() returned nothing; restarts rely on "
                        "the Inductor cache folder %s alone", self.inductor_dir)
            return []
        data, info = out
        written = []
        for slot in pending:
            path = slot.entry.artefact(ARTEFACT)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
            slot.entry.commit()  # key.json last: a crash mid-write never leaves a "valid" slot
            slot.saved = True
            written.append(path)
        log.info("compile cache: saved %s (%.1f MB: %s) in %.2f s", ", ".join(p.parent.name for p in written),
                 len(data) / 1e6, ", ".join(f"{v} {k}" for k, v in _counts(info).items()), time.perf_counter() - t0)
        return written


def _counts(info: Any) -> dict[str, int]:
    """``CacheInfo`` → {artefact kind: count} (``inductor``, ``aot_autograd``, ``autotune``, …)."""
    artifacts = getattr(info, "artifacts", None)
    if not isinstance(artifacts, dict):
        return {}
    return {str(k): len(v) for k, v in sorted(artifacts.items()) if v}
