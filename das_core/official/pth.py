"""Read PyTorch checkpoint files without executing code from them.

``.pth`` files are read with ``torch.load(weights_only=True)``: only tensors and plain containers
(dict, list, tuple, str, numbers) are accepted, so a hostile pickle cannot run code. mmcv-runner files
(``{"meta", "state_dict", "optimizer"}``) and MMPose checkpoints are of that kind. ``.safetensors`` is
read with safetensors.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["CheckpointFileError", "read_state_dict", "read_torch_file"]

log = logging.getLogger(__name__)


class CheckpointFileError(ValueError):
    """The file cannot be read safely or does not hold a state dict; the message names the file."""


def _describe(head: bytes) -> str:
    """What a file that is not a torch container is, from its first bytes (for the error message)."""
    if not head:
        return "an empty file"
    if head[:2] == b"\x1f\x8b":
        return "a gzip file (unpack it first)"
    if len(head) > 9 and head[8:10] == b'{"':
        return "a safetensors file (name it .safetensors)"
    text = _utf8_prefix(head)
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        first = text.strip().splitlines()[0][:60] if text.strip() else ""
        return f"a text file (starts {first!r})"
    return f"binary data starting with {head[:8].hex(' ')}"


def _utf8_prefix(data: bytes) -> str:
    """``data`` as UTF-8, allowing one multi-byte character cut off by the sample's end; "" if not UTF-8."""
    for cut in range(4):
        try:
            return data[: len(data) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return ""


def _check_torch_container(path: Path) -> None:
    """Refuse a file that is neither of ``torch.save``'s containers before any unpickler sees it.

    ``torch.save`` writes a zip archive (since 1.6), or a pickle (``_use_new_zipfile_serialization=False``;
    protocol ≥ 2 starts with the PROTO opcode), or — before 0.4 — a tar archive. Anything else fed to
    ``torch.load`` fails inside the unpickler with a message about the pickle (a text file starting with
    ``c`` reads as a GLOBAL opcode: "objects other than tensors"), which sends the user the wrong way.
    """
    try:
        with path.open("rb") as f:
            head = f.read(512)
    except OSError as exc:
        raise CheckpointFileError(f"{path}: cannot read: {exc}") from None
    zip_archive = head[:4] == b"PK\x03\x04"
    pickled = len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5
    tar_archive = head[257:262] == b"ustar"
    if not (zip_archive or pickled or tar_archive):
        raise CheckpointFileError(
            f"{path}: not a PyTorch checkpoint: neither a zip archive nor a pickle (what torch.save writes); "
            f"it is {_describe(head)}"
        )


def read_torch_file(path: str | Path, trust_pickle: bool = False) -> Any:
    """``torch.load`` on CPU with ``weights_only=True`` (or the full unpickler when ``trust_pickle``,
    for a file you made yourself). Errors name the file and say why."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return dict(load_file(str(path), device="cpu"))
        except Exception as exc:  # safetensors raises its own error types
            raise CheckpointFileError(f"{path}: not a readable safetensors file: {exc}") from None
    _check_torch_container(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        raise CheckpointFileError(
            f"{path}: refused to unpickle: the file holds objects other than tensors and plain containers "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}). Only if you made this file "
            "yourself, pass --trust-pickle."
        ) from None
    except Exception as exc:  # torch.load raises many types (RuntimeError, EOFError, IndexError …) on junk
        raise CheckpointFileError(
            f"{path}: not a PyTorch checkpoint (or truncated): {type(exc).__name__}: {exc}"
        ) from None


def read_state_dict(path: str | Path, trust_pickle: bool = False) -> dict[str, Tensor]:
    """The name → tensor mapping inside a checkpoint file.

    Takes ``obj["state_dict"]`` when present (mmcv / MMPose / Lightning), else the object itself; strips a
    leading ``module.`` (DDP). Raises :class:`CheckpointFileError` when the result is not a mapping of
    string keys to tensors.
    """
    obj = read_torch_file(path, trust_pickle)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise CheckpointFileError(f"{path}: expected a state dict (name → tensor), got a {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        shown = ", ".join(repr(k) for k in bad[:5])
        raise CheckpointFileError(
            f"{path}: not a state dict: {len(bad)} entries are not name → tensor (e.g. {shown}); top-level keys: "
            f"{sorted(map(str, obj))[:8]}"
        )
    out: dict[str, Tensor] = {}
    for k, v in obj.items():
        out[k[len("module."):] if k.startswith("module.") else k] = v
    return out
