"""DCNv2 (das_core/model/dcn.py) against a per-pixel loop, a plain conv, and its official layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from model_reference import bilinear

from das_core.model.dcn import ModulatedDeformConv2d, modulated_deform_conv2d


def _loop_dcn(x, offset, mask, weight, bias, stride, padding, dilation):
    b, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    ho, wo = offset.shape[-2:]
    out = torch.zeros(b, o, ho, wo, dtype=torch.float64)
    for n in range(b):
        for i in range(ho):
            for j in range(wo):
                acc = torch.zeros(o, dtype=torch.float64)
                for t in range(kh * kw):
                    row, col = divmod(t, kw)
                    y = i * stride - padding + row * dilation + float(offset[n, 2 * t, i, j])
                    xx = j * stride - padding + col * dilation + float(offset[n, 2 * t + 1, i, j])
                    val = bilinear(x[n], y, xx) * float(mask[n, t, i, j])
                    acc += weight[:, :, row, col].double() @ val
                out[n, :, i, j] = acc + (bias.double() if bias is not None else 0.0)
    return out


def test_dcn_matches_per_pixel_loop_with_offsets_and_masks():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=g)
    for stride, padding, dilation in [(1, 1, 1), (2, 1, 1), (1, 2, 2)]:
        ho = (5 + 2 * padding - 2 * dilation - 1) // stride + 1
        wo = (6 + 2 * padding - 2 * dilation - 1) // stride + 1
        offset = 2.5 * torch.randn(2, 18, ho, wo, generator=g)  # reaches outside the map too
        mask = torch.rand(2, 9, ho, wo, generator=g)
        weight = torch.randn(4, 3, 3, 3, generator=g)
        bias = torch.randn(4, generator=g)
        got = modulated_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation)
        ref = _loop_dcn(x, offset, mask, weight, bias, stride, padding, dilation)
        torch.testing.assert_close(got.double(), ref, atol=1e-4, rtol=1e-4)


def test_dcn_with_zero_offsets_and_unit_mask_is_a_plain_conv():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 4, 7, 5, generator=g)
    weight = torch.randn(6, 4, 3, 3, generator=g)
    bias = torch.randn(6, generator=g)
    got = modulated_deform_conv2d(x, torch.zeros(1, 18, 7, 5), torch.ones(1, 9, 7, 5), weight, bias)
    torch.testing.assert_close(got, F.conv2d(x, weight, bias, padding=1), atol=1e-5, rtol=1e-5)


def test_fresh_layer_is_half_a_conv_and_has_official_parameter_names():
    # conv_offset starts at zero: offsets 0, masks sigmoid(0) = 0.5 (OFFICIAL_CHECKPOINT.md §6 layout).
    layer = ModulatedDeformConv2d(4, 6)
    assert sorted(n for n, _ in layer.named_parameters()) == ["bias", "conv_offset.bias", "conv_offset.weight", "weight"]
    assert layer.conv_offset.out_channels == 27
    x = torch.randn(1, 4, 6, 6, generator=torch.Generator().manual_seed(2))
    expected = 0.5 * F.conv2d(x, layer.weight, None, padding=1) + layer.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)


def test_offset_channels_are_dy_then_dx_per_tap_and_masks_follow():
    # A +1 Δx on every tap of a 1-channel identity-like kernel shifts the output one pixel right.
    layer = ModulatedDeformConv2d(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0, 1, 1] = 1.0  # centre tap t = 4 only
        layer.conv_offset.bias[2 * 4 + 1] = 1.0  # Δx of tap 4
        layer.conv_offset.bias[18 + 4] = 50.0  # mask logit of tap 4 → sigmoid ≈ 1
    x = torch.arange(20.0).view(1, 1, 4, 5)
    out = layer(x)
    torch.testing.assert_close(out[0, 0, :, :4], x[0, 0, :, 1:], atol=1e-4, rtol=0)
    torch.testing.assert_close(out[0, 0, :, 4], torch.zeros(4), atol=1e-4, rtol=0)  # reads outside → 0


def test_gradients_reach_offsets_masks_input_and_weights():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 2, 5, 5, generator=g, requires_grad=True)
    offset = (0.7 * torch.randn(1, 18, 5, 5, generator=g)).requires_grad_()
    mask = torch.rand(1, 9, 5, 5, generator=g).requires_grad_()
    weight = torch.randn(3, 2, 3, 3, generator=g, requires_grad=True)
    modulated_deform_conv2d(x, offset, mask, weight).square().sum().backward()
    for t in (x, offset, mask, weight):
        assert t.grad is not None and t.grad.abs().sum() > 0
