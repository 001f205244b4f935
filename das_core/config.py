"""One YAML schema for models and training runs, validated into frozen dataclasses.

Every default lives here and nowhere else. ``load_config`` / ``load_train_config`` turn a YAML file
(or a plain dict) into these dataclasses; an unknown key, a wrong type or an out-of-range value is a
:class:`ConfigError` whose message names the dotted key (``model.head.stacked_convs``) and the file.

Units: lengths in metres, image coordinates in pixels, ``depth_factor`` multiplies ``Z / f``
(metres per pixel) to give the regression target, ``z_norm`` is in metres (DAS_SPEC §2.2: the
official Panoptic setting, 20 × Z[cm]/f with z_norm 50 cm, is depth_factor 2000 and z_norm 0.5 here).
"""

from __future__ import annotations

import dataclasses
import math
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

__all__ = [
    "AugmentConfig",
    "BackboneConfig",
    "ConfigError",
    "DataConfig",
    "DecodeConfig",
    "FPNConfig",
    "HeadConfig",
    "InputConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "TargetConfig",
    "TrainConfig",
    "UncertaintyConfig",
    "UpdateConfig",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "load_config",
    "load_train_config",
]

CONFIG_VERSION = 1
_FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A configuration file or dict does not match the schema. The message names the key."""


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackboneConfig:
    """Feature extractor. ResNets report strides 4, 8, 16, 32 (C2..C5); MSPN reports 256 ch at the same."""

    name: Literal["resnet18", "resnet34", "resnet50", "mspn"] = "resnet50"
    mspn_stages: int = 2
    # ResNet stages built (4 = C2..C5; 3 stops at C4, for small models). Not used by MSPN.
    num_stages: int = 4
    # Number of leading stages whose parameters are frozen: 0 none, 1 stem + layer1 (DAS_SPEC §4.1b).
    frozen_stages: int = 1
    norm: Literal["bn", "syncbn", "frozen_bn"] = "bn"
    # Local file with ImageNet / MMPose weights (torchvision / timm / MMPose names); never downloaded.
    pretrained: str | None = None

    def __post_init__(self) -> None:
        _check(self.mspn_stages >= 1, "backbone.mspn_stages", "must be >= 1")
        _check(0 <= self.frozen_stages <= 5, "backbone.frozen_stages", "must be in 0..5")


@dataclass(frozen=True)
class FPNConfig:
    """Feature pyramid. ``start_level`` indexes the backbone outputs (0 = stride 4, 1 = stride 8)."""

    out_channels: int = 256
    start_level: int = 1
    num_outs: int = 5
    # Where the extra stride-2 convs read from: the last FPN output ("output") or the last backbone map.
    extra_convs_on: Literal["input", "output"] = "output"
    relu_before_extra_convs: bool = True
    norm: Literal["none", "bn", "syncbn"] = "none"

    def __post_init__(self) -> None:
        _check(self.out_channels > 0, "fpn.out_channels", "must be > 0")
        _check(0 <= self.start_level <= 3, "fpn.start_level", "must be in 0..3")
        _check(self.num_outs >= 1, "fpn.num_outs", "must be >= 1")


@dataclass(frozen=True)
class HeadConfig:
    """Shared DAS head (DAS_SPEC §4.4)."""

    feat_channels: int = 256
    stacked_convs: int = 2
    # Modulated deformable conv (DCNv2) on the last conv of each tower.
    use_dcn: bool = False
    num_groups: int = 32
    centerness_channels: int = 64

    def __post_init__(self) -> None:
        _check(self.feat_channels > 0, "head.feat_channels", "must be > 0")
        _check(self.stacked_convs >= 1, "head.stacked_convs", "must be >= 1")
        _check(
            self.feat_channels % self.num_groups == 0,
            "head.num_groups",
            f"must divide head.feat_channels ({self.feat_channels})",
        )
        _check(
            self.centerness_channels % self.num_groups == 0,
            "head.centerness_channels",
            f"must be a multiple of head.num_groups ({self.num_groups})",
        )


@dataclass(frozen=True)
class UpdateConfig:
    """Recursive + multi-source update (DAS_SPEC §4.5). ``mode`` is the Table 1b ablation switch."""

    mode: Literal["none", "single", "multi"] = "multi"
    num_layers: int = 1
    num_points: int = 4
    # Residual feature refinement conv: DCNv2 (official) or a plain 3x3 conv.
    use_dcn: bool = False

    def __post_init__(self) -> None:
        _check(self.num_layers >= 1, "update.num_layers", "must be >= 1")
        _check(self.num_points >= 1, "update.num_points", "must be >= 1")


@dataclass(frozen=True)
class TargetConfig:
    """Target assignment (DAS_SPEC §5). One (lo, hi) range in network-input pixels per level."""

    regress_ranges: tuple[tuple[float, float], ...] = (
        (-1.0, 48.0),
        (48.0, 96.0),
        (96.0, 192.0),
        (192.0, 384.0),
        (384.0, 1e8),
    )
    center_sample_radius: float = 1.5
    centerness_alpha: float = 2.5

    def __post_init__(self) -> None:
        for i, (lo, hi) in enumerate(self.regress_ranges):
            _check(lo < hi, f"targets.regress_ranges[{i}]", "needs lo < hi")
        _check(self.center_sample_radius > 0, "targets.center_sample_radius", "must be > 0")


@dataclass(frozen=True)
class LossConfig:
    """Loss terms and weights (DAS_SPEC §6). ``pose_loss: l1`` reproduces the Table 1 baselines."""

    pose_loss: Literal["rle", "l1"] = "rle"
    prev_loss: bool = True
    cls_weight: float = 1.0
    centerness_weight: float = 1.0
    depth_weight: float = 1.0
    pose_weight: float = 2.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    depth_beta: float = 1.0 / 9.0


@dataclass(frozen=True)
class DecodeConfig:
    """Decoding (DAS_SPEC §7)."""

    score_thr: float = 0.07
    nms_pre: int = 1000
    nms_thr: float = 0.9
    nms_post: int = 100
    oks_sigma: float = 0.08
    # Piecewise-linear map (raw, calibrated) from ``1 − mean σ`` to the probability that the joint is right
    # (fitted on a validation split by training/confidence_calibration.py --fit; () keeps the raw value).
    confidence_calibration: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        _check(0.0 <= self.score_thr < 1.0, "decode.score_thr", "must be in [0, 1)")
        knots = self.confidence_calibration
        if knots:
            ok = len(knots) >= 2 and all(len(k) == 2 and 0.0 <= k[0] <= 1.0 and 0.0 <= k[1] <= 1.0 for k in knots)
            ok = ok and all(a[0] < b[0] and a[1] <= b[1] for a, b in zip(knots[:-1], knots[1:], strict=False))
            _check(ok, "decode.confidence_calibration",
                   "needs >= 2 (raw, calibrated) pairs in [0, 1], raw strictly and calibrated weakly increasing")
        _check(self.nms_pre >= 1, "decode.nms_pre", "must be >= 1")
        _check(0.0 < self.nms_thr <= 1.0, "decode.nms_thr", "must be in (0, 1]")
        _check(self.nms_post >= 1, "decode.nms_post", "must be >= 1")
        _check(self.oks_sigma > 0, "decode.oks_sigma", "must be > 0")


@dataclass(frozen=True)
class UncertaintyConfig:
    """How decoding turns the predicted sigma into a metric 3×3 covariance (``Persons.joint_covariance``).

    The head's sigma is the scale of the RLE residual (DAS_SPEC §6.4), read as one standard deviation:
    u, v in stride units, d in ``z_norm`` units. The root depth is a plain regression (Smooth-L1, no
    sigma), so its standard deviation is modelled as ``root_depth_rel · Z_root``. The three numbers are
    fitted per checkpoint on a validation split by ``training/calibrate_uncertainty.py``; the defaults
    (1, 1, 0.15) are the uncalibrated reading.
    """

    offset_scale: float = 1.0
    depth_scale: float = 1.0
    root_depth_rel: float = 0.15

    def __post_init__(self) -> None:
        _check(self.offset_scale > 0, "uncertainty.offset_scale", "must be > 0")
        _check(self.depth_scale > 0, "uncertainty.depth_scale", "must be > 0")
        _check(self.root_depth_rel > 0, "uncertainty.root_depth_rel", "must be > 0 (a fraction of the depth)")


@dataclass(frozen=True)
class InputConfig:
    """Test-time keep-ratio resize (mmdet range semantics: scale = min(long/L, short/S)), normalisation."""

    short_side: int = 640
    long_side: int = 1333
    size_divisor: int = 32
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)  # RGB, 0..255
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    def __post_init__(self) -> None:
        _check(self.short_side > 0, "input.short_side", "must be > 0")
        _check(self.long_side >= self.short_side, "input.long_side", "must be >= input.short_side")
        _check(self.size_divisor > 0, "input.size_divisor", "must be > 0")
        _check(all(s > 0 for s in self.std), "input.std", "must be > 0")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build, train and decode one DAS model."""

    version: int = CONFIG_VERSION
    name: str = "das_r50_fpn"
    skeleton: str = "panoptic15"
    # Declared head strides; checked against the real feature maps when the model is built.
    strides: tuple[int, ...] = (8, 16, 32, 64, 128)
    depth_factor: float = 2000.0
    z_norm: float = 0.5
    # "official" reproduces the released checkpoint's behaviour where it differs (DAS_SPEC §11).
    compat: Literal["native", "official"] = "native"
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    fpn: FPNConfig = field(default_factory=FPNConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)
    targets: TargetConfig = field(default_factory=TargetConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    uncertainty: UncertaintyConfig = field(default_factory=UncertaintyConfig)
    input: InputConfig = field(default_factory=InputConfig)

    def __post_init__(self) -> None:
        _check(self.version == CONFIG_VERSION, "version", f"unsupported config version (expected {CONFIG_VERSION})")
        _check(self.depth_factor > 0, "depth_factor", "must be > 0")
        _check(self.z_norm > 0, "z_norm", "must be > 0 (metres)")
        _check(len(self.strides) == self.fpn.num_outs, "strides", f"needs one stride per FPN output ({self.fpn.num_outs})")
        _check(
            len(self.targets.regress_ranges) == len(self.strides),
            "targets.regress_ranges",
            f"needs one range per level ({len(self.strides)})",
        )
        _check(list(self.strides) == sorted(self.strides), "strides", "must increase")
        from das_core.skeletons import SKELETONS  # local import: skeletons has no config dependency

        _check(self.skeleton in SKELETONS, "skeleton", f"unknown skeleton; choose from {sorted(SKELETONS)}")


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation (DAS_SPEC §3). Scales are keep-ratio (long, short-range) targets."""

    long_side: int = 1333
    short_side_range: tuple[int, int] = (512, 640)
    flip_prob: float = 0.5
    photometric: bool = True
    contrast_range: tuple[float, float] = (0.7, 1.3)
    saturation_range: tuple[float, float] = (0.7, 1.3)
    hue_delta: float = 18.0
    affine_prob: float = 1.0
    rot_range: float = 0.0  # radians, symmetric
    scale_range: tuple[float, float] = (0.6, 1.4)
    trans_std: float = 0.15
    min_persons: int = 1  # DAS_SPEC §3.5 quirk 14: the official code uses 2
    official_depth_aug_bug: bool = False  # DAS_SPEC §11.13
    # Random-convolution texture augmentation (das_core/training/randconv.py), in the training step on the device:
    # the share of images filtered, and the kernel sizes one is drawn from per batch. 0 = off (the paper's recipe).
    randconv_prob: float = 0.0
    randconv_kernel_sizes: tuple[int, ...] = (1, 3, 5, 7)

    def __post_init__(self) -> None:
        _check(0.0 <= self.flip_prob <= 1.0, "augment.flip_prob", "must be in [0, 1]")
        _check(self.short_side_range[0] <= self.short_side_range[1], "augment.short_side_range", "needs lo <= hi")
        _check(0 < self.scale_range[0] <= self.scale_range[1], "augment.scale_range", "needs 0 < lo <= hi")
        _check(self.min_persons >= 0, "augment.min_persons", "must be >= 0")
        _check(0.0 <= self.randconv_prob <= 1.0, "augment.randconv_prob", "must be in [0, 1]")
        _check(len(self.randconv_kernel_sizes) > 0 and all(k >= 1 and k % 2 == 1 for k in self.randconv_kernel_sizes),
               "augment.randconv_kernel_sizes", "needs at least one odd size >= 1 (the filter keeps the image size)")


@dataclass(frozen=True)
class DataConfig:
    """Annotation files in the das format (docs/DATA_FORMAT.md); paths relative to the YAML file."""

    train: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    num_workers: int = 2
    batch_size: int = 8
    aspect_grouping: bool = True


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.002
    momentum: float = 0.9
    weight_decay: float = 1e-4
    bias_lr_mult: float = 2.0
    bias_decay_mult: float = 0.0
    norm_decay_mult: float = 0.0  # norm weights/biases; the official mmcv setting is 1.0
    grad_clip: float = 35.0
    warmup_iters: int = 250
    warmup_ratio: float = 1.0 / 3.0
    schedule: Literal["step", "cosine"] = "step"
    step_milestones: tuple[float, ...] = (16 / 22, 20 / 22)  # fractions of max_iters
    step_gamma: float = 0.1

    def __post_init__(self) -> None:
        _check(self.lr > 0, "optim.lr", "must be > 0")
        _check(self.grad_clip >= 0, "optim.grad_clip", "must be >= 0 (0 disables)")


@dataclass(frozen=True)
class TrainConfig:
    """A training experiment: the model it trains and how."""

    version: int = CONFIG_VERSION
    # Path to a model YAML (relative to this file) or an inline model mapping.
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    max_iters: int = 1000
    max_minutes: float = 0.0  # 0 = no wall-clock limit; else stop (and checkpoint) after this long
    # With max_minutes: measure the speed early on and shorten max_iters so the LR schedule ends in time.
    budget_schedule: bool = False
    amp: Literal["none", "bf16", "fp16"] = "bf16"
    channels_last: bool = False
    # cuDNN autotuning per input shape (CUDA): batches come in a few padded sizes (aspect groups, short-side
    # range in steps of size_divisor), so each is tuned once. scripts/gpu/profile_train.py measures both.
    cudnn_benchmark: bool = False
    sync_bn: bool = False
    seed: int = 0
    log_interval: int = 20
    val_interval: int = 500
    ckpt_interval: int = 500
    output_dir: str = "runs/default"
    # A das checkpoint (NAME[.safetensors]) whose weights start this run: fine-tuning, e.g. continuing the
    # shipped model on new data. Every tensor name and shape must match this run's model; the loss's flow
    # (not part of a checkpoint) starts fresh. A --resume run loads its own last weights instead.
    init_weights: str | None = None
    # Exponential moving average of the weights and buffers (BatchNorm statistics included), updated after
    # every optimiser step: 0 = off; else saved as final_ema / last_ema beside final / last. Averaging along
    # the trajectory finds flatter minima, which generalise better to unseen domains (SWAD, Cha et al. 2021).
    ema_decay: float = 0.0

    def __post_init__(self) -> None:
        _check(self.version == CONFIG_VERSION, "version", f"unsupported config version (expected {CONFIG_VERSION})")
        _check(self.max_iters >= 1, "max_iters", "must be >= 1")
        _check(0.0 <= self.ema_decay < 1.0, "ema_decay", "must be in [0, 1) (0 = no weight average)")


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------


def _check(ok: bool, key: str, why: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {why}")


# Values in error messages: bounded length and nesting (a YAML alias bomb must not blow up a message).
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 80


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one YAML value against a type hint; raise ConfigError naming ``key``."""
    origin = get_origin(tp)
    if origin is Union or (hasattr(types, "UnionType") and isinstance(tp, types.UnionType)):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {_short.repr(value)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(f"{key}: expected one of {list(get_args(tp))}, got {_short.repr(value)}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {_short.repr(value)}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} items, got {len(value)}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return _from_dict(tp, value, key + ".")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {_short.repr(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_short.repr(value)}")
        return value
    if tp is float:
        # PyYAML (YAML 1.1) reads "1e8" and "1.0e8" as strings; accept them as numbers.
        if isinstance(value, str) and _FLOAT_RE.fullmatch(value.strip()):
            value = float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {_short.repr(value)}")
        if not math.isfinite(float(value)):  # .nan / .inf / 1e999 would silently poison training or decoding
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_short.repr(value)}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp!r} in schema")  # pragma: no cover - schema bug


