"""Convert the authors' released DAS checkpoint (CMU Panoptic, ``.pth``) into a das checkpoint.

Examples:
  das convert-official ~/Downloads/das_panoptic.pth checkpoints/das_official_panoptic
  das convert-official das_panoptic.pth out/official --flows out/official_flows.safetensors

The file is read with ``torch.load(weights_only=True)`` (tensors and plain containers only), validated
key by key against the official architecture (OFFICIAL_CHECKPOINT.md §8), renamed to this package's
model and written as ``OUT.safetensors`` + ``OUT.yaml`` (config ``config/model/das_official_panoptic.yaml``,
``compat: official``). The weights and their licence are the authors'; see docs/OFFICIAL.md.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from das_core.config import (
    BackboneConfig,
    DecodeConfig,
    FPNConfig,
    HeadConfig,
    InputConfig,
    ModelConfig,
    TargetConfig,
    UpdateConfig,
)
from das_core.file_digest import file_sha256
from das_core.official.layout import PANOPTIC, OfficialArch, key_group, official_layout
from das_core.official.pth import CheckpointFileError, read_torch_file

__all__ = [
    "ConversionResult",
    "OfficialCheckpointError",
    "add_arguments",
    "convert_official",
    "convert_state_dict",
    "map_official_key",
    "model_layout",
    "official_model_config",
    "run",
    "validate_official_state",
]

log = logging.getLogger(__name__)

SOURCE_URL = "https://github.com/wangzt-halo/das"


class OfficialCheckpointError(ValueError):
    """The file is not the released DAS Panoptic checkpoint (or not a checkpoint at all)."""


def official_model_config() -> ModelConfig:
    """The released Panoptic model as a :class:`ModelConfig` (= ``config/model/das_official_panoptic.yaml``).

    Units: the official root-depth target is ``20 · Z[cm] / f`` = ``2000 · Z[m] / f`` and its ``z_norm`` is
    50 cm = 0.5 m, so ``depth_factor=2000`` and ``z_norm=0.5`` give the network outputs the same meaning
    with depths in metres (DAS_SPEC §2.2).
    """
    return ModelConfig(
        name="das_official_panoptic",
        skeleton="panoptic15",
        strides=(8, 16, 32, 64),
        depth_factor=2000.0,
        z_norm=0.5,
        compat="official",
        backbone=BackboneConfig(name="mspn", mspn_stages=2, frozen_stages=0, norm="bn"),
        fpn=FPNConfig(out_channels=256, start_level=1, num_outs=4, extra_convs_on="output",
                      relu_before_extra_convs=True, norm="bn"),
        head=HeadConfig(feat_channels=256, stacked_convs=2, use_dcn=True, num_groups=32, centerness_channels=64),
        update=UpdateConfig(mode="multi", num_layers=1, num_points=4, use_dcn=True),
        targets=TargetConfig(regress_ranges=((-1.0, 80.0), (80.0, 160.0), (160.0, 320.0), (320.0, 1e8)),
                             center_sample_radius=1.5, centerness_alpha=2.5),
        decode=DecodeConfig(score_thr=0.07, nms_pre=1000, nms_thr=0.9, nms_post=100, oks_sigma=0.08),
        input=InputConfig(short_side=640, long_side=1333, size_divisor=32),
    )


# ----------------------------------------------------------------------------------------------
# Names: official → ours
# ----------------------------------------------------------------------------------------------

# (official prefix under ``bbox_head.``, our prefix); first match wins, so longer prefixes come first.
_HEAD_PREFIXES: tuple[tuple[str, str], ...] = (
    ("pose_convs.", "head.pose_convs."),
    ("cls_convs.", "head.cls_convs."),
    ("reg_convs.", "head.reg_convs."),
    ("conv_cls_prev.0.", "head.cls_prev."),
    ("conv_cls.", "head.conv_cls."),
    ("conv_reg_prevs.1.0.", "head.depth_prev."),
    ("conv_regs.1.", "head.conv_depth."),
    ("conv_pose_prevs.0.0.", "head.offset_prev."),
    ("conv_pose_prevs.1.0.", "head.sigma_prev."),
    ("conv_poses.0.", "head.conv_offsets."),
    ("conv_poses.1.", "head.conv_sigma."),
    ("conv_centerness_prev.0.", "head.centerness_prev."),
    ("conv_centerness.", "head.conv_centerness."),
    ("recursive_update_branch.reduction.", "update.reduction."),
)
_SCALE = re.compile(r"^bbox_head\.scales\.(\d+)\.([123])\.scale$")
_SCALE_NAMES = {"1": "depth", "2": "uv", "3": "d"}  # 0 = root xy: dropped
_UPDATE = re.compile(r"^bbox_head\.recursive_update_branch\.layer_(\d+)\.next_level_offset\.([a-z_]+)\.(.+)$")
_UPDATE_NAMES = {
    "update_feat_conv": "refine",
    "sampling_offset": "sampling_offset",
    "sampling_conf": "sampling_conf",
    "update_weight": "update_weight",
    "update_offset_value": "update_value",
}
_FLOW = re.compile(r"^bbox_head\.(flow3d|flow2d|flow3d_update|flow2d_update)\.(.+)$")


def map_official_key(key: str) -> str | None:
    """Our model's name for an official key, or None for keys our model has no place for
    (RealNVP flows, the untrained root-xy branch; see :func:`das_core.official.layout.key_group`)."""
    if key.startswith("backbone."):
        return key  # MSPN names are kept verbatim (das_core/model/mspn.py)
    if key.startswith("neck."):
        return "fpn." + key[len("neck."):]
    m = _SCALE.match(key)
    if m:
        return f"head.scales.{m.group(1)}.{_SCALE_NAMES[m.group(2)]}"
    m = _UPDATE.match(key)
    if m and m.group(2) in _UPDATE_NAMES:
        return f"update.layers.{m.group(1)}.{_UPDATE_NAMES[m.group(2)]}.{m.group(3)}"
    if key.startswith("bbox_head."):
        rest = key[len("bbox_head."):]
        for official, ours in _HEAD_PREFIXES:
            if rest.startswith(official):
                return ours + rest[len(official):]
    return None


# ----------------------------------------------------------------------------------------------
# Validation
# ----------------------------------------------------------------------------------------------


def _shape(t: Tensor) -> tuple[int, ...]:
    return tuple(int(s) for s in t.shape)


def _sample(keys: list[str], n: int = 5) -> str:
    return ", ".join(keys[:n]) + (f", … (+{len(keys) - n})" if len(keys) > n else "")


def _flow_mask(dim: int) -> Tensor:
    first = [0.0] * (dim - 1) + [1.0]
    return torch.tensor([first if i % 2 == 0 else [1.0 - m for m in first] for i in range(6)])


def validate_official_state(state: Mapping[str, Any], source: str = "checkpoint",
                            arch: OfficialArch = PANOPTIC) -> None:
    """Refuse anything that is not exactly the released checkpoint's ``state_dict`` (OFFICIAL_CHECKPOINT.md §8).

    Checks: every value is a tensor; the key set equals :func:`official_layout` (errors list a few missing
    and unexpected keys, with a hint for the known look-alikes); every shape matches; the RealNVP masks hold
    their constant patterns; all floating values are finite.
    """
    not_tensors = [k for k, v in state.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise OfficialCheckpointError(f"{source}: not a state dict; non-tensor entries: {_sample(not_tensors)}")
    expected = official_layout(arch)
    if not any(k.startswith(("backbone.", "neck.", "bbox_head.")) for k in state):
        raise OfficialCheckpointError(
            f"{source}: not a DAS checkpoint: no key under backbone./neck./bbox_head. "
            f"(first keys: {_sample(sorted(state))})"
        )
    missing = [k for k in expected if k not in state]
    unexpected = sorted(k for k in state if k not in expected)
    if missing or unexpected:
        hints = []
        if any(k.startswith("neck.lateral_convs.3.") for k in unexpected):
            hints.append("it has 4 FPN laterals (a neck on the stride-4 map, not the released start_level=1 neck)")
        if any(re.match(r"bbox_head\.recursive_update_branch\.layer_[1-9]", k) for k in unexpected):
            hints.append("it has more than 1 recursive-update layer (MuPoTS-style config?)")
        if any(k.startswith(f"backbone.multi_stage_mspn.{arch.mspn_stages}.") for k in unexpected):
            hints.append(f"its MSPN has more than {arch.mspn_stages} stages")
        if any(k.startswith("bbox_head.biases.") for k in unexpected):
            hints.append("it has bbox_head.biases.* (a locally modified head)")
        if not any(k.startswith("bbox_head.recursive_update_branch.") for k in state):
            hints.append("it has no recursive-update branch")
        hint = ("; " + "; ".join(hints)) if hints else ""
        raise OfficialCheckpointError(
            f"{source}: not the released DAS Panoptic checkpoint layout{hint}. "
            f"{len(missing)} keys missing (e.g. {_sample(missing)}); "
            f"{len(unexpected)} unexpected (e.g. {_sample(unexpected)})"
        )
    wrong = [f"{k}: {list(_shape(state[k]))} (expected {list(s)})" for k, s in expected.items() if _shape(state[k]) != s]
    if wrong:
        raise OfficialCheckpointError(f"{source}: {len(wrong)} tensors have unexpected shapes: {_sample(wrong, 4)}")
    for name in ("flow3d", "flow2d", "flow3d_update", "flow2d_update"):
        key = f"bbox_head.{name}.mask"
        mask = state[key]
        if not torch.equal(mask.float(), _flow_mask(mask.shape[1])):
            raise OfficialCheckpointError(f"{source}: {key} is not the constant RealNVP mask pattern (OFFICIAL_CHECKPOINT.md §5.4)")
    # A sum is finite iff every element is (barring overflow, which the exact check then sorts out): one
    # cheap reduction per tensor instead of an elementwise mask over 66 M values.
    bad = [k for k, v in state.items()
           if v.is_floating_point() and not bool(torch.isfinite(v.sum())) and not bool(torch.isfinite(v).all())]
    if bad:
        raise OfficialCheckpointError(f"{source}: non-finite values (NaN/inf) in {_sample(bad)}")


def _check_meta(meta: Any, source: str) -> dict[str, Any]:
    """Read what is useful from mmcv's ``meta`` and refuse a config whose neck differs from the released one.

    The key set cannot tell ``add_extra_convs='on_output'`` from ``'on_input'`` (same shapes), so when the
    training config text is present it is checked (OFFICIAL_CHECKPOINT.md §9 U3).
    """
    info: dict[str, Any] = {}
    if not isinstance(meta, Mapping):
        return info
    for k in ("epoch", "iter", "mmcv_version", "mmdet_version", "mmdet3d_version", "exp_name", "time"):
        v = meta.get(k)
        if isinstance(v, (str, int, float)):
            info[k] = v
    text = meta.get("config")
    if isinstance(text, str):
        neck = text[text.find("neck=") :] if "neck=" in text else ""
        neck = neck[: neck.find("bbox_head")] if "bbox_head" in neck else neck[:1000]
        checks = {"start_level": r"start_level\s*=\s*(\d+)", "add_extra_convs": r"add_extra_convs\s*=\s*'?(\w+)'?"}
        want = {"start_level": "1", "add_extra_convs": "on_output"}
        for name, pattern in checks.items():
            m = re.search(pattern, neck)
            if m and m.group(1) != want[name]:
                raise OfficialCheckpointError(
                    f"{source}: its training config has neck {name}={m.group(1)!r}; the converter reproduces "
                    f"the released neck ({name}={want[name]!r}) only"
                )
        info["config_checked"] = bool(neck)
    return info


# ----------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------


@dataclass
class ConversionResult:
    """What :func:`convert_state_dict` produced."""

    state_dict: dict[str, Tensor]
    flows: dict[str, Tensor]
    dropped: dict[str, list[str]] = field(default_factory=dict)


def _target_layout(cfg: ModelConfig) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Names, shapes and dtypes of ``DAS.from_config(cfg).state_dict()`` (built on the CPU: ~1 s; the meta
    device would be free of memory but pulls in torch's reference ops, ~5 s on first use)."""
    from das_core.model.das import DAS

    return model_layout(DAS.from_config(cfg))


