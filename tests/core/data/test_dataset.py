"""DASDataset and collate (the batch sampler: tests/training/test_trainer.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from das_core.config import AugmentConfig, InputConfig, ModelConfig
from das_core.data.annotations import AnnotationError, read_annotations
from das_core.data.dataset import DASDataset, collate, normalise_batch
from das_core.data.make_synthetic import generate
from das_core.data.synthetic import SceneConfig


def lift_to_3d(joints_uv, root_depth, joints_dz, camera):  # noqa: ANN001, ANN201 - test oracle
    """Inverse of ``pose25d_from_3d``: ``Z_root = root_depth · f``, ``Z_k = Z_root + dz_k``, back-project."""
    z = np.asarray(root_depth, np.float64)[..., None] * camera.focal + np.asarray(joints_dz, np.float64)
    return camera.backproject(joints_uv, z)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return generate(out, "train", 6, seed=1, cfg=SceneConfig(min_size=96, max_size=128), workers=1, progress=False)


CFG = ModelConfig(input=InputConfig(short_side=96, long_side=160, size_divisor=32))


def test_test_pipeline_gives_the_resized_uint8_image_and_liftable_gt(synth):
    import cv2

    ds = DASDataset([synth], CFG, None, train=False)
    s = ds[0]
    rec = s["record"]
    assert s["image"].shape == (3, rec.resized_height, rec.resized_width) and s["image"].dtype == torch.uint8
    ann = read_annotations(synth)
    photo = cv2.cvtColor(cv2.imread(str(ann.image_path(ann.images[0]))), cv2.COLOR_BGR2RGB)
    expected = cv2.resize(photo, (rec.resized_width, rec.resized_height), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(s["image"].permute(1, 2, 0).numpy(), expected)
    gt = s["gt"]
    cam_net = s["camera"].scaled(rec.sx, rec.sy)
    lifted = lift_to_3d(gt.joints_uv, gt.root_depth, gt.joints_dz, cam_net)
    # every kept person is one of the original 3D people
    for p in lifted:
        assert min(np.abs(p - q).max() for q in s["joints_3d"]) < 1e-3
    assert s["image_id"] == read_annotations(synth).images[0].id


def test_training_samples_respect_min_persons_and_depth_rule(synth):
    aug = AugmentConfig(long_side=160, short_side_range=(80, 112), min_persons=1, scale_range=(0.8, 1.2))
    ds = DASDataset([synth], CFG, aug, train=True, seed=0)
    for i in range(len(ds)):
        s = ds[i]
        assert len(s["gt"]) >= 1
        t = s["transform"]
        f_eff = s["camera"].focal * math.sqrt(abs(np.linalg.det(t[:2, :2])))
        z = s["gt"].root_depth * f_eff
        roots = s["joints_3d"][:, 2, 2]
        assert all(np.min(np.abs(roots - zi)) < 1e-3 for zi in z)


def test_collate_pads_to_the_size_divisor(synth):
    ds = DASDataset([synth], CFG, None, train=False)
    batch = collate([ds[0], ds[1], ds[2]], size_divisor=32)
    b, c, h, w = batch["images"].shape
    assert (b, c) == (3, 3) and h % 32 == 0 and w % 32 == 0
    assert h >= max(s[0] for s in batch["image_sizes"]) and len(batch["gts"]) == 3
    hh, ww = batch["image_sizes"][0]
    assert torch.all(batch["images"][0, :, hh:, :] == 0) and torch.all(batch["images"][0, :, :, ww:] == 0)


def test_normalise_batch_normalises_the_image_and_zeroes_the_padding_in_normalised_units(synth):
    ds = DASDataset([synth], CFG, None, train=False)
    batch = collate([ds[0], ds[1]], size_divisor=32)
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    x = normalise_batch(batch["images"], batch["image_sizes"], InputConfig(mean=mean, std=std))
    assert x.dtype == torch.float32 and x.shape == batch["images"].shape
    for i, (h, w) in enumerate(batch["image_sizes"]):
        raw = batch["images"][i, :, :h, :w].float()
        want = (raw - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
        assert torch.allclose(x[i, :, :h, :w], want, atol=1e-5)
        assert float(x[i, :, h:, :].abs().sum()) == 0.0 and float(x[i, :, :, w:].abs().sum()) == 0.0


def test_skeleton_mismatch_is_an_error(synth):
    with pytest.raises(AnnotationError, match="muco21"):
        DASDataset([synth], ModelConfig(skeleton="muco21"), None)


def _write_mixed(tmp_path):
    """One image with a 3D person carrying explicit (shifted) 2D joints and a 2D-only person."""
    import cv2

    from das_core.camera import Intrinsics
    from das_core.data.annotations import AnnotationSet, ImageAnnotation, PersonAnnotation, write_annotations

    cam = Intrinsics(200.0, 200.0, 79.5, 59.5)
    rng = np.random.default_rng(0)
    j3 = np.array([0.0, 0.0, 4.0]) + rng.uniform(-0.3, 0.3, (15, 3))
    uv = cam.project(j3) + 1.5  # e.g. lens distortion: the stored 2D wins over the pinhole projection
    j2 = rng.uniform(10, 110, (15, 2))
    persons = [PersonAnnotation(visible=np.ones(15, bool), joints_3d=j3, joints_2d=uv),
               PersonAnnotation(visible=np.ones(15, bool), joints_2d=j2, center=np.array([60.0, 50.0]))]
    cv2.imwrite(str(tmp_path / "a.png"), np.full((120, 160, 3), 90, np.uint8))
    img = ImageAnnotation(id="a", file="a.png", width=160, height=120, camera=cam, persons=persons)
    write_annotations(tmp_path / "mixed.json", AnnotationSet("panoptic15", [img]))
    return tmp_path / "mixed.json", uv, j2


def test_stored_2d_joints_and_2d_only_people_reach_the_gt(tmp_path):
    path, uv, j2 = _write_mixed(tmp_path)
    cfg = ModelConfig(input=InputConfig(short_side=240, long_side=320, size_divisor=32))
    s = DASDataset([path], cfg, None)[0]
    gt, rec = s["gt"], s["record"]
    assert rec.sx == 2.0 and list(gt.has_depth) == [True, False]
    np.testing.assert_allclose(gt.joints_uv[0], rec.to_network(uv), atol=1e-3)
    np.testing.assert_allclose(gt.centers[1], rec.to_network(np.array([60.0, 50.0])), atol=1e-3)
    assert gt.root_depth[1] == 0 and not gt.joints_dz[1].any()
    assert s["joints_3d"].shape == (1, 15, 3)


def test_min_persons_rejects_and_resamples(tmp_path):
    path, _, _ = _write_mixed(tmp_path)
    aug = AugmentConfig(long_side=160, short_side_range=(120, 120), scale_range=(1.0, 1.0), trans_std=0.0,
                        min_persons=2)
    ds = DASDataset([path], CFG, aug, train=True)
    assert len(ds[0]["gt"]) == 2
    strict = DASDataset([path], CFG, AugmentConfig(long_side=160, short_side_range=(120, 120), min_persons=3),
                        train=True)
    with pytest.raises(RuntimeError, match=">= 3 people"):
        strict[0]


def test_augmentation_is_a_function_of_the_torch_seed(synth):
    aug = AugmentConfig(long_side=160, short_side_range=(80, 112), scale_range=(0.8, 1.2))
    ds = DASDataset([synth], CFG, aug, train=True, seed=0)

    def draw(seed):
        torch.manual_seed(seed)
        return ds[2]

    a, b, c = draw(5), draw(5), draw(6)
    assert torch.equal(a["image"], b["image"]) and np.array_equal(a["transform"], b["transform"])
    assert not np.array_equal(a["transform"], c["transform"])
