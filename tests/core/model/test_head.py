"""Shared DAS head (das_core/model/head.py): init, per-level scales, root-joint conventions."""

from __future__ import annotations

import math

import torch

from das_core.model.head import DASHead


def _head(**kw) -> DASHead:
    torch.manual_seed(0)
    args = dict(in_channels=8, num_joints=3, root_index=1, num_levels=2, feat_channels=8, stacked_convs=2,
                num_groups=4, centerness_channels=4)
    args.update(kw)
    return DASHead(**args)


def test_initialisation_follows_the_spec():
    head = _head(use_dcn=True)
    assert abs(float(head.conv_offsets.weight.detach().std()) - 0.01) < 0.005
    assert torch.all(head.conv_offsets.bias == 0)
    torch.testing.assert_close(head.conv_cls.bias, torch.tensor([-math.log(99.0)]))
    dcn = head.pose_convs[1].conv
    assert torch.all(dcn.conv_offset.weight == 0) and torch.all(dcn.conv_offset.bias == 0)
    assert all(s.depth.item() == s.uv.item() == s.d.item() == 1.0 for s in head.scales)


def test_level_scales_multiply_uv_and_d_separately_and_sigma_is_unscaled():
    head = _head().eval()
    with torch.no_grad():
        for m in head.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.normal_(m.weight, 0, 0.3)
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        base = head.forward_level(x, 1)
        head.scales[1].uv.fill_(2.0)
        head.scales[1].d.fill_(-3.0)
        head.scales[1].depth.fill_(0.5)
        scaled = head.forward_level(x, 1)
        other_level = head.forward_level(x, 0)
    torch.testing.assert_close(scaled.offsets[:, 0::3], 2 * base.offsets[:, 0::3])
    torch.testing.assert_close(scaled.offsets[:, 1::3], 2 * base.offsets[:, 1::3])
    torch.testing.assert_close(scaled.offsets[:, 2::3], -3 * base.offsets[:, 2::3])
    torch.testing.assert_close(scaled.root_depth, 0.5 * base.root_depth)
    torch.testing.assert_close(scaled.sigma, base.sigma)
    torch.testing.assert_close(other_level.offsets, base.offsets)  # scales are per level
    assert torch.all(scaled.offsets[:, 3 * 1 + 2] == 0)
    torch.testing.assert_close(scaled.sigma[:, 5], torch.full_like(scaled.sigma[:, 5], 1 / (1 + math.exp(-1))))
    assert (base.offsets[:, 5] == 0).all() and (base.offsets[:, 2] != 0).any()
