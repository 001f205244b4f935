"""Flip test: a mirrored input's outputs are mapped back onto the input's cells exactly."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from das_core.camera import Intrinsics
from das_core.config import FPNConfig, InputConfig, ModelConfig, TargetConfig
from das_core.engine.estimator import Estimator
from das_core.engine.flip_test import flip_pad_width, fuse_flipped, mirror_dense, mirrored_input
from das_core.model.dense import cell_grid, level_sizes, to_dense
from das_core.model.outputs import HeadOutputs
from das_core.skeletons import get_skeleton

CFG = ModelConfig(
    strides=(8, 16, 32),
    fpn=FPNConfig(num_outs=3),
    targets=TargetConfig(regress_ranges=((-1.0, 64.0), (64.0, 128.0), (128.0, 1e8))),
    input=InputConfig(short_side=64, long_side=112),
)
SKELETON = get_skeleton(CFG.skeleton)
PERM = SKELETON.flip_permutation()
LEFT = {a for a, _ in SKELETON.flip_pairs}
RIGHT = {b for _, b in SKELETON.flip_pairs}


class MirrorExactModel(nn.Module):
    """A "network" that is exactly right about mirrors, so a correct flip test must change nothing.

    It sees two bright blobs in channel 0 and places a person between them: left joints at the left blob's
    centroid, right joints at the right blob's, the other joints at their midpoint, each a joint-specific
    distance below; depth offsets and sigmas of left / right joints depend on their own blob's height. Every
    cell predicts that same person as offsets from its own centre, and scores fall off with the cell's distance
    from the midpoint. Mirror the image and the left blob becomes the right one: the exact answer for the
    mirror, which a wrong offset sign, shift or joint permutation would not map back onto the original.
    """

    def __init__(self, strides: tuple[int, ...]) -> None:
        super().__init__()
        self.strides = strides

    @staticmethod
    def _blobs(images: Tensor) -> tuple[Tensor, Tensor]:
        mass = images[:, 0].clamp_min(0)  # (B, H, W)
        h, w = mass.shape[-2:]
        xs = torch.arange(w, dtype=mass.dtype).expand(h, w)
        ys = torch.arange(h, dtype=mass.dtype)[:, None].expand(h, w)

        def centroid(m: Tensor) -> Tensor:  # (B, 2) x, y
            total = m.sum(dim=(1, 2))
            return torch.stack([(m * xs).sum(dim=(1, 2)) / total, (m * ys).sum(dim=(1, 2)) / total], dim=1)

        cx = centroid(mass)[:, 0]
        left = mass * (xs[None] < cx[:, None, None])
        return centroid(left), centroid(mass - left)

    def forward(self, images: Tensor) -> HeadOutputs:
        a, b = self._blobs(images)  # (B, 2) each
        mid = 0.5 * (a + b)
        k = SKELETON.num_joints
        drop = torch.tensor([1.5 * min(j, PERM[j]) for j in range(k)])  # px below its anchor; a pair alike
        anchor = torch.stack([a if j in LEFT else b if j in RIGHT else mid for j in range(k)], dim=1)  # (B, K, 2)
        joints = anchor + torch.stack([torch.zeros(k), drop], dim=1)
        height = images.shape[-2]
        own_y = anchor[..., 1] / height  # (B, K) in [0, 1]
        depth_off = torch.where(torch.tensor([j == SKELETON.root for j in range(k)]), 0.0, 0.3 * own_y)
        sig = 0.1 + 0.5 * own_y
        out: dict[str, list[Tensor]] = {n: [] for n in ("cls", "ctr", "z", "off", "sig")}
        for (lh, lw), s in zip(level_sizes(images.shape[-2], images.shape[-1], self.strides), self.strides,
                               strict=True):
            centres = cell_grid(lh, lw, s)  # (h, w, 2)
            uv = (joints[:, None, None] - centres[None, :, :, None]) / s  # (B, h, w, K, 2)
            d = depth_off[:, None, None, :, None].expand(-1, lh, lw, k, 1)
            off = torch.cat([uv, d], dim=-1).reshape(-1, lh, lw, 3 * k).permute(0, 3, 1, 2)
            sg = sig[:, None, None, :, None].expand(-1, lh, lw, k, 3).reshape(-1, lh, lw, 3 * k).permute(0, 3, 1, 2)
            # the mean index of the cell's pixels, S·(j + 0.5) − 0.5: what a mirror maps onto the mirrored cell's
            dist2 = ((centres[None] - 0.5 - mid[:, None, None]) ** 2).sum(-1) / (4.0 * s) ** 2  # (B, h, w)
            out["cls"].append((3.0 - dist2)[:, None])
            out["ctr"].append(torch.full_like(dist2, 2.0)[:, None])
            out["z"].append(torch.full_like(dist2, 50.0)[:, None])
            out["off"].append(off.contiguous())
            out["sig"].append(sg.contiguous())
        return HeadOutputs(out["cls"], out["ctr"], out["z"], out["off"], out["sig"], None, self.strides)


def _two_blob_input(width: int = 112, height: int = 64) -> Tensor:
    x = torch.zeros(1, 3, height, width)
    x[0, 0, 20:26, 30:36] = 1.0
    x[0, 0, 12:20, 70:78] = 2.0  # the blobs at different heights: left and right joints differ
    return x


def test_a_model_that_is_exact_about_mirrors_gives_the_same_outputs_with_and_without_the_flip_test() -> None:
    model = MirrorExactModel(CFG.strides)
    x = _two_blob_input()
    plain = to_dense(model(mirrored_input(x, CFG.strides)[:1]), CFG.depth_factor)
    both = mirrored_input(x, CFG.strides)
    fused = fuse_flipped(to_dense(model(both), CFG.depth_factor), *both.shape[-2:], CFG.strides, PERM)
    for name, p, f in zip(plain._fields, plain, fused, strict=True):
        torch.testing.assert_close(f, p, atol=1e-5, rtol=1e-5, msg=name)


def test_mirroring_back_negates_the_x_offset_and_shifts_it_by_one_pixel_in_stride_units() -> None:
    # u = −u' − 1/S: x ↦ W − 1 − x moves pixel centres by one pixel against the cell centres' S·(j + 0.5)
    model = MirrorExactModel(CFG.strides)
    both = mirrored_input(_two_blob_input(), CFG.strides)
    dense = to_dense(model(both), CFG.depth_factor)
    back = mirror_dense(type(dense)._make(t[1:] for t in dense), *both.shape[-2:], CFG.strides, PERM)
    first = level_sizes(*both.shape[-2:], CFG.strides)[0]
    n = first[0] * first[1]
    mirrored_u = dense.offsets[1, :n].reshape(*first, -1, 3).flip(1).reshape(n, -1, 3)[:, PERM, 0]
    torch.testing.assert_close(back.offsets[0, :n, :, 0], -mirrored_u - 1.0 / CFG.strides[0])
    torch.testing.assert_close(back.offsets[0, :, :, 0], dense.offsets[0, :, :, 0], atol=1e-5, rtol=0)


def test_the_input_is_padded_on_the_right_to_a_multiple_of_the_coarsest_stride() -> None:
    assert flip_pad_width(96, (8, 16, 32)) == 96
    assert flip_pad_width(100, (8, 16, 32)) == 128
    x = torch.randn(2, 3, 64, 100)
    both = mirrored_input(x, (8, 16, 32))
    assert both.shape == (4, 3, 64, 128)
    torch.testing.assert_close(both[:2, ..., :100], x)
    assert bool((both[:2, ..., 100:] == 0).all())
    torch.testing.assert_close(both[2:], both[:2].flip(-1))


def test_a_width_whose_cells_do_not_mirror_onto_cells_is_an_error_naming_the_width() -> None:
    model = MirrorExactModel(CFG.strides)
    x = torch.zeros(2, 3, 64, 80)  # 80 = 2.5 cells of 32
    x[:, 0, 20:26, 10:16] = 1.0
    x[:, 0, 20:26, 50:56] = 1.0
    dense = to_dense(model(x), CFG.depth_factor)
    with pytest.raises(ValueError, match="padded width 80 .*stride.*32.*pad to 96"):
        fuse_flipped(dense, 64, 80, CFG.strides, PERM)


def _frame(width: int) -> np.ndarray:
    img = np.zeros((64, width, 3), np.uint8)
    img[20:26, 30:36] = 255
    img[12:20, 70:78] = 200
    return img


class _Counting(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, images: Tensor) -> HeadOutputs:
        self.shapes.append(tuple(images.shape))
        return self.inner(images)  # type: ignore[no-any-return]


def test_the_estimator_with_flip_test_runs_each_frame_and_its_mirror_in_one_call_and_finds_the_same_person() -> None:
    # 100 px wide: padded to 104 by the preprocessing (size divisor 8), to 128 for the mirror
    cfg = replace(CFG, input=InputConfig(short_side=64, long_side=100, size_divisor=8))
    camera = Intrinsics(90.0, 90.0, 49.5, 31.5)
    counting = _Counting(MirrorExactModel(cfg.strides))
    plain = Estimator.from_model(counting, cfg, device="cpu")(_frame(100), camera)
    flipped_est = Estimator.from_model(counting, cfg, device="cpu", flip_test=True)
    assert flipped_est.flip_test and not flipped_est.uses_frame_graphs
    fused = flipped_est(_frame(100), camera)
    assert counting.shapes == [(1, 3, 64, 104), (2, 3, 64, 128)]
    assert len(plain) >= 1 and len(fused) == len(plain)
    np.testing.assert_allclose(fused.joints_2d, plain.joints_2d, atol=1e-3)
    np.testing.assert_allclose(fused.joints_3d, plain.joints_3d, atol=1e-4)
    np.testing.assert_allclose(fused.scores, plain.scores, atol=1e-4)


def test_with_an_ordinary_network_the_flip_test_changes_the_prediction() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 3 + 6 * SKELETON.num_joints, 3, padding=1)

    class Asymmetric(nn.Module):
        def forward(self, images: Tensor) -> HeadOutputs:
            maps = [conv(F.avg_pool2d(images, s, ceil_mode=True)) for s in CFG.strides]
            k3 = 3 * SKELETON.num_joints
            return HeadOutputs([m[:, :1] + 3 for m in maps], [m[:, 1:2] + 3 for m in maps],
                               [F.softplus(m[:, 2:3]) * 100 for m in maps], [m[:, 3:3 + k3] for m in maps],
                               [torch.sigmoid(m[:, 3 + k3:]) for m in maps], None, CFG.strides)

    x = torch.randn(1, 3, 64, 96)
    both = mirrored_input(x, CFG.strides)
    dense = to_dense(Asymmetric()(both), CFG.depth_factor)
    fused = fuse_flipped(dense, 64, 96, CFG.strides, PERM)
    assert not torch.allclose(fused.offsets, dense.offsets[:1], atol=1e-3)
    torch.testing.assert_close(fused.scores, 0.5 * (dense.scores[:1] + mirror_dense(
        type(dense)._make(t[1:] for t in dense), 64, 96, CFG.strides, PERM).scores))
