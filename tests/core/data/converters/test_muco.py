"""MuCo-3DHP / MuPoTS-3D converter on a tiny Moon-style JSON written by the test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from das_core.data.annotations import read_annotations
from das_core.data.converters.muco import MuCoFormatError, convert_muco


def _person(k, root_mm, f, c, rng):
    cam = np.asarray(root_mm) + rng.uniform(-300, 300, (k, 3)) * [1, 2, 0.5]
    img = cam[:, :2] / cam[:, 2:] * f + c
    return {"keypoints_cam": cam.tolist(), "keypoints_img": img.tolist(), "keypoints_vis": [1] * k}


def _doc(k):
    rng = np.random.default_rng(0)
    f, c = np.array([1500.0, 1490.0]), np.array([1020.0, 1030.0])
    images = [{"id": i, "file_name": f"TS1/img_{i:06d}.jpg", "width": 2048, "height": 2048, "f": f.tolist(),
               "c": c.tolist()} for i in range(3)]
    anns = [dict(_person(k, [0, 0, 4000], f, c, rng), id=0, image_id=0),
            dict(_person(k, [900, 100, 5000], f, c, rng), id=1, image_id=0),
            dict(_person(k, [0, 0, 3000], f, c, rng), id=2, image_id=1)]
    anns[2]["keypoints_vis"] = [0] * k  # image 1 has no visible joint → dropped in training mode
    return {"images": images, "annotations": anns}


@pytest.mark.parametrize("k", [21, 17])
def test_moon_json_converts_to_metres_on_muco21(tmp_path, k):
    doc = _doc(k)
    src = tmp_path / "MuCo.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out" / "muco.json"
    ann = convert_muco(src, tmp_path / "imgs", out)
    assert [i.id for i in ann.images] == ["0"]
    back = read_annotations(out)
    img = back.images[0]
    assert back.skeleton == "muco21" and (img.camera.fx, img.camera.cy) == (1500.0, 1030.0)
    assert back.image_path(img).resolve() == (tmp_path / "imgs" / "TS1/img_000000.jpg").resolve()
    p = img.persons[0]
    np.testing.assert_allclose(p.joints_3d[:k], np.asarray(doc["annotations"][0]["keypoints_cam"]) / 1000, atol=1e-5)
    assert p.visible[:k].any() and not p.visible[k:].any()
    if k == 17:  # MuPoTS: absent joints sit at the root
        np.testing.assert_allclose(p.joints_3d[17:], np.repeat(p.joints_3d[14][None], 4, 0), atol=1e-5)
    keep = convert_muco(src, tmp_path / "imgs", tmp_path / "all.json", keep_all_images=True)
    assert len(keep.images) == 3


def test_missing_intrinsics_is_a_named_error(tmp_path):
    doc = _doc(21)
    del doc["images"][1]["f"]
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(doc))
    with pytest.raises(MuCoFormatError, match=r"image id 1.*f \[fx, fy\]"):
        convert_muco(src, tmp_path, tmp_path / "o.json")
