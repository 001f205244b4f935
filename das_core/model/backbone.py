"""The backbone protocol, norm layers and pretrained-weight loading shared by every backbone.

Every backbone (ResNet in ``resnet.py``, MSPN in ``mspn.py``) is a :class:`Backbone`:

* ``forward(x (B, 3, H, W)) -> list[Tensor]``: the C2..C5 maps at strides 4, 8, 16, 32, ordered
  high → low resolution;
* ``feature_info: list[FeatureInfo]``: one ``(channels, stride)`` per returned map, written by the
  backbone while it builds its stages (as timm does), so the FPN and ``DAS`` read strides from this
  record instead of having them typed a second time (DAS_SPEC §4.3).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = [
    "Backbone",
    "FeatureInfo",
    "FrozenBatchNorm2d",
    "LoadReport",
    "PretrainedLoadError",
    "check_feature_info",
    "load_pretrained_backbone",
    "make_norm",
]

logger = logging.getLogger(__name__)


class FeatureInfo(NamedTuple):
    """One backbone output: its channel count and its stride in input pixels."""

    channels: int
    stride: int


def check_feature_info(info: list[FeatureInfo]) -> None:
    """Channels must be positive and strides strictly increasing (high → low resolution)."""
    if not info:
        raise ValueError("feature_info is empty")
    for i, f in enumerate(info):
        if f.channels <= 0 or f.stride <= 0:
            raise ValueError(f"feature_info[{i}] = {f}: channels and stride must be > 0")
        if i and f.stride <= info[i - 1].stride:
            raise ValueError(f"feature_info strides must increase, got {[x.stride for x in info]}")


class Backbone(nn.Module):
    """Base class: subclasses set ``self.feature_info`` in ``__init__`` and implement ``forward``.

    ``forward(x: (B, 3, H, W)) -> list[Tensor]`` returns one (B, C_i, ⌈H/S_i⌉, ⌈W/S_i⌉) map per
    ``feature_info`` entry, in the same order (strides 4, 8, 16, 32 for every backbone in this repo).
    """

    feature_info: list[FeatureInfo]

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - interface
        raise NotImplementedError


class FrozenBatchNorm2d(nn.Module):
    """BatchNorm with fixed statistics and affine parameters (buffers, never trained).

    Buffer names equal ``nn.BatchNorm2d``'s (``weight``, ``bias``, ``running_mean``, ``running_var``) so
    ImageNet weights load unchanged; ``num_batches_tracked`` is accepted and ignored.
    """

    weight: Tensor
    bias: Tensor
    running_mean: Tensor
    running_var: Tensor

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):  # type: ignore[no-untyped-def]
        state_dict.pop(prefix + "num_batches_tracked", None)  # BN checkpoints carry it; we have no use for it
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def forward(self, x: Tensor) -> Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1).to(x.dtype) + shift.reshape(1, -1, 1, 1).to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}"


def make_norm(kind: str, channels: int) -> nn.Module:
    """``bn`` → BatchNorm2d, ``syncbn`` → SyncBatchNorm (needs an initialised process group to train),
    ``frozen_bn`` → :class:`FrozenBatchNorm2d`. Config key: ``backbone.norm`` / ``fpn.norm``."""
    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "syncbn":
        return nn.SyncBatchNorm(channels)
    if kind == "frozen_bn":
        return FrozenBatchNorm2d(channels)
    raise ValueError(f"norm: unknown kind {kind!r}; expected 'bn', 'syncbn' or 'frozen_bn'")


# ----------------------------------------------------------------------------------------------
# Pretrained weights
# ----------------------------------------------------------------------------------------------

# Wrappers that training frameworks put around the weights, outermost first.
_CONTAINER_KEYS = ("state_dict", "model", "module", "params")
# Prefixes stripped from every key (DDP, MMPose/MMDet detectors, timm feature wrappers).
_PREFIXES = ("module.", "backbone.", "model.", "encoder.", "body.")
# Classifier heads of ImageNet checkpoints: never part of a feature backbone.
_IGNORED_PREFIXES = ("fc.", "head.", "classifier.")


class PretrainedLoadError(RuntimeError):
    """A pretrained-weights file cannot be read or does not fit the backbone; the message names the file."""


@dataclass
class LoadReport:
    """What :func:`load_pretrained_backbone` did. Keys are in the backbone's own naming."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def summary(self) -> str:
        def head(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f", … (+{len(keys) - 8})" if len(keys) > 8 else "")

        lines = [f"{self.path}: loaded {len(self.loaded)} tensors"]
        if self.missing:
            lines.append(f"  missing (kept at init) {len(self.missing)}: {head(self.missing)}")
        if self.unexpected:
            lines.append(f"  unexpected (not used) {len(self.unexpected)}: {head(self.unexpected)}")
        if self.ignored:
            lines.append(f"  ignored classifier keys: {len(self.ignored)}")
        return "\n".join(lines)


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    # One safe reader for foreign weight files (also used by MSPN and the official-checkpoint converter).
    from das_core.official.pth import CheckpointFileError, read_torch_file

    if not path.is_file():
        raise PretrainedLoadError(f"{path}: pretrained weights file not found (weights are never downloaded)")
    try:
        obj = read_torch_file(path)
    except CheckpointFileError as exc:
        raise PretrainedLoadError(f"{exc}; convert it to a plain state dict or .safetensors") from None
    # Unwrap {"state_dict": {...}} / {"model": {...}} containers, possibly nested.
    for _ in range(3):
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in _CONTAINER_KEYS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping):
        raise PretrainedLoadError(f"{path}: expected a state dict (mapping of name → tensor), got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if isinstance(v, Tensor)}


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if key.startswith(p):
                key, changed = key[len(p) :], True
    return key


def load_pretrained_backbone(model: nn.Module, path: str | Path, strict: bool = False) -> LoadReport:
    """Copy ImageNet / MMPose weights from a local file into ``model`` (a backbone) in place.

    Reads ``.pth`` / ``.pt`` / ``.bin`` (``torch.load(weights_only=True)``, ``state_dict``/``model``
    wrappers unwrapped) or ``.safetensors``. Strips ``module.``, ``backbone.``, ``model.`` … prefixes,
    ignores classifier keys (``fc.*``), copies every tensor whose name and shape match. Shape mismatches
    are errors; missing / unexpected keys are logged (and raise with ``strict=True``). Raises
    :class:`PretrainedLoadError` when not a single tensor matches (wrong file for this backbone).
    """
    path = Path(path)
    raw = _read_state_dict(path)
    own = model.state_dict()
    report = LoadReport(path=str(path))
    to_load: dict[str, Tensor] = {}
    for key, value in raw.items():
        name = _strip(key)
        if name.startswith(_IGNORED_PREFIXES):
            report.ignored.append(name)
            continue
        if name not in own:
            if not name.endswith("num_batches_tracked"):
                report.unexpected.append(name)
            continue
        if tuple(own[name].shape) != tuple(value.shape):
            raise PretrainedLoadError(
                f"{path}: tensor {key!r} has shape {tuple(value.shape)}, the backbone's {name!r} has "
                f"{tuple(own[name].shape)}"
            )
        to_load[name] = value.to(own[name].dtype)
    report.loaded = sorted(to_load)
    report.missing = sorted(k for k in own if k not in to_load and not k.endswith("num_batches_tracked"))
    if not to_load:
        raise PretrainedLoadError(
            f"{path}: no tensor matches the backbone {type(model).__name__} (file keys start with "
            f"{sorted(raw)[:3]}, backbone keys with {sorted(own)[:3]})"
        )
    if strict and (report.missing or report.unexpected):
        raise PretrainedLoadError(report.summary())
    model.load_state_dict(to_load, strict=False)
    (logger.warning if report.missing or report.unexpected else logger.info)("%s", report.summary())
    return report
