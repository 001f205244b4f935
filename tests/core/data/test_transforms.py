"""Augmentation keeps 2.5D labels consistent with the 3D scene (DAS_SPEC §3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from das_core.camera import Intrinsics, ResizeRecord
from das_core.config import AugmentConfig
from das_core.data.transforms import (
    AugmentedSample,
    affine_zoom,
    augment,
    horizontal_flip,
    photometric_distortion,
    resize_for_test,
    resize_keep_ratio,
)
from das_core.pose25d import pose25d_from_3d
from das_core.skeletons import get_skeleton


def lift_to_3d(joints_uv, root_depth, joints_dz, camera):  # noqa: ANN001, ANN201 - test oracle
    """Inverse of ``pose25d_from_3d``: ``Z_root = root_depth · f``, ``Z_k = Z_root + dz_k``, back-project."""
    z = np.asarray(root_depth, np.float64)[..., None] * camera.focal + np.asarray(joints_dz, np.float64)
    return camera.backproject(joints_uv, z)


SK = get_skeleton("panoptic15")
CAM = Intrinsics(fx=300.0, fy=310.0, cx=150.0, cy=95.0)
W, H = 320, 200


def _scene(n: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    root = np.stack([rng.uniform(-0.8, 0.8, n), rng.uniform(-0.2, 0.2, n), rng.uniform(3, 6, n)], -1)
    return root[:, None] + rng.uniform(-0.25, 0.25, (n, 15, 3)) * [1, 3, 1]


def _sample(j3: np.ndarray) -> AugmentedSample:
    gt = pose25d_from_3d(j3, np.ones(j3.shape[:2], bool), CAM, SK.root, W, H)
    img = np.random.default_rng(1).uniform(0, 255, (H, W, 3)).astype(np.float32)
    return AugmentedSample(img, gt, np.eye(3), ResizeRecord(W, H, W, H, W, H))


def _lift_through(sample: AugmentedSample) -> np.ndarray:
    """Lift network-pixel labels with the effective camera: original pixels via transform⁻¹, f_eff = f·sqrt|det|."""
    inv = np.linalg.inv(sample.transform)
    uv_orig = sample.gt.joints_uv @ inv[:2, :2].T + inv[:2, 2]
    det = abs(np.linalg.det(sample.transform[:2, :2]))
    z_root = sample.gt.root_depth * CAM.focal * math.sqrt(det)
    return CAM.backproject(uv_orig, z_root[:, None] + sample.gt.joints_dz)


def test_resize_divides_root_depth_by_sqrt_scale_and_lifts_back():
    j3 = _scene()
    s = resize_keep_ratio(_sample(j3), 1333, 100)
    sx, sy = s.record.sx, s.record.sy
    assert s.image.shape[:2] == (100, 160)
    np.testing.assert_allclose(s.gt.root_depth, j3[:, 2, 2] / CAM.focal / math.sqrt(sx * sy), rtol=1e-5)
    # the resized camera lifts the resized labels to the same 3D points
    back = lift_to_3d(s.gt.joints_uv, s.gt.root_depth, s.gt.joints_dz, CAM.scaled(sx, sy))
    np.testing.assert_allclose(back, j3, atol=1e-4)


def test_flip_mirrors_the_scene_and_swaps_left_right():
    j3 = _scene()
    s = horizontal_flip(_sample(j3), SK)
    cam_f = Intrinsics(CAM.fx, CAM.fy, W - 1 - CAM.cx, CAM.cy)
    back = lift_to_3d(s.gt.joints_uv, s.gt.root_depth, s.gt.joints_dz, cam_f)
    mirrored = j3[:, SK.flip_permutation()] * [-1, 1, 1]
    np.testing.assert_allclose(back, mirrored, atol=1e-4)
    assert s.flipped


def test_zoom_out_multiplies_every_root_depth_and_keeps_dz():
    j3 = _scene()
    base = _sample(j3)
    s = affine_zoom(base, 0.0, 1.25, (0.0, 0.0), (0, 0, 0))
    np.testing.assert_allclose(s.gt.root_depth, base.gt.root_depth * 1.25, rtol=1e-6)
    np.testing.assert_array_equal(s.gt.joints_dz, base.gt.joints_dz)
    bug = affine_zoom(base, 0.0, 1.25, (0.0, 0.0), (0, 0, 0), official_depth_bug=True)
    np.testing.assert_allclose(bug.gt.root_depth[0], base.gt.root_depth[0] * 1.25, rtol=1e-6)
    np.testing.assert_array_equal(bug.gt.root_depth[1:], base.gt.root_depth[1:])
    np.testing.assert_allclose(bug.gt.joints_dz[0], base.gt.joints_dz[0] * 1.25, rtol=1e-6)


def test_resize_flip_zoom_rotation_chain_lifts_to_the_original_scene():
    j3 = _scene(4, seed=3)
    s = resize_keep_ratio(_sample(j3), 1333, 160)
    s = horizontal_flip(s, SK)
    s = affine_zoom(s, 0.1, 0.8, (0.05, -0.03), (0, 0, 0))
    back = _lift_through(s)
    # mirror is undone by transform⁻¹ on x; joint order stays swapped
    np.testing.assert_allclose(back, j3[:, SK.flip_permutation()], atol=1e-3)


def test_zoom_warps_image_content_with_the_labels():
    img = np.zeros((H, W, 3), np.float32)
    img[90:100, 200:210] = 255.0
    base = AugmentedSample(img, pose25d_from_3d(_scene(1), np.ones((1, 15), bool), CAM, SK.root, W, H),
                           np.eye(3), ResizeRecord(W, H, W, H, W, H))
    s = affine_zoom(base, 0.2, 0.7, (0.1, 0.1), (0, 0, 0))
    p = s.transform @ np.array([204.5, 94.5, 1.0])
    ys, xs = np.nonzero(s.image[..., 0] > 128)
    assert abs(xs.mean() - p[0]) < 1.0 and abs(ys.mean() - p[1]) < 1.0


def test_joints_leaving_become_invisible_and_centre_leaving_drops_the_person():
    j3 = _scene(3)
    cfg = AugmentConfig(short_side_range=(200, 200), long_side=1333, flip_prob=0.0, photometric=False,
                        scale_range=(0.3, 0.3), trans_std=0.0)
    out = augment(_sample(j3).image, _sample(j3).gt, cfg, SK, np.random.default_rng(0))
    h, w = out.image.shape[:2]
    assert (out.image.shape[:2]) == (H, W)
    uv = out.gt.joints_uv
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= w - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= h - 0.5)
    assert not np.any(out.gt.visible & ~inside)
    c = out.gt.centers
    assert np.all((c[:, 0] >= -0.5) & (c[:, 0] <= w - 0.5) & (c[:, 1] >= -0.5) & (c[:, 1] <= h - 0.5))
    assert len(out.gt) < 3  # a 0.3 zoom-in pushes at least one of the spread-out people off the canvas


def test_photometric_keeps_shape_and_uint8_and_changes_pixels():
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3)).astype(np.uint8)
    outs = [photometric_distortion(img, np.random.default_rng(i), (0.7, 1.3), (0.7, 1.3), 18) for i in range(5)]
    assert all(o.shape == img.shape and o.dtype == np.uint8 for o in outs)
    assert any(not np.array_equal(o, img) for o in outs)


def test_photometric_saturates_like_a_sensor_instead_of_wrapping():
    img = np.full((4, 4, 3), 250, np.uint8)
    # seed chosen so that the brightness step fires; every output pixel must stay at the top, not wrap to 0..
    outs = [photometric_distortion(img, np.random.default_rng(i), (1.2, 1.3), (1.0, 1.0), 0) for i in range(8)]
    assert all(int(o.min()) >= 150 for o in outs)
    assert any(int(o.max()) == 255 for o in outs)


@pytest.mark.parametrize(("w", "h"), [(1920, 1080), (1080, 1920)])
def test_test_transform_is_the_keep_ratio_resize(w, h):
    j3 = _scene(1) * [1, 1, 2]
    cam = Intrinsics(1000.0, 1000.0, (w - 1) / 2, (h - 1) / 2)
    gt = pose25d_from_3d(j3, np.ones((1, 15), bool), cam, SK.root, w, h)
    out = resize_for_test(np.zeros((h, w, 3), np.uint8), gt, 1333, 640, 32)
    assert min(out.image.shape[:2]) == 640 and out.record == ResizeRecord.for_image(w, h, 1333, 640, 32)
    np.testing.assert_allclose(out.gt.centers, out.record.to_network(gt.centers), atol=1e-3)
