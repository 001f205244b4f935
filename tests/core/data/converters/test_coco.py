"""COCO keypoints converter on a tiny fixture written by the test."""

from __future__ import annotations

import json

import numpy as np

from das_core.data.annotations import read_annotations
from das_core.data.converters.coco import convert_coco
from das_core.skeletons import get_skeleton


def _kps(rng, labelled=None):
    xy = rng.uniform(20, 180, (17, 2))
    v = np.full(17, 2) if labelled is None else labelled
    return np.concatenate([xy, v[:, None]], 1).reshape(-1).tolist()


def test_coco_maps_joints_and_filters_per_spec(tmp_path):
    rng = np.random.default_rng(0)
    no_hip = np.full(17, 2)
    no_hip[11] = 0
    anns = [
        {"id": 1, "image_id": 1, "keypoints": _kps(rng), "bbox": [10, 10, 100, 150], "iscrowd": 0},
        {"id": 2, "image_id": 1, "keypoints": _kps(rng), "bbox": [10, 10, 100, 150], "iscrowd": 1},   # crowd
        {"id": 3, "image_id": 1, "keypoints": _kps(rng, no_hip), "bbox": [0, 0, 50, 50], "iscrowd": 0},  # one hip
        {"id": 4, "image_id": 1, "keypoints": _kps(rng), "bbox": [198, 10, 30, 30], "iscrowd": 0},  # clipped: 2×30 px < 64 px²
        {"id": 5, "image_id": 2, "keypoints": _kps(rng, np.array([0] * 11 + [2, 2] + [0] * 4)),
         "bbox": [10, 10, 100, 100], "iscrowd": 0},  # only 2 mapped joints → image dropped
    ]
    doc = {"images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 220},
                      {"id": 2, "file_name": "b.jpg", "width": 200, "height": 220}],
           "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    src = tmp_path / "person_keypoints.json"
    src.write_text(json.dumps(doc))
    for name in ("panoptic15", "muco21"):
        sk = get_skeleton(name)
        ann = convert_coco(src, tmp_path / "img", tmp_path / f"{name}.json", skeleton=name)
        back = read_annotations(tmp_path / f"{name}.json")
        assert [i.id for i in ann.images] == ["1"] and len(back.images[0].persons) == 1
        p = back.images[0].persons[0]
        kp = np.asarray(anns[0]["keypoints"]).reshape(17, 3)
        assert not p.has_depth
        np.testing.assert_allclose(p.center, (kp[11, :2] + kp[12, :2]) / 2, atol=1e-3)
        for t, s in sk.coco_map:
            np.testing.assert_allclose(p.joints_2d[t], kp[s, :2], atol=1e-3)
        assert p.visible.sum() == len(sk.coco_map) and not p.visible[sk.root]