def _from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for k in data:
        if k not in names:
            close = [n for n in names if n.startswith(str(k)[:3])]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{prefix}{k}: unknown key{hint}; allowed: {sorted(names)}")
    kwargs = {k: _convert(v, hints[k], prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(prefix + msg if prefix and not msg.startswith(prefix) else msg) from None


T = typing.TypeVar("T")


def config_from_dict(cls: type[T], data: dict[str, Any] | None) -> T:
    """Validate a plain mapping into dataclass ``cls`` (unknown keys and wrong types are errors)."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"top level: expected a mapping, got {type(data).__name__}")
    result: T = _from_dict(cls, data)
    return result


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid YAML (UTF-8): {type(exc).__name__}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(path: str | Path) -> ModelConfig:
    """Load a model YAML (``config/model/*.yaml``) into a :class:`ModelConfig`."""
    path = Path(path)
    data = _read_yaml(path)
    try:
        return config_from_dict(ModelConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def load_train_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Load a training YAML. ``model:`` may be a path to a model YAML (relative to this file).

    ``data.train`` / ``data.val`` paths are resolved relative to the YAML file as well.
    ``overrides`` is a nested mapping merged on top (used by command-line ``--set a.b=c``).
    """
    path = Path(path)
    data = _read_yaml(path)
    # Resolve a model file first, so that "--set model.x=…" overrides merge into it instead of replacing it.
    if isinstance(data.get("model"), str):
        try:
            data = {**data, "model": _read_yaml((path.parent / data["model"]).resolve())}
        except (ValueError, OSError) as exc:  # ConfigError, or a path with a NUL byte
            raise ConfigError(f"{path}: model: {exc}") from None
    if overrides:
        if isinstance(overrides.get("model"), str):
            overrides = {**overrides, "model": _read_yaml(Path(overrides["model"]).resolve())}
        data = _merge(data, overrides)
    for split in ("train", "val"):
        files = data.get("data", {}).get(split) if isinstance(data.get("data"), dict) else None
        if isinstance(files, list):
            bad = [f for f in files if not isinstance(f, str)]
            if bad:
                raise ConfigError(f"{path}: data.{split}: file names must be strings, got {_short.repr(bad[0])}")
            data["data"] = {**data["data"], split: [str((path.parent / f).resolve()) if not Path(f).is_absolute() else f for f in files]}
    try:
        return config_from_dict(TrainConfig, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["optim.lr=0.01", "max_iters=10"]`` → nested dict, values parsed as YAML scalars."""
    result: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        node = result
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return result


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass → plain YAML-able dict (tuples become lists)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        return v

    result: dict[str, Any] = conv(cfg)
    return result


def dump_config(cfg: Any) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
