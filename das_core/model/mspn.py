"""MSPN backbone (multi-stage pose network; DAS_SPEC §4.1a) with MMPose-compatible parameter names.

Every parameter and buffer name equals the MMPose / official DAS ``backbone.*`` key minus the ``backbone.``
prefix (``top.top.0.conv.weight``, ``multi_stage_mspn.1.upsample.up2.in_skip.bn.running_var`` …;
OFFICIAL_CHECKPOINT.md §3), so MMPose "Nxmspn50" COCO checkpoints and the released DAS Panoptic checkpoint
load into it without renaming. torchvision-layout ResNet-50 (ImageNet) weights load into the stem and every
stage's down path, as MMPose initialises MSPN.

Structure (N stages, ResNet-50 blocks [3, 4, 6, 3], 256-channel up path):

* ``top``: 7×7/2 conv (64 ch) + norm + ReLU, 3×3/2 max-pool → stride 4, 64 ch (run once).
* stage ``s``: ``downsample`` = 4 bottleneck groups (256/512/1024/2048 ch at strides 4/8/16/32);
  from stage 1 on, the two skip tensors of the previous stage's up unit at the same resolution are added
  to each group's output. ``upsample`` = 4 units, coarse to fine (``up1`` at stride 32 … ``up4`` at
  stride 4): ``ReLU(in_skip(x) + up_conv(bilinear_align_corners(previous unit)))``. Non-final stages also
  emit ``out_skip1`` (on the down-path map) / ``out_skip2`` (on the unit output) and, in ``up4``, a
  ``cross_conv`` to 64 ch that is the next stage's input.
* Output: the last stage's four unit outputs, fine to coarse: 256 ch at strides 4, 8, 16, 32.

With the official FPN (``start_level`` 1) the last stage's ``up4`` output is computed but unused; it is
kept so that every MMPose / official key has a home (OFFICIAL_CHECKPOINT.md §7).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from das_core.model.backbone import Backbone, FeatureInfo, make_norm

__all__ = ["MSPN", "load_mspn_pretrained", "mspn_state_from_file"]

log = logging.getLogger(__name__)

# ResNet-50 body: blocks per group; bottleneck expansion 4; base width 64.
_BLOCKS = (3, 4, 6, 3)
_EXPANSION = 4
_TOP_CHANNELS = 64
_UNIT_CHANNELS = 256


def _norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm flavour named by the config (``bn`` / ``syncbn`` / ``frozen_bn``); eps 1e-5, momentum 0.1."""
    return make_norm(kind, channels)


