"""``das evaluate`` plumbing: annotations + Persons → frames → the metrics of each protocol."""

from __future__ import annotations

import numpy as np
import pytest

from das_core.camera import Intrinsics
from das_core.data.annotations import ImageAnnotation, PersonAnnotation
from das_core.evaluation.run import compute_metrics, frame_result
from das_core.persons import Persons


def _image(k: int, n: int = 2, seed: int = 0) -> tuple[ImageAnnotation, np.ndarray]:
    rng = np.random.default_rng(seed)
    joints = rng.normal(scale=0.3, size=(n, k, 3))
    joints[..., 0] += np.arange(n)[:, None] * 1.5 - 0.75
    joints[..., 2] += 4.0
    cam = Intrinsics(fx=500.0, fy=500.0, cx=320.0, cy=240.0)
    persons = [PersonAnnotation(visible=np.ones(k, bool), joints_3d=j) for j in joints]
    persons.append(PersonAnnotation(visible=np.ones(k, bool), joints_2d=np.zeros((k, 2))))  # 2D-only: skipped
    return ImageAnnotation(id="TS1/0", file="TS1/000000.jpg", width=640, height=480, camera=cam, persons=persons), joints


def _perfect(image: ImageAnnotation, joints: np.ndarray) -> Persons:
    n, k = joints.shape[:2]
    return Persons(scores=np.ones(n), joints_3d=joints, joints_2d=image.camera.project(joints),
                   joint_confidence=np.ones((n, k)), track_ids=-np.ones(n, np.int64))


def test_frame_result_keeps_3d_people_and_projects_their_2d_joints():
    image, joints = _image(15)
    frame = frame_result(image, _perfect(image, joints))
    assert frame.gt_3d.shape == (2, 15, 3)
    np.testing.assert_allclose(frame.gt_2d, image.camera.project(joints))


@pytest.mark.parametrize("protocol", ["synthetic", "panoptic"])
def test_perfect_predictions_score_zero_error(protocol):
    image, joints = _image(15)
    metrics = compute_metrics([frame_result(image, _perfect(image, joints))], protocol, "panoptic15")
    key = "mpjpe_rel_mm" if protocol == "synthetic" else "mpjpe_mm"
    assert metrics[key] == pytest.approx(0.0, abs=1e-6)


def test_mupots_protocol_evaluates_the_first_17_of_21_joints_with_both_matchings():
    image, joints = _image(21, seed=3)
    pred = _perfect(image, joints)
    pred.joints_3d[:, 17:] += 5.0  # hands and toes are not evaluated
    metrics = compute_metrics([frame_result(image, pred, "TS1")], "mupots", "muco21")
    for matching in ("toolkit", "das"):
        assert metrics[f"{matching}/pck_rel"] == pytest.approx(1.0)
        assert metrics[f"{matching}/pck_abs"] == pytest.approx(1.0)


def test_unknown_protocol_is_an_error():
    with pytest.raises(ValueError, match="protocol"):
        compute_metrics([], "h36m", "panoptic15")
