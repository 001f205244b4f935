"""FPN (das_core/model/fpn.py): strides from the backbone record, extra convs and where their ReLU goes."""

from __future__ import annotations

import pytest
import torch

from das_core.model.backbone import FeatureInfo
from das_core.model.fpn import FPN

INFO = [FeatureInfo(4, 4), FeatureInfo(6, 8), FeatureInfo(8, 16), FeatureInfo(10, 32)]


def _features(h: int = 64, w: int = 96) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, f.channels, h // f.stride, w // f.stride, generator=g) for f in INFO]


def _inputs_of(fpn: FPN, idx: int, feats: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    seen: list[torch.Tensor] = []
    handle = fpn.fpn_convs[idx].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    outs = fpn(feats)
    handle.remove()
    return seen[0], outs


def test_official_layout_start_level_1_one_extra_conv_on_output_without_relu():
    fpn = FPN(in_info=INFO, out_channels=8, start_level=1, num_outs=4, extra_convs_on="output")
    assert fpn.strides == (8, 16, 32, 64) and len(fpn.lateral_convs) == 3 and len(fpn.fpn_convs) == 4
    x, outs = _inputs_of(fpn, 3, _features())
    assert torch.equal(x, outs[2]) and (x < 0).any()  # no ReLU before the first extra conv
    assert [tuple(o.shape) for o in outs] == [(1, 8, 8, 12), (1, 8, 4, 6), (1, 8, 2, 3), (1, 8, 1, 2)]


def test_second_extra_conv_gets_relu_and_input_mode_reads_the_backbone_map():
    feats = _features()
    fpn = FPN(in_info=INFO, out_channels=8, start_level=1, num_outs=5, extra_convs_on="input", norm="bn").eval()
    assert fpn.strides == (8, 16, 32, 64, 128)
    x3, _ = _inputs_of(fpn, 3, feats)
    assert torch.equal(x3, feats[3])
    x4, outs = _inputs_of(fpn, 4, feats)
    torch.testing.assert_close(x4, torch.relu(outs[3]))
    assert fpn.lateral_convs[0].conv.bias is None  # norm → no conv bias


def test_fewer_outputs_than_backbone_levels_and_bad_start_level():
    fpn = FPN(in_info=INFO, out_channels=8, start_level=0, num_outs=2)
    assert fpn.strides == (4, 8)
    assert [o.shape[-1] for o in fpn(_features())] == [24, 12]
    with pytest.raises(ValueError, match="fpn.start_level"):
        FPN(in_info=INFO, start_level=4, num_outs=2)
