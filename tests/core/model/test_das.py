"""DAS network (das_core/model/das.py): stride bookkeeping, output contract, head conventions."""

from __future__ import annotations

import math

import pytest
import torch

from das_core.config import ConfigError, ModelConfig, config_from_dict
from das_core.model import DAS, HeadOutputs
from das_core.model.backbone import Backbone, FeatureInfo
from das_core.skeletons import get_skeleton


def tiny_config(**over) -> ModelConfig:
    data = {
        "strides": [8, 16, 32, 64],
        "backbone": {"name": "resnet18", "frozen_stages": 1},
        "fpn": {"out_channels": 16, "start_level": 1, "num_outs": 4},
        "head": {"feat_channels": 16, "stacked_convs": 1, "num_groups": 4, "centerness_channels": 8},
        "update": {"mode": "multi", "num_layers": 1, "num_points": 2},
        "targets": {"regress_ranges": [[-1, 48], [48, 96], [96, 192], [192, 1e8]]},
    }
    for key, value in over.items():
        section, _, name = key.partition("__")
        if name:
            data[section] = {**data.get(section, {}), name: value}
        else:
            data[section] = value
    return config_from_dict(ModelConfig, data)


@pytest.fixture(scope="module")
def tiny_model() -> DAS:
    torch.manual_seed(0)
    return DAS.from_config(tiny_config())


def test_forward_returns_head_outputs_with_declared_strides_and_shapes(tiny_model):
    model = tiny_model.train()
    out = model(torch.randn(2, 3, 64, 96))
    assert isinstance(out, HeadOutputs)
    assert out.strides == model.strides == (8, 16, 32, 64)
    k = get_skeleton("panoptic15").num_joints
    for level, s in enumerate(out.strides):
        hw = (math.ceil(64 / s), math.ceil(96 / s))
        assert out.cls_logits[level].shape == (2, 1, *hw)
        assert out.centerness_logits[level].shape == (2, 1, *hw)
        assert out.root_depth[level].shape == (2, 1, *hw)
        assert out.offsets[level].shape == out.sigma[level].shape == out.offsets_init[level].shape == (2, 3 * k, *hw)


def test_eval_returns_no_offsets_init(tiny_model):
    with torch.no_grad():
        assert tiny_model.eval()(torch.randn(1, 3, 64, 32)).offsets_init is None


def test_root_depth_offset_is_zero_and_root_d_sigma_is_sigmoid_one(tiny_model):
    model = tiny_model.train()
    root = get_skeleton("panoptic15").root
    out = model(torch.randn(1, 3, 64, 32))
    for level in range(4):
        assert torch.all(out.offsets[level][:, 3 * root + 2] == 0)
        assert torch.all(out.offsets_init[level][:, 3 * root + 2] == 0)
        torch.testing.assert_close(out.sigma[level][:, 3 * root + 2], torch.full_like(out.sigma[level][:, 0], 1 / (1 + math.exp(-1))))
        assert torch.all((out.sigma[level] > 0) & (out.sigma[level] <= 1))
    # Prior-probability init of the centre logit (DAS_SPEC §4.4).
    assert torch.allclose(model.head.conv_cls.bias, torch.tensor([-math.log(99.0)]))


def test_stride_mismatch_in_config_names_the_key():
    cfg = tiny_config(strides=[4, 8, 16, 32])  # start_level 1 gives 8..64
    with pytest.raises(ConfigError, match=r"strides.*fpn.start_level"):
        DAS.from_config(cfg)


class _LyingBackbone(Backbone):
    """Claims strides 4..32 but really downsamples by 8..64: only the first forward can notice."""

    def __init__(self) -> None:
        super().__init__()
        self.feature_info = [FeatureInfo(8, s) for s in (4, 8, 16, 32)]
        self.proj = torch.nn.Conv2d(3, 8, 1)

    def forward(self, x):
        return [torch.nn.functional.avg_pool2d(self.proj(x), s * 2) for s in (4, 8, 16, 32)]


def test_feature_maps_that_disagree_with_declared_strides_fail_at_first_forward():
    from das_core.model.fpn import FPN
    from das_core.model.head import DASHead

    backbone = _LyingBackbone()
    fpn = FPN(in_info=backbone.feature_info, out_channels=8, start_level=1, num_outs=3)
    head = DASHead(in_channels=8, num_joints=3, root_index=0, num_levels=3, feat_channels=8, num_groups=4,
                   centerness_channels=8, stacked_convs=1)
    model = DAS(backbone=backbone, fpn=fpn, head=head, update=None, strides=(8, 16, 32))
    with pytest.raises(ConfigError, match=r"level 0 is 4×4 for a 64×64 input.*stride 8"):
        model(torch.randn(1, 3, 64, 64))


def test_update_modes_none_single_multi_build_and_none_returns_initial_offsets():
    x = torch.randn(1, 3, 64, 32)
    for mode in ("none", "single"):  # multi: the default of tiny_config, used by every other test
        torch.manual_seed(0)
        model = DAS.from_config(tiny_config(update__mode=mode)).train()
        out = model(x)
        assert (model.update is None) == (mode == "none")
        if mode == "none":
            assert all(a is b for a, b in zip(out.offsets, out.offsets_init, strict=True))


def test_dcn_head_and_fpn_variants_build_and_backpropagate():
    cfg = tiny_config(head__use_dcn=True, update__use_dcn=True, fpn__extra_convs_on="input", fpn__norm="bn")
    model = DAS.from_config(cfg).train()
    out = model(torch.randn(2, 3, 32, 32))
    loss = sum(o.square().mean() for o in out.offsets) + sum(c.mean() for c in out.cls_logits)
    loss.backward()
    assert model.head.pose_convs[0].conv.conv_offset.weight.grad is not None
    assert model.update.layers[0].sampling_offset.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad is None  # frozen stem
    assert model.backbone.layer4[0].conv1.weight.grad is not None


def test_head_runs_in_float32_under_autocast(tiny_model):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = tiny_model.eval()(torch.randn(1, 3, 64, 32))
    assert all(o.dtype == torch.float32 for o in out.offsets + out.cls_logits + out.sigma)


def test_channels_last_model_gives_the_same_outputs():
    torch.manual_seed(3)
    model = DAS.from_config(tiny_config(head__use_dcn=True, update__use_dcn=True)).eval()
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        ref = model(x)
        got = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    for a, b in zip(ref.offsets + ref.cls_logits, got.offsets + got.cls_logits, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
