"""The das annotation format: round trip, strict validation, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from das_core.camera import Intrinsics
from das_core.data.annotations import (
    AnnotationError,
    AnnotationSet,
    ImageAnnotation,
    PersonAnnotation,
    read_annotations,
    write_annotations,
)


def _example() -> AnnotationSet:
    rng = np.random.default_rng(0)
    j3 = rng.uniform(-1, 1, (15, 3)) + np.array([0, 0, 5.0])
    j2 = rng.uniform(0, 100, (15, 2))
    vis = rng.random(15) > 0.3
    img = ImageAnnotation(
        id="a", file="imgs/a.jpg", width=640, height=384, camera=Intrinsics(500.0, 501.0, 320.5, 190.25),
        persons=[PersonAnnotation(visible=vis, joints_3d=j3, track_id=3),
                 PersonAnnotation(visible=vis, joints_2d=j2, center=np.array([10.0, 20.0]))],
    )
    return AnnotationSet(skeleton="panoptic15", images=[img], info={"source": "test"})


def test_round_trip_keeps_every_field(tmp_path):
    ann = _example()
    path = tmp_path / "sub" / "ann.json"
    write_annotations(path, ann)
    back = read_annotations(path)
    assert back.skeleton == "panoptic15" and back.root == path.parent and back.info == {"source": "test"}
    a, b = ann.images[0], back.images[0]
    assert (b.id, b.file, b.width, b.height) == (a.id, a.file, a.width, a.height)
    assert b.camera == a.camera
    np.testing.assert_allclose(b.persons[0].joints_3d, a.persons[0].joints_3d, atol=1e-5)
    np.testing.assert_array_equal(b.persons[0].visible, a.persons[0].visible)
    assert b.persons[0].track_id == 3 and b.persons[0].has_depth
    assert not b.persons[1].has_depth
    np.testing.assert_allclose(b.persons[1].joints_2d, a.persons[1].joints_2d, atol=1e-3)
    np.testing.assert_allclose(b.persons[1].center, [10.0, 20.0])
    assert back.image_path(b) == path.parent / "imgs/a.jpg"
    assert [p.name for p in path.parent.iterdir()] == ["ann.json"]  # no temp file left behind


def _write_doc(tmp_path, mutate) -> str:
    path = tmp_path / "ann.json"
    write_annotations(path, _example())
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(format="coco"), "format"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(skeleton="nope"), "skeleton"),
        (lambda d: d["images"][0].pop("width"), "missing field(s) ['width']"),
        (lambda d: d["images"][0].update(extra=1), "unknown field(s) ['extra']"),
        (lambda d: d["images"][0]["camera"].update(fx=0), "camera"),
        (lambda d: d["images"][0]["camera"].update(fy="x"), "camera.fy"),
        (lambda d: d["images"][0].update(file="/abs/a.jpg"), "file"),
        (lambda d: d["images"][0]["persons"][0]["joints_3d"].pop(), "persons[0].joints_3d: expected shape [15, 3]"),
        (lambda d: d["images"][0]["persons"][0].update(visible=[2] * 15), "persons[0].visible"),
        (lambda d: d["images"][0]["persons"][1].pop("joints_2d"), "persons[1]: needs joints_3d"),
        (lambda d: d["images"].append(dict(d["images"][0])), "duplicate image id"),
    ],
)
def test_bad_files_name_the_problem(tmp_path, mutate, needle):
    path = _write_doc(tmp_path, mutate)
    with pytest.raises(AnnotationError) as exc:
        read_annotations(path)
    assert needle in str(exc.value)
    assert "ann.json" in str(exc.value)


def test_errors_inside_an_image_name_the_image(tmp_path):
    path = _write_doc(tmp_path, lambda d: d["images"][0].update(height=-3))
    with pytest.raises(AnnotationError, match=r"images\[0\] \('a'\): height: must be >= 1"):
        read_annotations(path)


def test_invalid_json_and_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AnnotationError, match="invalid JSON at line 1"):
        read_annotations(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_annotations(tmp_path / "missing.json")


def test_writer_rejects_wrong_joint_count(tmp_path):
    ann = _example()
    ann.images[0].persons[0].joints_3d = np.zeros((14, 3))
    with pytest.raises(AnnotationError, match="joints_3d"):
        write_annotations(tmp_path / "x.json", ann)
    assert not (tmp_path / "x.json").exists()
