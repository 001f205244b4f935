"""``DAS``: backbone → FPN → shared head → recursive update → :class:`HeadOutputs` (DAS_SPEC §4).

The level strides are read from the backbone's ``feature_info`` through the FPN, checked against
``ModelConfig.strides`` when the model is built, and checked again against the real feature-map sizes at
the first forward (DAS_SPEC §4.3): a config edit can never silently desynchronise targets and features.
"""

from __future__ import annotations

import contextlib
import logging
import math

import torch
from torch import Tensor, nn

from das_core.config import ConfigError, ModelConfig
from das_core.model.backbone import Backbone, load_pretrained_backbone
from das_core.model.fpn import FPN
from das_core.model.head import DASHead
from das_core.model.outputs import HeadOutputs
from das_core.model.resnet import resnet
from das_core.model.update import RecursiveUpdate
from das_core.skeletons import get_skeleton

__all__ = ["DAS", "build_backbone"]

logger = logging.getLogger(__name__)

_STRIDE_KEYS = "`strides` (and `fpn.start_level` / `fpn.num_outs`)"


def build_backbone(cfg: ModelConfig) -> Backbone:
    """The backbone named by ``backbone.name``, with pretrained weights from ``backbone.pretrained``."""
    b = cfg.backbone
    model: Backbone
    if b.name == "mspn":
        # Imported here: MSPN is only needed for MSPN configs.
        from das_core.model.mspn import MSPN, load_mspn_pretrained

        mspn = MSPN(num_stages=b.mspn_stages, norm=b.norm)
        if b.pretrained:
            # MSPN's own loader also maps torchvision ResNet-50 weights onto every stage's down path.
            load_mspn_pretrained(mspn, b.pretrained)
        if cfg.compat == "official":
            # The official MSPN never applies its frozen_stages (DAS_SPEC §11.15): everything trains.
            logger.info("compat=official: backbone.frozen_stages=%d not applied to MSPN", b.frozen_stages)
        else:
            mspn.freeze(b.frozen_stages)
        return mspn
    elif b.name.startswith("resnet"):
        model = resnet(b.name, frozen_stages=b.frozen_stages, norm=b.norm, num_stages=b.num_stages)
    else:  # pragma: no cover - the config's Literal already rejects this
        raise ConfigError(f"backbone.name: unknown backbone {b.name!r}")
    if b.pretrained:
        load_pretrained_backbone(model, b.pretrained)
    return model


def _autocast_enabled(device_type: str) -> bool:
    try:
        return bool(torch.is_autocast_enabled(device_type))
    except TypeError:  # torch < 2.4: no device argument
        return bool(torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled())


