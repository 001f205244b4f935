"""Recursive multi-source update (das_core/model/update.py) against a per-cell loop of DAS_SPEC §4.5."""

from __future__ import annotations

import pytest
import torch
from model_reference import bilinear_grid_units
from torch import nn

from das_core.model.update import RecursiveUpdate

K, M, ROOT, C, H, W = 2, 2, 1, 8, 3, 4


def _make(mode: str, num_layers: int = 1, use_dcn: bool = False) -> RecursiveUpdate:
    torch.manual_seed(0)
    upd = RecursiveUpdate(
        in_channels=C, num_joints=K, root_index=ROOT, num_layers=num_layers, num_points=M, mode=mode,
        use_dcn=use_dcn, num_groups=4,
    )
    # Large weights so that displacements reach neighbouring cells and outside the map.
    for m in upd.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.6)
            if m.bias is not None:
                nn.init.normal_(m.bias, 0.0, 0.5)
    return upd


def _loop_layer(layer, feat, offsets, multi):
    """One layer, per cell and joint, straight from DAS_SPEC §4.5 steps a–f."""
    feat = feat + layer.refine(feat)
    gate = torch.sigmoid(layer.update_weight(feat))
    blended = (1 - gate) * offsets + gate * layer.update_value(feat)
    if multi:
        delta, conf = layer.sampling_offset(feat), layer.sampling_conf(feat)
    b = offsets.shape[0]
    out = torch.zeros(b, 3 * K, H, W, dtype=torch.float64)
    for n in range(b):
        for k in range(K):
            u_k = blended[n, 3 * k : 3 * k + 3].detach()
            for i in range(H):
                for j in range(W):
                    px, py = j + 0.5, i + 0.5
                    ax, ay = float(u_k[0, i, j]), float(u_k[1, i, j])
                    if not multi:
                        val = bilinear_grid_units(u_k, px + ax, py + ay)
                        out[n, 3 * k : 3 * k + 3, i, j] = val + torch.tensor([ax, ay, 0.0], dtype=torch.float64)
                        continue
                    rs = []
                    for m in range(M):
                        d_km = delta[n, 2 * M * k + 2 * m : 2 * M * k + 2 * m + 2].detach()
                        dt = bilinear_grid_units(d_km, px + ax, py + ay)
                        rs.append((ax + float(dt[0]), ay + float(dt[1])))
                    for m in range(M):
                        d = delta[n, 2 * M * k + 2 * m : 2 * M * k + 2 * m + 2, i, j]
                        rs.append((float(d[0]), float(d[1])))
                    cands, logits = [], []
                    for rx, ry in rs:
                        cands.append(bilinear_grid_units(u_k, px + rx, py + ry) + torch.tensor([rx, ry, 0.0], dtype=torch.float64))
                        logits.append(bilinear_grid_units(conf[n, 3 * k : 3 * k + 3].detach(), px + rx, py + ry))
                    wts = torch.softmax(torch.stack(logits), dim=0)  # (2M, 3): per axis over samples
                    out[n, 3 * k : 3 * k + 3, i, j] = (wts * torch.stack(cands)).sum(0)
    out[:, 3 * ROOT + 2] = 0.0
    return feat, out.float()


@pytest.mark.parametrize("sampler", ["grid_sample", "gather"])
@pytest.mark.parametrize("mode", ["multi", "single"])
def test_update_matches_per_cell_loop_reference(mode, sampler):
    upd = _make(mode, num_layers=2).eval()
    upd.sampler = sampler
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(2, C, H, W, generator=g)
    u0 = 1.5 * torch.randn(2, 3 * K, H, W, generator=g)
    u0[:, 3 * ROOT + 2] = 0.0
    with torch.no_grad():
        got = upd(feat, u0)
        f, ref = upd.reduction(feat), u0
        for layer in upd.layers:
            f, ref = _loop_layer(layer, f, ref, multi=(mode == "multi"))
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
    assert torch.all(got[:, 3 * ROOT + 2] == 0)


def test_single_mode_has_no_sampling_convs_and_multi_has_official_widths():
    single, multi = _make("single"), _make("multi")
    assert not hasattr(single.layers[0], "sampling_offset")
    assert multi.layers[0].sampling_offset.out_channels == K * M * 2
    assert multi.layers[0].sampling_conf.out_channels == 3 * K


def test_gradients_flow_into_offsets_features_and_sample_positions():
    upd = _make("multi", use_dcn=True).train()
    g = torch.Generator().manual_seed(2)
    feat = torch.randn(1, C, H, W, generator=g, requires_grad=True)
    u0 = (1.5 * torch.randn(1, 3 * K, H, W, generator=g)).requires_grad_()
    upd(feat, u0).square().sum().backward()
    assert u0.grad is not None and u0.grad.abs().sum() > 0
    assert feat.grad is not None and feat.grad.abs().sum() > 0
    layer = upd.layers[0]
    # sampling_offset only influences the result through the sample positions.
    assert layer.sampling_offset.weight.grad.abs().sum() > 0
    assert layer.refine.conv.conv_offset.weight.grad.abs().sum() > 0  # DCN sample positions


def test_update_runs_in_float32_under_autocast():
    upd = _make("multi")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = upd(torch.randn(1, C, H, W), torch.randn(1, 3 * K, H, W))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_gather_sampler_equals_grid_sample_on_channels_last_maps_and_far_points():
    from das_core.model.update import sample_grid_units, sample_joint_points

    g = torch.Generator().manual_seed(3)
    maps = torch.randn(2, H, W, K, 3, generator=g)  # (B, H, W, K, C)
    pos = torch.randn(2, K, 7, 2, generator=g) * 3 + 2
    pos[0, 0, 0] = torch.tensor([1e9, -1e9])  # far outside: reads zero, no overflow
    pos[0, 0, 1] = torch.tensor([W + 0.2, 0.7])  # half a cell past the border: partly zero
    got = sample_joint_points(maps, pos)
    ref = sample_grid_units(maps.permute(0, 3, 4, 1, 2).reshape(2 * K, 3, H, W), pos.reshape(2 * K, 7, 1, 2))
    ref = ref.reshape(2, K, 3, 7).permute(0, 1, 3, 2)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert got[0, 0, 0].abs().max() == 0


def test_update_gives_the_same_offsets_with_either_sampler_and_memory_format():
    upd = _make("multi", num_layers=2).eval()
    g = torch.Generator().manual_seed(4)
    feat, u0 = torch.randn(2, C, H, W, generator=g), 1.5 * torch.randn(2, 3 * K, H, W, generator=g)
    with torch.no_grad():
        ref = upd(feat, u0)
        upd.sampler = "gather"
        upd = upd.to(memory_format=torch.channels_last)
        got = upd(feat.contiguous(memory_format=torch.channels_last), u0.contiguous(memory_format=torch.channels_last))
        upd.sampler = "bilinear"
        with pytest.raises(ValueError, match="sampler"):
            upd(feat, u0)
    torch.testing.assert_close(got, ref, atol=1e-4, rtol=1e-4)
