"""Checkpoints: ``NAME.safetensors`` (weights) + ``NAME.yaml`` (the model config and a record of how the
weights were made: recipe command, data, metrics). Never unpickles anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from das_core.atomic_file import atomic_write
from das_core.config import ConfigError, ModelConfig, config_from_dict, config_to_dict

__all__ = ["Checkpoint", "CheckpointError", "amend_checkpoint", "load_checkpoint", "save_checkpoint", "checkpoint_paths"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, truncated, corrupt or does not match its config."""


@dataclass
class Checkpoint:
    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    record: dict[str, Any] = field(default_factory=dict)


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``foo``, ``foo.yaml`` or ``foo.safetensors`` → (``foo.safetensors``, ``foo.yaml``)."""
    p = Path(path)
    if p.suffix in (".safetensors", ".yaml", ".yml"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".yaml")


def save_checkpoint(path: str | Path, state_dict: dict[str, torch.Tensor], config: ModelConfig,
                    record: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write weights + YAML atomically (temporary file, then rename). Returns both paths."""
    st_path, yaml_path = checkpoint_paths(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    atomic_write(st_path, lambda tmp: save_file(tensors, tmp, metadata={"format": "pt", "das": "1"}))
    doc = {"model": config_to_dict(config), "record": record or {}}
    atomic_write(yaml_path, lambda tmp: Path(tmp).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8"))
    return st_path, yaml_path


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Read ``NAME.safetensors`` + ``NAME.yaml``; every failure names the file and the problem."""
    st_path, yaml_path = checkpoint_paths(path)
    for p in (st_path, yaml_path):
        if not p.is_file():
            raise CheckpointError(f"{p}: checkpoint file not found (a checkpoint is NAME.safetensors + NAME.yaml)")
    try:
        doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError, OSError) as exc:
        raise CheckpointError(f"{yaml_path}: not a valid checkpoint YAML: {exc}") from None
    if not isinstance(doc, dict) or "model" not in doc:
        raise CheckpointError(f"{yaml_path}: checkpoint YAML needs a top-level 'model' mapping")
    try:
        config = config_from_dict(ModelConfig, doc["model"])
    except ConfigError as exc:
        raise CheckpointError(f"{yaml_path}: model config invalid: {exc}") from None
    try:
        state = load_file(str(st_path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{st_path}: corrupt or truncated safetensors file: {exc}") from None
    record = doc.get("record") or {}
    if not isinstance(record, dict):
        raise CheckpointError(f"{yaml_path}: 'record' must be a mapping")
    return Checkpoint(config=config, state_dict=state, record=record)


def amend_checkpoint(path: str | Path, model: dict[str, dict[str, Any]] | None = None,
                     record: dict[str, Any] | None = None) -> Path:
    """Change a checkpoint's YAML in place, weights untouched: ``model`` maps a config section to the keys to
    set in it (``{"decode": {"score_thr": 0.2}}``), ``record`` entries are set in the record. The amended
    model config is validated before anything is written; other keys and their order are kept."""
    _, yaml_path = checkpoint_paths(path)
    doc = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    for section, values in (model or {}).items():
        doc["model"].setdefault(section, {}).update(values)
    doc.setdefault("record", {}).update(record or {})
    try:
        config_from_dict(ModelConfig, doc["model"])
    except ConfigError as exc:
        raise CheckpointError(f"{yaml_path}: the amended model config is invalid: {exc}") from None
    # width 110: the width the shipped YAML was written with, so only the changed keys show in a diff
    text = yaml.safe_dump(doc, sort_keys=False, width=110, allow_unicode=True)
    atomic_write(yaml_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return yaml_path