class DAS(nn.Module):
    """The DAS network. ``forward(images (B, 3, H, W) normalised, padded) -> HeadOutputs``.

    Same return type in train and eval; ``offsets_init`` (U⁰) only in training mode. Under autocast the
    backbone and FPN follow autocast, the head and update run in float32 (DAS_SPEC §4.4).

    Args:
        backbone: a :class:`Backbone` (C2..C5 + ``feature_info``).
        fpn: an :class:`FPN` built on ``backbone.feature_info``.
        head: the shared :class:`DASHead`.
        update: a :class:`RecursiveUpdate`, or None (``update.mode: none``: outputs are U⁰).
        strides: the declared level strides (``ModelConfig.strides``); must equal ``fpn.strides``.
    """

    def __init__(
        self, *, backbone: Backbone, fpn: FPN, head: DASHead, update: RecursiveUpdate | None, strides: tuple[int, ...]
    ) -> None:
        super().__init__()
        strides = tuple(int(s) for s in strides)
        if fpn.strides != strides:
            raise ConfigError(
                f"strides: config declares {list(strides)} but backbone strides "
                f"{[f.stride for f in backbone.feature_info]} through the FPN give {list(fpn.strides)}; "
                f"fix {_STRIDE_KEYS}"
            )
        if len(head.scales) != len(strides):
            raise ConfigError(f"strides: {len(strides)} levels but the head has {len(head.scales)} level scales")
        self.backbone = backbone
        self.fpn = fpn
        self.head = head
        self.update = update
        self._strides = strides
        self._sizes_checked = False
        # Training keeps the head and update in float32 under autocast (DAS_SPEC §4.4: stable losses).
        # Inference backends at fp16/bf16 clear this flag: the head is ~2/3 of the FLOPs, and its outputs
        # (offsets in stride units, Z/f) lose < 0.5 px / < 1 mm per metre; sampling positions stay float32.
        self.fp32_head = True

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> DAS:
        skeleton = get_skeleton(cfg.skeleton)
        backbone = build_backbone(cfg)
        f = cfg.fpn
        fpn = FPN(
            in_info=backbone.feature_info,
            out_channels=f.out_channels,
            start_level=f.start_level,
            num_outs=f.num_outs,
            extra_convs_on=f.extra_convs_on,
            relu_before_extra_convs=f.relu_before_extra_convs,
            norm=f.norm,
        )
        h = cfg.head
        head = DASHead(
            in_channels=f.out_channels,
            num_joints=skeleton.num_joints,
            root_index=skeleton.root,
            num_levels=f.num_outs,
            feat_channels=h.feat_channels,
            stacked_convs=h.stacked_convs,
            use_dcn=h.use_dcn,
            num_groups=h.num_groups,
            centerness_channels=h.centerness_channels,
        )
        u = cfg.update
        update = None
        if u.mode != "none":
            update = RecursiveUpdate(
                in_channels=h.feat_channels,
                num_joints=skeleton.num_joints,
                root_index=skeleton.root,
                num_layers=u.num_layers,
                num_points=u.num_points,
                mode=u.mode,
                use_dcn=u.use_dcn,
                num_groups=h.num_groups,
            )
        return cls(backbone=backbone, fpn=fpn, head=head, update=update, strides=cfg.strides)

    @property
    def strides(self) -> tuple[int, ...]:
        """Stride of each output level in network-input pixels (verified against the feature maps)."""
        return self._strides

    def _check_sizes(self, input_hw: tuple[int, int], pyramid: list[Tensor]) -> None:
        """Every level l must be ⌈H/S_l⌉ × ⌈W/S_l⌉ (stride-2 convs with padding 1 round up)."""
        hgt, wid = input_hw
        for level, (x, s) in enumerate(zip(pyramid, self._strides, strict=True)):
            h, w = int(x.shape[-2]), int(x.shape[-1])
            if (h, w) != (math.ceil(hgt / s), math.ceil(wid / s)):
                raise ConfigError(
                    f"strides: level {level} is {h}×{w} for a {hgt}×{wid} input (stride ≈ {hgt / h:g}), "
                    f"but the config declares stride {s}; fix {_STRIDE_KEYS}"
                )
        self._sizes_checked = True

    def forward_level(self, x: Tensor, level: int) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Head + update on one FPN level x (B, C, H, W).

        Returns ``(cls_logits, centerness_logits, root_depth, offsets U^L, sigma, offsets_init U⁰)``, the
        per-level entries of :class:`HeadOutputs`. Levels are independent given the pyramid, which lets an
        inference engine run them concurrently.
        """
        keep_fp32 = self.fp32_head and _autocast_enabled(x.device.type)
        fp32 = torch.autocast(x.device.type, enabled=False) if keep_fp32 else contextlib.nullcontext()
        with fp32:
            out = self.head.forward_level(x.float() if keep_fp32 else x, level)
            final = out.offsets if self.update is None else self.update(out.pose_feat, out.offsets)
        return out.cls_logits, out.centerness_logits, out.root_depth, final, out.sigma, out.offsets

    def forward_pyramid(self, images: Tensor) -> list[Tensor]:
        """Backbone + FPN: images (B, 3, H, W) → L × (B, C, H_l, W_l), sizes checked at the first call."""
        pyramid = self.fpn(self.backbone(images))
        if not self._sizes_checked and not torch.jit.is_tracing():  # type: ignore[attr-defined]
            self._check_sizes((int(images.shape[-2]), int(images.shape[-1])), pyramid)
        return pyramid

    def forward(self, images: Tensor) -> HeadOutputs:
        per_level = [self.forward_level(x, level) for level, x in enumerate(self.forward_pyramid(images))]
        cls_l, ctr_l, depth_l, off_l, sigma_l, init_l = (list(t) for t in zip(*per_level, strict=True))
        return HeadOutputs(
            cls_logits=cls_l,
            centerness_logits=ctr_l,
            root_depth=depth_l,
            offsets=off_l,
            sigma=sigma_l,
            offsets_init=init_l if self.training else None,
            strides=self._strides,
        )
