"""Metrics on tiny hand-computed scenes (DAS_SPEC §9)."""

from __future__ import annotations

import numpy as np
import pytest

from das_core.evaluation.metrics import (
    MUPOTS_TRAVERSAL,
    FrameResult,
    match_das_3d,
    match_hungarian_2d,
    match_toolkit_2d,
    mupots_pck,
    normalize_bone_length,
    panoptic_mpjpe,
    synthetic_metrics,
)
from das_core.skeletons import MUPOTS17_PARENTS


def _pose(k: int = 3, z: float = 3.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = rng.normal(scale=0.3, size=(k, 3))
    p[:, 2] += z
    return p


def _mupots_pose(seed: int = 0, z: float = 4.0) -> np.ndarray:
    """A random 17-joint pose in metres, about 1.7 m tall, centred at depth z."""
    rng = np.random.default_rng(seed)
    pose = rng.normal(scale=0.25, size=(17, 3))
    pose[:, 2] += z
    return pose


# ---------------------------------------------------------------- Panoptic MPJPE (§9.1)

def test_panoptic_picks_closest_root_aligned_prediction_and_reports_mm():
    gt = np.zeros((1, 3, 3))
    gt[0, 1] = [0.1, 0, 0]
    gt[0, 2] = [0, 0.1, 0]
    good = gt[0] + np.array([5.0, 0, 0])  # same shape, far away: root alignment removes the offset
    good[1, 0] += 0.01  # 10 mm error on joint 1
    bad = gt[0] * 3
    frame = FrameResult(gt_3d=gt, gt_visible=np.ones((1, 3), bool), pred_3d=np.stack([bad, good]))
    out = panoptic_mpjpe([frame], root=0)
    # visible joints 0, 1, 2 → errors 0, 10, 0 mm
    assert out["mpjpe_mm"] == pytest.approx(10.0 / 3)
    assert out["num_persons"] == 1


def test_panoptic_weights_images_by_people_and_skips_invisible_roots():
    one = np.zeros((1, 2, 3))
    one[0, 1] = [0, 0.5, 0]
    pred_a = one.copy()
    pred_a[0, 1, 0] += 0.010  # image A: 1 person, 10 mm on joint 1 → image mean 5 mm
    two = np.concatenate([one, one, one])
    pred_b = two[:1].copy()
    pred_b[0, 1, 0] += 0.040  # image B: both evaluated people match this one → mean 20 mm
    vis_b = np.ones((3, 2), bool)
    vis_b[2, 0] = False  # third person: invisible root → not evaluated
    frames = [
        FrameResult(one, np.ones((1, 2), bool), pred_a),
        FrameResult(two, vis_b, pred_b),
    ]
    out = panoptic_mpjpe(frames, root=0)
    assert out["mpjpe_mm"] == pytest.approx((5.0 * 1 + 20.0 * 2) / 3)
    assert out["num_persons"] == 3


def test_panoptic_invisible_joints_do_not_count_in_the_error():
    gt = np.zeros((1, 3, 3))
    pred = gt.copy()
    pred[0, 2] = [1.0, 0, 0]  # huge error on an invisible joint
    pred[0, 1] = [0.006, 0, 0]
    vis = np.array([[True, True, False]])
    assert panoptic_mpjpe([FrameResult(gt, vis, pred)], root=0)["mpjpe_mm"] == pytest.approx(3.0)


def test_panoptic_frame_without_predictions_uses_fallback_pose():
    gt = np.zeros((1, 2, 3))
    gt[0, 1] = [0, 0.3, 0]
    frame = FrameResult(gt, np.ones((1, 2), bool), np.zeros((0, 2, 3)))
    fallback = np.array([[0, 0, 0], [0, 0.2, 0]])
    assert panoptic_mpjpe([frame], root=0, fallback_pose=fallback)["mpjpe_mm"] == pytest.approx(50.0)


# ---------------------------------------------------------------- MuPoTS (§9.2)

def test_mupots_parents_form_a_tree_rooted_at_the_pelvis_in_traversal_order():
    assert MUPOTS17_PARENTS[14] == 14
    assert MUPOTS17_PARENTS[0] == 1  # head_top hangs off the thorax in the toolkit's table
    seen = {MUPOTS_TRAVERSAL[0]}
    for j in MUPOTS_TRAVERSAL[1:]:
        assert MUPOTS17_PARENTS[j] in seen
        seen.add(j)
    assert seen == set(range(17))


def test_bone_normalisation_restores_gt_lengths_and_keeps_directions():
    gt = _mupots_pose(1)
    gt_rel = gt - gt[14]
    pred_rel = gt_rel * 1.7  # same directions, wrong scale
    out = normalize_bone_length(pred_rel, gt_rel)
    np.testing.assert_allclose(out, gt_rel, atol=1e-12)


def test_toolkit_matching_is_greedy_one_to_one_with_40_px_gate():
    gt = np.zeros((2, 17, 2))
    gt[0] += 100.0
    gt[1] += 130.0
    pred = np.stack([gt[1] + 5, gt[1] + 45])  # pred 1 is 45 px off GT 1 in x and y: outside the gate
    match = match_toolkit_2d(gt, pred)
    # GT 0: pred 0 is 35 px away on every joint → takes it; GT 1: pred 0 taken, pred 1 too far.
    np.testing.assert_array_equal(match, [0, -1])


def test_das_matching_undoes_the_depth_ratio_and_gates_at_250_mm():
    gt = _mupots_pose(2, z=4.0)
    # The same person at twice the depth, seen through a pinhole: root-relative x, y halve in the
    # depth-ratio sense, so the DAS rule (x, y × Z_gt / Z_pred) recovers the GT shape.
    far = gt.copy()
    far[:, :2] = gt[14, :2] + (gt[:, :2] - gt[14, :2]) * 2.0
    far[:, 2] = gt[:, 2] + 4.0
    other = _mupots_pose(3, z=4.0) * np.array([3.0, 3.0, 1.0])
    match = match_das_3d(gt[None], np.stack([other, far]))
    np.testing.assert_array_equal(match, [1])
    assert match_das_3d(gt[None], other[None])[0] == -1


def test_mupots_pck_all_counts_undetected_matched_skips_them_and_averages_sequences():
    gt_a = _mupots_pose(4)
    gt_b = _mupots_pose(5) + np.array([3.0, 0, 0])
    pred_a = gt_a.copy()
    pred_a[:, 2] += 0.2  # 200 mm too far: relative pose perfect, absolute error 200 mm everywhere
    frames = [
        FrameResult(gt_a[None], np.ones((1, 17), bool), pred_a[None], sequence="TS1",
                    gt_2d=np.full((1, 17, 2), 100.0), pred_2d=np.full((1, 17, 2), 101.0)),
        FrameResult(np.stack([gt_a, gt_b]), np.ones((2, 17), bool), pred_a[None], sequence="TS2",
                    gt_2d=np.stack([np.full((17, 2), 100.0), np.full((17, 2), 900.0)]),
                    pred_2d=np.full((1, 17, 2), 101.0)),
    ]
    for matching in ("toolkit", "das"):
        out = mupots_pck(frames, matching=matching, mode="all")
        assert out["pck_rel"] == pytest.approx((1.0 + 0.5) / 2)  # TS1: 100 %, TS2: half the people
        assert out["pck_abs"] == 0.0
        assert out["num_gt"] == 3 and out["num_matched"] == 2
        matched = mupots_pck(frames, matching=matching, mode="matched")
        assert matched["pck_rel"] == pytest.approx(1.0)
        if matching == "toolkit":  # the DAS rule also rescales x, y by 4.0 / 4.2, so errors are not 0
            assert matched["auc_rel"] == pytest.approx(30 / 31)  # errors 0: every threshold but 0 passes


def test_mupots_pck_threshold_is_strict_150_mm():
    gt = _mupots_pose(6)
    pred = gt.copy()
    pred[:, 2] += 0.149
    frame = FrameResult(gt[None], np.ones((1, 17), bool), pred[None], gt_2d=np.zeros((1, 17, 2)) + 5,
                        pred_2d=np.zeros((1, 17, 2)) + 5)
    assert mupots_pck([frame])["pck_abs"] == pytest.approx(1.0)
    frame.pred_3d[0, :, 2] += 0.002
    assert mupots_pck([frame])["pck_abs"] == 0.0


# ---------------------------------------------------------------- synthetic split

def test_hungarian_matching_is_one_to_one_and_gated():
    gt = np.array([[[0, 0], [10, 10]], [[100, 100], [110, 110]]], float)
    vis = np.ones((2, 2), bool)
    pred = np.array([[[101, 100], [111, 110]], [[1, 0], [11, 10]], [[500, 500], [510, 510]]], float)
    np.testing.assert_array_equal(match_hungarian_2d(gt, vis, pred), [1, 0])
    np.testing.assert_array_equal(match_hungarian_2d(gt, vis, pred[2:]), [-1, -1])


def test_synthetic_metrics_on_a_hand_case():
    gt = np.array([[[0.0, 0.0, 3.0], [0.0, 0.5, 3.0]], [[1.0, 0.0, 5.0], [1.0, 0.5, 5.0]]])
    pred = gt[:1].copy()
    pred[0, :, 2] += 0.13  # whole person 130 mm too far
    pred[0, 1, 0] += 0.08  # plus 80 mm on joint 1 → 152.6 mm absolute
    gt_2d = np.array([[[10, 10], [10, 50]], [[80, 10], [80, 50]]], float)
    frame = FrameResult(gt, np.ones((2, 2), bool), np.concatenate([pred, pred + 9.0]), gt_2d=gt_2d,
                        pred_2d=np.stack([gt_2d[0], gt_2d[0] + 300]))
    out = synthetic_metrics([frame], root=0)
    assert out["recall"] == pytest.approx(0.5)
    assert out["precision"] == pytest.approx(0.5)
    assert out["mpjpe_rel_mm"] == pytest.approx(40.0)
    assert out["mpjpe_abs_mm"] == pytest.approx((130.0 + np.hypot(130.0, 80.0)) / 2)
    assert out["root_depth_err_mm"] == pytest.approx(130.0)
    assert out["root_depth_err_pct"] == pytest.approx(130.0 / 3000.0 * 100)  # of the true root distance, 3 m
    assert out["root_depth_err_pct_median"] == pytest.approx(130.0 / 3000.0 * 100)
    assert out["pck_abs"] == pytest.approx(0.5)


def test_synthetic_metrics_with_no_predictions_has_zero_recall():
    frame = FrameResult(_pose()[None], np.ones((1, 3), bool), np.zeros((0, 3, 3)), gt_2d=np.ones((1, 3, 2)),
                        pred_2d=np.zeros((0, 3, 2)))
    out = synthetic_metrics([frame], root=0)
    assert out["recall"] == 0.0
    assert np.isnan(out["mpjpe_rel_mm"])