class ConvNorm(nn.Module):
    """Bias-free conv → BN → optional ReLU; children named ``conv`` and ``bn`` (mmcv ConvModule layout)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0,
                 norm: str = "bn", relu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = _norm(norm, cout)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x, inplace=True) if self.relu else x


class Bottleneck(nn.Module):
    """ResNet "pytorch"-style bottleneck (stride on the 3×3 conv); ``downsample`` only on the first block."""

    def __init__(self, cin: int, mid: int, stride: int, norm: str) -> None:
        super().__init__()
        out = mid * _EXPANSION
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = _norm(norm, mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bn2 = _norm(norm, mid)
        self.conv3 = nn.Conv2d(mid, out, 1, bias=False)
        self.bn3 = _norm(norm, out)
        self.downsample = (
            ConvNorm(cin, out, 1, stride=stride, norm=norm, relu=False) if stride != 1 or cin != out else None
        )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = F.relu(self.bn2(self.conv2(y)), inplace=True)
        y = self.bn3(self.conv3(y))
        return F.relu(y + identity, inplace=True)


class DownPath(nn.Module):
    """Four bottleneck groups ``layer1..layer4``; input (B, 64, H/4, W/4)."""

    def __init__(self, norm: str) -> None:
        super().__init__()
        cin = _TOP_CHANNELS
        for i, blocks in enumerate(_BLOCKS):
            mid = _TOP_CHANNELS * 2**i
            stride = 1 if i == 0 else 2
            layers = []
            for b in range(blocks):
                layers.append(Bottleneck(cin, mid, stride if b == 0 else 1, norm))
                cin = mid * _EXPANSION
            self.add_module(f"layer{i + 1}", nn.Sequential(*layers))

    def forward(self, x: Tensor, skip1: list[Tensor] | None, skip2: list[Tensor] | None) -> list[Tensor]:
        """Returns the 4 group outputs fine to coarse (strides 4..32); the previous stage's skips (same
        order) are added to each group output."""
        outs = []
        for i in range(len(_BLOCKS)):
            x = getattr(self, f"layer{i + 1}")(x)
            if skip1 is not None and skip2 is not None:
                x = x + skip1[i] + skip2[i]
            outs.append(x)
        return outs


class UpUnit(nn.Module):
    """One up-path unit at one resolution; ``index`` 0 is the coarsest (stride 32)."""

    def __init__(self, index: int, cin: int, gen_skip: bool, gen_cross: bool, norm: str) -> None:
        super().__init__()
        self.index = index
        self.in_skip = ConvNorm(cin, _UNIT_CHANNELS, 1, norm=norm, relu=False)
        self.up_conv = ConvNorm(_UNIT_CHANNELS, _UNIT_CHANNELS, 1, norm=norm, relu=False) if index > 0 else None
        self.out_skip1 = ConvNorm(cin, cin, 1, norm=norm) if gen_skip else None
        self.out_skip2 = ConvNorm(_UNIT_CHANNELS, cin, 1, norm=norm) if gen_skip else None
        self.cross_conv = ConvNorm(_UNIT_CHANNELS, _TOP_CHANNELS, 1, norm=norm) if gen_cross else None

    def forward(self, x: Tensor, coarser: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """x: down-path map of this resolution; coarser: previous unit's output. Returns (out, skip1, skip2)."""
        out = self.in_skip(x)
        if self.up_conv is not None and coarser is not None:
            # MMPose order: upsample first, then the 1×1 conv + norm (the BN statistics see the upsampled map).
            up = F.interpolate(coarser, size=x.shape[-2:], mode="bilinear", align_corners=True)
            out = out + self.up_conv(up)
        out = F.relu(out)
        skip1 = self.out_skip1(x) if self.out_skip1 is not None else None
        skip2 = self.out_skip2(out) if self.out_skip2 is not None else None
        return out, skip1, skip2


class UpPath(nn.Module):
    """Units ``up1`` (stride 32, 2048 ch in) … ``up4`` (stride 4, 256 ch in)."""

    def __init__(self, gen_skip: bool, norm: str) -> None:
        super().__init__()
        n = len(_BLOCKS)
        for i in range(n):
            cin = _TOP_CHANNELS * _EXPANSION * 2 ** (n - 1 - i)
            self.add_module(f"up{i + 1}", UpUnit(i, cin, gen_skip, gen_skip and i == n - 1, norm))

    def forward(self, feats: list[Tensor]) -> tuple[list[Tensor], list[Tensor] | None, list[Tensor] | None, Tensor | None]:
        """feats fine to coarse → (unit outputs fine to coarse, skip1, skip2 fine to coarse, cross or None)."""
        n = len(feats)
        outs: list[Tensor] = []
        skip1: list[Tensor] = []
        skip2: list[Tensor] = []
        prev: Tensor | None = None
        for i in range(n):
            unit: UpUnit = getattr(self, f"up{i + 1}")
            prev, s1, s2 = unit(feats[n - 1 - i], prev)
            outs.append(prev)
            if s1 is not None and s2 is not None:
                skip1.append(s1)
                skip2.append(s2)
        last: UpUnit = getattr(self, f"up{n}")
        cross = last.cross_conv(outs[-1]) if last.cross_conv is not None else None
        outs.reverse()
        skip1.reverse()
        skip2.reverse()
        return outs, (skip1 or None), (skip2 or None), cross


