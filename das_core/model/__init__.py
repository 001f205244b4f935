"""The DAS network: backbones, FPN, shared head, recursive update, DCNv2 (DAS_SPEC §4)."""

from __future__ import annotations

from das_core.model.backbone import Backbone, FeatureInfo, load_pretrained_backbone
from das_core.model.das import DAS
from das_core.model.outputs import DenseOutputs, HeadOutputs

__all__ = ["DAS", "Backbone", "DenseOutputs", "FeatureInfo", "HeadOutputs", "load_pretrained_backbone"]
