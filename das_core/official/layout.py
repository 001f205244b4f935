"""The state-dict layout of the authors' released DAS checkpoint, generated from the architecture rules.

Restates OFFICIAL_CHECKPOINT.md §3–§5 as code (no file is read): MMPose ``MSPN`` backbone, mmdet ``FPN``
(``start_level`` 1, 3 laterals, 3 outputs + 1 stride-2 extra conv, BN, no conv bias), mmcv-style DAS head
(GroupNorm towers with DCNv2 on the last tower conv, 6 prediction branches, per-level scales, 4 RealNVP
flows, recursive update). For the Panoptic setting (2 MSPN stages, K = 15, 1 update layer) this gives
1,200 tensors / 66,375,442 parameter elements, in state-dict order.

Used by the converter to validate a file before touching it, and by the tests to fabricate a checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["OfficialArch", "PANOPTIC", "official_layout", "key_group"]

Shape = tuple[int, ...]

_FLOWS = ("flow3d", "flow2d", "flow3d_update", "flow2d_update")
_FLOW_DIMS = {"flow3d": 3, "flow2d": 2, "flow3d_update": 3, "flow2d_update": 2}


@dataclass(frozen=True)
class OfficialArch:
    """The knobs that change the official layout (Panoptic: 2 / 15 / 1; MuPoTS config: 3 / 21 / 2)."""

    mspn_stages: int = 2
    num_joints: int = 15
    update_layers: int = 1
    num_levels: int = 4
    num_points: int = 4  # sampling points per side in the recursive update (M)
    channels: int = 256
    centerness_channels: int = 64


PANOPTIC = OfficialArch()


def _bn(p: str, c: int) -> Iterator[tuple[str, Shape]]:
    yield f"{p}.weight", (c,)
    yield f"{p}.bias", (c,)
    yield f"{p}.running_mean", (c,)
    yield f"{p}.running_var", (c,)
    yield f"{p}.num_batches_tracked", ()


def _gn(p: str, c: int) -> Iterator[tuple[str, Shape]]:
    yield f"{p}.weight", (c,)
    yield f"{p}.bias", (c,)


def _conv_bn(p: str, cout: int, cin: int, k: int) -> Iterator[tuple[str, Shape]]:
    """mmcv ConvModule with BN: bias-free ``conv`` + ``bn``."""
    yield f"{p}.conv.weight", (cout, cin, k, k)
    yield from _bn(f"{p}.bn", cout)


def _conv_gn(p: str, cout: int, cin: int, k: int, dcn: bool = False, bias: bool = True) -> Iterator[tuple[str, Shape]]:
    """mmcv ConvModule with GN (head: ``conv_bias=True``); a DCNv2 conv adds ``conv_offset`` (27 ch)."""
    yield f"{p}.conv.weight", (cout, cin, k, k)
    if bias:
        yield f"{p}.conv.bias", (cout,)
    if dcn:
        yield f"{p}.conv.conv_offset.weight", (27, cin, 3, 3)
        yield f"{p}.conv.conv_offset.bias", (27,)
    yield from _gn(f"{p}.gn", cout)


def _conv(p: str, cout: int, cin: int, k: int) -> Iterator[tuple[str, Shape]]:
    yield f"{p}.weight", (cout, cin, k, k)
    yield f"{p}.bias", (cout,)


def _backbone(a: OfficialArch) -> Iterator[tuple[str, Shape]]:
    yield from _conv_bn("backbone.top.top.0", 64, 3, 7)
    for s in range(a.mspn_stages):
        last = s == a.mspn_stages - 1
        cin = 64
        for g, blocks in enumerate((3, 4, 6, 3)):
            mid, out = 64 * 2**g, 256 * 2**g
            for b in range(blocks):
                q = f"backbone.multi_stage_mspn.{s}.downsample.layer{g + 1}.{b}"
                yield f"{q}.conv1.weight", (mid, cin, 1, 1)
                yield from _bn(f"{q}.bn1", mid)
                yield f"{q}.conv2.weight", (mid, mid, 3, 3)
                yield from _bn(f"{q}.bn2", mid)
                yield f"{q}.conv3.weight", (out, mid, 1, 1)
                yield from _bn(f"{q}.bn3", out)
                if b == 0:
                    yield from _conv_bn(f"{q}.downsample", out, cin, 1)
                cin = out
        for u in range(1, 5):
            c_u = (2048, 1024, 512, 256)[u - 1]
            p = f"backbone.multi_stage_mspn.{s}.upsample.up{u}"
            yield from _conv_bn(f"{p}.in_skip", 256, c_u, 1)
            if u >= 2:
                yield from _conv_bn(f"{p}.up_conv", 256, 256, 1)
            if not last:
                yield from _conv_bn(f"{p}.out_skip1", c_u, c_u, 1)
                yield from _conv_bn(f"{p}.out_skip2", c_u, 256, 1)
                if u == 4:
                    yield from _conv_bn(f"{p}.cross_conv", 64, 256, 1)


def _neck(a: OfficialArch) -> Iterator[tuple[str, Shape]]:
    c = a.channels
    for i in range(a.num_levels - 1):  # start_level 1: laterals on MSPN strides 8, 16, 32
        yield from _conv_bn(f"neck.lateral_convs.{i}", c, 256, 1)
    for i in range(a.num_levels):  # the last one is the stride-2 extra conv on the top output
        yield from _conv_bn(f"neck.fpn_convs.{i}", c, c, 3)


def _flow(name: str) -> Iterator[tuple[str, Shape]]:
    d = _FLOW_DIMS[name]
    yield f"bbox_head.{name}.mask", (6, d)
    for net in ("t", "s"):
        for i in range(6):
            p = f"bbox_head.{name}.{net}.{i}"
            yield f"{p}.0.weight", (64, d)
            yield f"{p}.0.bias", (64,)
            yield f"{p}.2.weight", (64, 64)
            yield f"{p}.2.bias", (64,)
            yield f"{p}.4.weight", (d, 64)
            yield f"{p}.4.bias", (d,)


def _head(a: OfficialArch) -> Iterator[tuple[str, Shape]]:
    c, k3, h = a.channels, 3 * a.num_joints, "bbox_head"
    for tower in ("pose_convs", "cls_convs", "reg_convs"):
        yield from _conv_gn(f"{h}.{tower}.0", c, c, 3)
        yield from _conv_gn(f"{h}.{tower}.1", c, c, 3, dcn=True)
    yield from _conv_gn(f"{h}.conv_cls_prev.0", c, c, 3)
    yield from _conv(f"{h}.conv_cls", 1, c, 1)
    yield from _conv_gn(f"{h}.conv_reg_prevs.0.0", c, c, 3)  # root xy (never trained)
    yield from _conv_gn(f"{h}.conv_reg_prevs.1.0", c, c, 3)  # root depth
    yield from _conv(f"{h}.conv_regs.0", 2, c, 1)
    yield from _conv(f"{h}.conv_regs.1", 1, c, 1)
    yield from _conv_gn(f"{h}.conv_pose_prevs.0.0", c, c, 3)  # offsets
    yield from _conv_gn(f"{h}.conv_pose_prevs.1.0", c, c, 3)  # sigma
    yield from _conv(f"{h}.conv_poses.0", k3, c, 1)
    yield from _conv(f"{h}.conv_poses.1", k3, c, 1)
    yield from _conv_gn(f"{h}.conv_centerness_prev.0", a.centerness_channels, c, 3)
    yield from _conv(f"{h}.conv_centerness", 1, a.centerness_channels, 1)
    for lvl in range(a.num_levels):
        for j in range(4):  # 0 root xy, 1 root depth, 2 joint u/v, 3 joint d
            yield f"{h}.scales.{lvl}.{j}.scale", ()
    for f in _FLOWS:
        yield from _flow(f)
    r = f"{h}.recursive_update_branch"
    yield f"{r}.reduction.conv.weight", (c, c, 1, 1)
    yield from _gn(f"{r}.reduction.gn", c)
    for n in range(a.update_layers):
        p = f"{r}.layer_{n}.next_level_offset"
        yield from _conv(f"{p}.sampling_offset", a.num_joints * a.num_points * 2, c, 1)
        yield from _conv(f"{p}.sampling_conf", k3, c, 1)
        yield from _conv_gn(f"{p}.update_feat_conv", c, c, 3, dcn=True, bias=False)
        yield from _conv(f"{p}.update_weight", k3, c, 1)
        yield from _conv(f"{p}.update_offset_value", k3, c, 1)


def official_layout(arch: OfficialArch = PANOPTIC) -> dict[str, Shape]:
    """Every key of the official ``state_dict`` → its shape, in state-dict order."""
    out: dict[str, Shape] = {}
    for gen in (_backbone(arch), _neck(arch), _head(arch)):
        for key, shape in gen:
            out[key] = shape
    return out


def key_group(key: str, arch: OfficialArch = PANOPTIC) -> str:
    """Inference role of an official key: ``flow`` (loss-only RealNVP), ``root_xy`` (never trained),
    ``bn_counter`` (``num_batches_tracked``), ``dead_up4`` (last MSPN stage's unused stride-4 unit) or
    ``model`` (everything else, mapped into our model)."""
    if key.endswith("num_batches_tracked"):
        return "bn_counter"
    if any(key.startswith(f"bbox_head.{f}.") for f in _FLOWS):
        return "flow"
    if key.startswith(("bbox_head.conv_reg_prevs.0.", "bbox_head.conv_regs.0.")) or (
        key.startswith("bbox_head.scales.") and key.endswith(".0.scale")
    ):
        return "root_xy"
    if key.startswith(f"backbone.multi_stage_mspn.{arch.mspn_stages - 1}.upsample.up4."):
        return "dead_up4"
    return "model"
