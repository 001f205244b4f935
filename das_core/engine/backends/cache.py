"""On-disk cache for compiled artefacts (AOTInductor packages, TensorRT engines, ONNX files).

A compiled artefact is only valid for the exact combination it was built for: the framework that built it
(torch / TensorRT / onnxruntime version), the GPU (name and compute capability; "cpu" on the host), the
precision, the input shape and the model itself (weights + config). Each *slot* (backend, model name,
precision, shape) is one folder under the cache root holding ``key.json`` and the artefact. When the stored
key differs from the wanted one, the folder is emptied and the artefact rebuilt, and the log says which key
fields changed (``torch 2.12.0 → 2.13.0``), so a silent reuse of a stale engine cannot happen.

Layout::

    <root>/<backend>/<model>-<precision>-b<B>x<H>x<W>/key.json
                                                     /<artefact files>

The root is ``$DAS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/das``, else ``~/.cache/das``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "ArtifactCache",
    "CacheEntry",
    "default_cache_dir",
    "device_fingerprint",
    "model_fingerprint",
]

log = logging.getLogger(__name__)

KEY_FILE = "key.json"


def default_cache_dir() -> Path:
    """``$DAS_CACHE_DIR``, else ``$XDG_CACHE_HOME/das``, else ``~/.cache/das``."""
    env = os.environ.get("DAS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "das"


def device_fingerprint(device: torch.device | str) -> dict[str, str]:
    """GPU model and compute capability (``sm_90``), or the CPU architecture for ``cpu``."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        return {
            "device": torch.cuda.get_device_name(index),
            "compute_capability": f"sm_{major}{minor}",
            "cuda": str(torch.version.cuda),
        }
    return {"device": f"cpu-{platform.machine()}", "compute_capability": "none", "cuda": "none"}


def model_fingerprint(model: nn.Module, extra: str = "") -> str:
    """SHA-256 (first 16 hex digits) over every parameter and buffer (name, dtype, shape, bytes) + ``extra``.

    ``extra`` should be the YAML dump of the model config, so that a config change that keeps the weights'
    shapes (e.g. ``update.num_points`` of a parameter-free op) still changes the key.
    """
    h = hashlib.sha256(extra.encode("utf-8"))
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        # uint8 view: bf16 has no numpy dtype, and the raw bytes are what matters
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class CacheEntry:
    """One slot folder. ``valid`` is True when ``key.json`` matched and the artefact can be reused."""

    path: Path
    key: dict[str, Any]
    valid: bool

    def artefact(self, name: str) -> Path:
        return self.path / name

    def commit(self) -> None:
        """Write ``key.json`` last, after the artefact, so a crash mid-build never leaves a 'valid' slot."""
        tmp = self.path / (KEY_FILE + ".tmp")
        tmp.write_text(json.dumps(self.key, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path / KEY_FILE)


class ArtifactCache:
    """Find or (re)create the slot for one compiled artefact.

    Args:
        root: cache root (default :func:`default_cache_dir`).
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()

    @staticmethod
    def slot_name(model: str, precision: str, shape: tuple[int, ...]) -> str:
        return f"{model}-{precision}-b" + "x".join(str(int(s)) for s in (shape[0], *shape[2:]))

    def stored_key(self, backend: str, *, model: str, precision: str, shape: tuple[int, ...]) -> dict[str, Any] | None:
        """The key the slot's artefact was built with, or None (no slot, or an unreadable key)."""
        key_path = self.root / backend / self.slot_name(model, precision, shape) / KEY_FILE
        try:
            stored = json.loads(key_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return stored if isinstance(stored, dict) else None

    def entry(
        self,
        backend: str,
        *,
        model: str,
        precision: str,
        shape: tuple[int, ...],
        key: dict[str, Any],
        artefact: str,
    ) -> CacheEntry:
        """Return the slot for ``(backend, model, precision, shape)``.

        ``key`` holds everything else the artefact depends on (framework versions, device, model
        fingerprint, options); ``backend``, ``model``, ``precision`` and ``shape`` are added to it.
        If the slot holds a different key or no ``artefact`` file, it is emptied (with a log line
        naming the changed fields) and returned with ``valid=False``: the caller builds the artefact
        into ``entry.artefact(artefact)`` and then calls ``entry.commit()``.
        """
        full = {"backend": backend, "model": model, "precision": precision, "shape": [int(s) for s in shape], **key}
        full = json.loads(json.dumps(full, sort_keys=True))  # normalise tuples → lists for comparison
        path = self.root / backend / self.slot_name(model, precision, shape)
        key_path = path / KEY_FILE
        if key_path.is_file() and (path / artefact).exists():
            stored = self.stored_key(backend, model=model, precision=precision, shape=shape)
            if stored == full:
                log.info("%s: reusing cached %s (%s)", backend, path / artefact, _short(full))
                return CacheEntry(path, full, True)
            if isinstance(stored, dict):
                changed = ", ".join(
                    f"{k} {stored.get(k)!r} → {full.get(k)!r}"
                    for k in sorted(set(stored) | set(full))
                    if stored.get(k) != full.get(k)
                )
                log.warning("%s: cache key changed (%s); rebuilding %s", backend, changed, path)
            else:
                log.warning("%s: unreadable %s; rebuilding", backend, key_path)
        elif path.exists():
            log.info("%s: incomplete cache slot %s; building", backend, path)
        else:
            log.info("%s: no cached artefact for %s; building (this can take minutes)", backend, _short(full))
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        return CacheEntry(path, full, False)


def _short(key: dict[str, Any]) -> str:
    fields = ("model", "precision", "shape", "device")
    return ", ".join(f"{f}={key.get(f)}" for f in fields if f in key)
