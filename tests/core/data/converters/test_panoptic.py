"""Panoptic converter on a tiny fixture in the panoptic-toolbox layout, written by the test."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from das_core.data.annotations import read_annotations
from das_core.data.converters.panoptic import PanopticFormatError, convert_panoptic, project_distorted

SEQ = "160224_haggling1"
K = np.array([[1400.0, 0.0, 950.0], [0.0, 1390.0, 545.0], [0.0, 0.0, 1.0]])
DIST = np.array([-0.2, 0.1, 0.001, -0.0005, 0.0])
ANG = 0.3
R = np.array([[np.cos(ANG), 0, np.sin(ANG)], [0, 1, 0], [-np.sin(ANG), 0, np.cos(ANG)]])
T = np.array([10.0, -20.0, 300.0])  # cm


def _body(center_cm, conf=1.0):
    rng = np.random.default_rng(int(abs(center_cm[0])) + 1)
    j = np.asarray(center_cm) + rng.uniform(-40, 40, (19, 3)) * [1, 2, 1]
    return np.concatenate([j, np.full((19, 1), conf)], axis=1)


def _write_fixture(root, frames):
    seq = root / SEQ
    (seq / "hdPose3d_stage1_coco19").mkdir(parents=True)
    cams = []
    for node in (16, 30):
        name = f"00_{node:02d}"
        (seq / "hdImgs" / name).mkdir(parents=True)
        cams.append({"name": name, "type": "hd", "panel": 0, "node": node, "resolution": [1920, 1080],
                     "K": K.tolist(), "distCoef": DIST.tolist(), "R": R.tolist(), "t": [[v] for v in T]})
    cams.append({"name": "50_01", "type": "kinect-color", "resolution": [1920, 1080], "K": K.tolist(),
                 "distCoef": [0] * 5, "R": np.eye(3).tolist(), "t": [[0], [0], [0]]})
    (seq / f"calibration_{SEQ}.json").write_text(json.dumps({"calibDataSource": "x", "cameras": cams}))
    for frame, bodies in frames.items():
        doc = {"version": 0.7, "univTime": 1.0, "fpsType": "hd_29_97",
               "bodies": [{"id": i, "joints19": b.reshape(-1).tolist()} for i, b in enumerate(bodies)]}
        (seq / "hdPose3d_stage1_coco19" / f"body3DScene_{frame:08d}.json").write_text(json.dumps(doc))
        for name in ("00_16", "00_30"):
            cv2.imwrite(str(seq / "hdImgs" / name / f"{name}_{frame:08d}.jpg"), np.zeros((4, 4, 3), np.uint8))


def test_panoptic_fixture_converts_to_camera_metres_and_distorted_pixels(tmp_path):
    good = [_body([0, -100, 0]), _body([60, -100, 80])]
    bad = [_body([0, -100, 0]), _body([0, -100, 0], conf=0.05)]  # second body has no confident joint
    _write_fixture(tmp_path / "panoptic", {0: good, 1: good, 2: good, 4: bad})
    out = tmp_path / "out" / "train.json"
    ann = convert_panoptic(tmp_path / "panoptic", out, sequences=[SEQ], mode="train", frame_step=2)
    # frames 0, 2, 4 taken (step 2); frame 4 dropped because not every body is valid; 2 cameras
    assert sorted(i.id for i in ann.images) == sorted(f"{SEQ}/00_{n}/{f:08d}" for n in (16, 30) for f in (0, 2))
    back = read_annotations(out)
    img = next(i for i in back.images if i.id == f"{SEQ}/00_16/00000000")
    assert (img.width, img.height) == (1920, 1080)
    assert (img.camera.fx, img.camera.fy, img.camera.cx, img.camera.cy) == (1400.0, 1390.0, 950.0, 545.0)
    assert back.image_path(img).is_file()
    p = img.persons[0]
    expected = (good[0][:15, :3] @ R.T + T) / 100.0
    np.testing.assert_allclose(p.joints_3d, expected, atol=1e-4)
    # 2D = lens-distorted projection, checked against OpenCV's implementation of the same model
    cv_uv, _ = cv2.projectPoints(np.ascontiguousarray(good[0][:15, :3]).reshape(-1, 1, 3), cv2.Rodrigues(R)[0], T, K, DIST)
    np.testing.assert_allclose(p.joints_2d, cv_uv.reshape(-1, 2), atol=1e-2)
    assert not p.visible[1]  # nose never visible (§1.1)
    inside = (p.joints_2d[:, 0] >= -0.5) & (p.joints_2d[:, 0] <= 1919.5) & (p.joints_2d[:, 1] >= -0.5) & (
        p.joints_2d[:, 1] <= 1079.5)
    np.testing.assert_array_equal(p.visible, inside & (np.arange(15) != 1))


def test_test_mode_drops_only_invalid_bodies_and_samples_uniformly(tmp_path):
    good = [_body([0, -100, 0])]
    bad = [_body([0, -100, 0]), _body([0, -100, 0], conf=0.05)]
    _write_fixture(tmp_path / "p", {f: (bad if f == 3 else good) for f in range(6)})
    ann = convert_panoptic(tmp_path / "p", tmp_path / "t.json", sequences=[SEQ], cameras=[(0, 16)], mode="test",
                           frames_per_activity=3)
    assert [i.id[-1] for i in ann.images] == ["0", "2", "5"]  # linspace over the 6 frames
    ann = convert_panoptic(tmp_path / "p", tmp_path / "t.json", sequences=[SEQ], cameras=[(0, 16)], mode="test",
                           frames_per_activity=6)
    assert len(ann.images) == 6  # frame 3 is kept in test mode, without its invalid body
    assert all(len(i.persons) == 1 for i in ann.images)


def test_missing_camera_is_a_named_error(tmp_path):
    _write_fixture(tmp_path / "p", {0: [_body([0, -100, 0])]})
    with pytest.raises(PanopticFormatError, match="00_07"):
        convert_panoptic(tmp_path / "p", tmp_path / "x.json", sequences=[SEQ], cameras=[(0, 7)])


def test_distortion_free_projection_is_pinhole():
    pts = np.array([[0.1, -0.2, 2.0], [0.5, 0.3, 4.0]])
    uv = project_distorted(pts, K, np.zeros(5))
    np.testing.assert_allclose(uv[:, 0], K[0, 0] * pts[:, 0] / pts[:, 2] + K[0, 2])
    np.testing.assert_allclose(uv[:, 1], K[1, 1] * pts[:, 1] / pts[:, 2] + K[1, 2])


def test_images_may_live_in_a_separate_hdimgs_tree(tmp_path):
    _write_fixture(tmp_path / "p", {0: [_body([0, -100, 0])], 2: [_body([0, -100, 0])]})
    (tmp_path / "p" / "hdImgs").mkdir()
    (tmp_path / "p" / SEQ / "hdImgs").rename(tmp_path / "p" / "hdImgs" / SEQ)
    ann = convert_panoptic(tmp_path / "p", tmp_path / "o.json", sequences=[SEQ], cameras=[(0, 30)])
    assert len(ann.images) == 1
    assert ann.image_path(ann.images[0]).resolve() == (tmp_path / "p/hdImgs" / SEQ / "00_30/00_30_00000000.jpg").resolve()