class Stage(nn.Module):
    """One MSPN stage: ``downsample`` (ResNet-50 body) + ``upsample`` (4 up units)."""

    def __init__(self, last: bool, norm: str) -> None:
        super().__init__()
        self.downsample = DownPath(norm)
        self.upsample = UpPath(gen_skip=not last, norm=norm)

    def forward(self, x: Tensor, skip1: list[Tensor] | None, skip2: list[Tensor] | None
                ) -> tuple[list[Tensor], list[Tensor] | None, list[Tensor] | None, Tensor | None]:
        return self.upsample(self.downsample(x, skip1, skip2))


class _Top(nn.Module):
    """Stem; the extra nesting level reproduces MMPose's ``top.top.0`` key prefix."""

    def __init__(self, norm: str) -> None:
        super().__init__()
        self.top = nn.Sequential(ConvNorm(3, _TOP_CHANNELS, 7, stride=2, padding=3, norm=norm),
                                 nn.MaxPool2d(kernel_size=3, stride=2, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.top(x)


class MSPN(Backbone):
    """Multi-stage pose network (ResNet-50 stages) returning 4 maps of 256 ch at strides 4, 8, 16, 32.

    Args:
        num_stages: 2 (official Panoptic, MMPose "2xmspn50") or 3 (MuPoTS, "3xmspn50"); any N ≥ 1 builds.
        norm: ``bn`` / ``syncbn`` / ``frozen_bn`` for every norm layer.

    ``forward(images (B, 3, H, W)) -> [(B, 256, H/4, W/4), (B, 256, H/8, W/8), (B, 256, H/16, W/16),
    (B, 256, H/32, W/32)]`` (H, W multiples of 32). Note: the official DAS code never freezes MSPN
    parameters (DAS_SPEC §11.15); :meth:`freeze` is there for native training recipes.
    """

    def __init__(self, num_stages: int, norm: str = "bn") -> None:
        super().__init__()
        if num_stages < 1:
            raise ValueError(f"MSPN needs num_stages >= 1, got {num_stages}")
        self.num_stages = num_stages
        self.top = _Top(norm)
        self.multi_stage_mspn = nn.ModuleList([Stage(last=(i == num_stages - 1), norm=norm) for i in range(num_stages)])
        self.feature_info = [FeatureInfo(_UNIT_CHANNELS, 4 * 2**i) for i in range(len(_BLOCKS))]

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.top(x)
        skip1: list[Tensor] | None = None
        skip2: list[Tensor] | None = None
        outs: list[Tensor] = []
        for stage in self.multi_stage_mspn:
            outs, skip1, skip2, cross = stage(x, skip1, skip2)
            if cross is not None:
                x = cross
        return outs

    def freeze(self, frozen_stages: int) -> None:
        """Freeze the stem and ``layer1 .. layer n`` of *every* stage's down path (the ImageNet-initialised
        part), with the ResNet meaning of ``backbone.frozen_stages`` (0 = nothing, 1 = stem + layer1, …).
        Frozen parts keep ``requires_grad=False`` and stay in eval mode through ``train()``."""
        if not 0 <= frozen_stages <= len(_BLOCKS):
            raise ValueError(f"backbone.frozen_stages: MSPN has a stem + {len(_BLOCKS)} groups, got {frozen_stages}")
        self._frozen_stages = frozen_stages
        for m in self._frozen_modules():
            for p in m.parameters():
                p.requires_grad_(False)
        self.train(self.training)

    def _frozen_modules(self) -> list[nn.Module]:
        n = getattr(self, "_frozen_stages", 0)
        if n == 0:
            return []
        mods: list[nn.Module] = [self.top]
        for stage in self.multi_stage_mspn:
            mods += [getattr(stage.downsample, f"layer{i}") for i in range(1, n + 1)]
        return mods

    def train(self, mode: bool = True) -> MSPN:
        super().train(mode)
        for m in self._frozen_modules():  # frozen BN statistics must not drift
            m.eval()
        return self


# ----------------------------------------------------------------------------------------------
# Pretrained weights
# ----------------------------------------------------------------------------------------------


def _from_torchvision_resnet(state: dict[str, Tensor], num_stages: int) -> dict[str, Tensor]:
    """torchvision ResNet-50 names → MSPN stem + every stage's down path (MMPose's ImageNet init)."""
    out: dict[str, Tensor] = {}
    for k, v in state.items():
        if k.startswith("conv1."):
            out["top.top.0.conv." + k[len("conv1."):]] = v
        elif k.startswith("bn1."):
            out["top.top.0.bn." + k[len("bn1."):]] = v
        elif k.startswith("layer"):
            name = k.replace(".downsample.0.", ".downsample.conv.").replace(".downsample.1.", ".downsample.bn.")
            for s in range(num_stages):
                out[f"multi_stage_mspn.{s}.downsample.{name}"] = v
        # fc.* (classifier) has no counterpart
    return out


def mspn_state_from_file(path: str | Path, num_stages: int) -> tuple[dict[str, Tensor], str]:
    """Read MSPN weights from a local file and name them like :class:`MSPN`'s ``state_dict``.

    Accepted: an MMPose / DAS checkpoint (``.pth`` with ``backbone.*`` keys; the rest is ignored), a bare
    MSPN state dict, or a torchvision-layout ResNet-50 (ImageNet; fills stem + down paths only). ``.pth``
    files are read with ``weights_only=True``; ``.safetensors`` too. Returns (state, description).
    """
    from das_core.official.pth import read_state_dict

    state = read_state_dict(path)
    if any(k.startswith("backbone.") for k in state):
        return {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}, "mmpose-mspn"
    if any(k.startswith("multi_stage_mspn.") for k in state):
        return dict(state), "mspn"
    if "conv1.weight" in state and any(k.startswith("layer4.") for k in state):
        return _from_torchvision_resnet(state, num_stages), "torchvision-resnet50"
    sample = ", ".join(sorted(state)[:5])
    raise ValueError(
        f"{path}: not MSPN weights (expected 'backbone.*' MMPose keys, MSPN keys or a torchvision ResNet-50); "
        f"first keys: {sample}"
    )


def load_mspn_pretrained(model: MSPN, path: str | Path) -> dict[str, list[str]]:
    """Load a local weights file into ``model`` (see :func:`mspn_state_from_file`).

    MSPN checkpoints must match exactly (a 3-stage file into a 2-stage model is an error naming the keys;
    ``num_batches_tracked`` may be absent). A torchvision ResNet-50 leaves the up paths at their
    initialisation. Shape mismatches are always errors. Returns ``{"missing": [...], "unexpected": [...]}``.
    """
    state, kind = mspn_state_from_file(path, model.num_stages)
    own = model.state_dict()
    bad_shape = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                 for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if bad_shape:
        raise ValueError(f"{path}: {len(bad_shape)} MSPN weights have the wrong shape, e.g. {bad_shape[:3]}")
    # A BN batch counter is not a weight: frozen-BN models have none, checkpoints may lack them.
    unexpected = sorted(k for k in state if k not in own and not k.endswith("num_batches_tracked"))
    missing = sorted(k for k in own if k not in state and not k.endswith("num_batches_tracked"))
    if kind != "torchvision-resnet50" and (missing or unexpected):
        raise ValueError(
            f"{path}: MSPN weights do not match a {model.num_stages}-stage MSPN: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    if kind == "torchvision-resnet50" and unexpected:
        raise ValueError(f"{path}: unexpected ResNet-50 keys for MSPN: {unexpected[:5]}")
    with torch.no_grad():
        for k, v in state.items():
            if k in own:
                own[k].copy_(v.to(own[k].dtype))
    log.info("loaded %s weights from %s (%d tensors, %d left at initialisation)", kind, path, len(state), len(missing))
    return {"missing": missing, "unexpected": unexpected}