def model_layout(model: torch.nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Names → (shape, dtype) of a model's ``state_dict``: the ``target`` of :func:`convert_state_dict`."""
    return {k: (_shape(v), v.dtype) for k, v in model.state_dict().items()}


def convert_state_dict(state: Mapping[str, Tensor], cfg: ModelConfig | None = None, source: str = "checkpoint",
                       target: Mapping[str, tuple[tuple[int, ...], torch.dtype]] | None = None) -> ConversionResult:
    """Validated official ``state_dict`` → our model's ``state_dict`` (exact key set, float32 / int64).

    Every official key either maps to one of ours or belongs to a group our model does not have (flows,
    root-xy branch, and — only when the target model lacks them — ``num_batches_tracked`` or the dead
    stride-4 unit); anything else is an error, as is any of our keys left unfilled.
    """
    cfg = cfg or official_model_config()
    validate_official_state(state, source)
    target = target if target is not None else _target_layout(cfg)
    out: dict[str, Tensor] = {}
    flows: dict[str, Tensor] = {}
    dropped: dict[str, list[str]] = {}
    for key, value in state.items():
        group = key_group(key)
        ours = map_official_key(key)
        if ours is not None and ours in target:
            shape, dtype = target[ours]
            if _shape(value) != shape:
                raise OfficialCheckpointError(f"{source}: {key} → {ours}: shape {list(_shape(value))}, model has {list(shape)}")
            out[ours] = value.detach().to(dtype=dtype).contiguous()  # fp16 files (U2) become float32
            continue
        m = _FLOW.match(key)
        if m:
            flows[f"{m.group(1)}.{m.group(2)}"] = value.detach().float().contiguous()
        if group == "model":
            raise OfficialCheckpointError(f"{source}: {key} has no place in the model (mapped to {ours!r})")
        dropped.setdefault(group, []).append(key)
    unfilled = [k for k in target if k not in out]
    if unfilled:
        raise OfficialCheckpointError(f"{source}: the converted model would lack {len(unfilled)} tensors: {_sample(unfilled)}")
    return ConversionResult(out, flows, dropped)


def convert_official(checkpoint: str | Path, out: str | Path, *, flows_out: str | Path | None = None,
                     trust_pickle: bool = False) -> tuple[Path, Path]:
    """Read, validate, convert and write ``OUT.safetensors`` + ``OUT.yaml``; returns both paths.

    ``flows_out``: also write the four RealNVP flows (training-only) with :class:`~das_core.training.losses.criterion.DASLoss`
    names (``flow3d.t.0.0.weight`` …), for fine-tuning with the authors' residual densities.
    """
    from das_core.checkpoint import save_checkpoint

    path = Path(checkpoint)
    try:
        obj = read_torch_file(path, trust_pickle=trust_pickle)
    except CheckpointFileError as exc:
        raise OfficialCheckpointError(str(exc)) from None
    if not isinstance(obj, Mapping):
        raise OfficialCheckpointError(f"{path}: not a DAS checkpoint: the file holds a {type(obj).__name__}, not a dict")
    meta_info = _check_meta(obj.get("meta"), str(path))
    state = obj["state_dict"] if isinstance(obj.get("state_dict"), Mapping) else obj
    state = {(k[len("module."):] if isinstance(k, str) and k.startswith("module.") else k): v for k, v in state.items()}
    bad_keys = [repr(k) for k in state if not isinstance(k, str)]
    if bad_keys:
        raise OfficialCheckpointError(f"{path}: not a state dict; non-string keys {_sample(bad_keys)}")
    cfg = official_model_config()
    result = convert_state_dict(state, cfg, source=str(path))
    n_params = sum(v.numel() for k, v in result.state_dict.items()
                   if v.is_floating_point() and not k.endswith(("running_mean", "running_var")))
    record = {
        "recipe": f"das convert-official {path.name} {Path(out).name}",
        "source": {"file": path.name, "sha256": file_sha256(path), "project": SOURCE_URL, **meta_info},
        "licence": "weights released by the DAS authors (CVPR 2022); their licence and terms apply",
        "parameters": n_params,
        "dropped": {g: len(keys) for g, keys in sorted(result.dropped.items())},
    }
    paths = save_checkpoint(out, result.state_dict, cfg, record)
    if flows_out is not None:
        from safetensors.torch import save_file

        Path(flows_out).parent.mkdir(parents=True, exist_ok=True)
        save_file(result.flows, str(flows_out), metadata={"format": "pt", "das": "flows"})
    log.info("converted %s: %d tensors, %s parameters; dropped %s", path, len(result.state_dict),
             f"{n_params:,}", record["dropped"])
    return paths


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="the released DAS Panoptic .pth file (downloaded by you)")
    parser.add_argument("output", help="output checkpoint name: writes OUTPUT.safetensors + OUTPUT.yaml")
    parser.add_argument("--flows", metavar="FILE", default=None,
                        help="also write the 4 RealNVP flows (training only) to this .safetensors file")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="unpickle with weights_only=False: ONLY for a file you made yourself")


def run(args: argparse.Namespace) -> int:
    st, yml = convert_official(args.checkpoint, args.output, flows_out=args.flows, trust_pickle=args.trust_pickle)
    print(f"wrote {st}\nwrote {yml}")
    if args.flows:
        print(f"wrote {args.flows}")
    return 0
