"""Shared by the ``das demo`` and ``das infer`` tests: a tiny random checkpoint that "finds" people."""

from __future__ import annotations

from pathlib import Path

import torch

from das_core.checkpoint import save_checkpoint
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
from das_core.model.das import DAS


def tiny_checkpoint(path: Path) -> Path:
    """A tiny random ResNet-18 DAS (64×96 input) whose every cell scores high at a positive depth: persons in
    every frame or image."""
    cfg = ModelConfig(
        strides=(8, 16, 32),
        backbone=BackboneConfig(name="resnet18", frozen_stages=0),
        fpn=FPNConfig(out_channels=32, num_outs=3),
        head=HeadConfig(feat_channels=32, stacked_convs=1, num_groups=8, centerness_channels=16),
        update=UpdateConfig(num_layers=1, num_points=2),
        targets=TargetConfig(regress_ranges=((-1.0, 64.0), (64.0, 128.0), (128.0, 1e8))),
        decode=DecodeConfig(nms_pre=30, nms_post=4),
        input=InputConfig(short_side=64, long_side=96),
    )
    torch.manual_seed(0)
    state = DAS.from_config(cfg).state_dict()
    state["head.conv_cls.bias"].fill_(6.0)
    state["head.conv_centerness.bias"].fill_(6.0)
    state["head.conv_depth.bias"].fill_(100.0)  # Z/f · depth_factor: people a few metres away, not behind
    save_checkpoint(path, state, cfg, {"recipe": "random, for tests"})
    return path
