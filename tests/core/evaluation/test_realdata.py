"""Real-image development-set scorer: metric rules on tiny synthetic fixtures, readers on the real folder."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from das_core.camera import Intrinsics
from das_core.evaluation.realdata import (
    COCO_SIGMAS,
    MIN_LABELLED_JOINTS,
    GTPerson,
    RealDataError,
    RealImage,
    format_table,
    greedy_match,
    headline,
    joint_map,
    keypoint_ap,
    load_realdata,
    mpjpe_mm,
    normalise_name,
    oks_matrix,
    read_coco_style,
    root_depth_error_pct,
    root_in_box_matrix,
    score_predictions,
    sigmas_for,
)
from das_core.evaluation.realdata import _ImageEval as ImageEval
from das_core.persons import Persons
from das_core.skeletons import PANOPTIC15

SK = PANOPTIC15
K = SK.num_joints
SIG = sigmas_for(SK)
J = {n: i for i, n in enumerate(SK.joint_names)}


def _skeleton_2d(x0: float, y0: float, scale: float = 1.0) -> np.ndarray:
    """A plausible upright 2D person (K, 2) with its feet ~200·scale px below the neck."""
    rel = {
        "neck": (0, 0), "nose": (0, -25), "mid_hip": (0, 80), "l_shoulder": (20, 5), "l_elbow": (30, 45),
        "l_wrist": (35, 80), "l_hip": (12, 80), "l_knee": (14, 140), "l_ankle": (15, 200),
        "r_shoulder": (-20, 5), "r_elbow": (-30, 45), "r_wrist": (-35, 80), "r_hip": (-12, 80),
        "r_knee": (-14, 140), "r_ankle": (-15, 200),
    }
    return np.array([[x0 + scale * rel[n][0], y0 + scale * rel[n][1]] for n in SK.joint_names], np.float64)


def _gt(xy: np.ndarray, labelled: np.ndarray | None = None, area: float = 5000.0, **kw: object) -> GTPerson:
    lab = np.isfinite(SIG) if labelled is None else labelled  # mid_hip is never a 2D-labelled joint
    kp = np.where(lab[:, None], xy, np.nan)
    x, y = np.nanmin(kp, 0)
    w, h = np.nanmax(kp, 0) - np.nanmin(kp, 0)
    return GTPerson(kp, lab, area, np.array([x, y, w, h]), **kw)  # type: ignore[arg-type]


def _persons(j2: list[np.ndarray], scores: list[float], j3: list[np.ndarray] | None = None,
             conf: float = 0.5) -> Persons:
    n = len(j2)
    joints_3d = np.stack(j3) if j3 else np.ones((n, K, 3))
    return Persons(np.asarray(scores, np.float32), joints_3d.reshape(n, K, 3).astype(np.float32),
                   np.stack(j2).reshape(n, K, 2).astype(np.float32) if n else np.zeros((0, K, 2), np.float32),
                   np.full((n, K), conf, np.float32), np.full(n, -1, np.int64))


# -- joint maps -----------------------------------------------------------------------------------------


def test_joint_names_of_every_format_normalise_to_ours() -> None:
    assert normalise_name("Left Shoulder") == "l_shoulder"
    assert normalise_name("Right-ankle") == "r_ankle"
    assert normalise_name("left_hip") == "l_hip"


def test_neck_maps_from_thorax_but_not_from_upper_neck_or_head_bottom() -> None:
    mpii = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "Thorax", "Upper-neck",
            "Head-top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist")
    m = dict(joint_map(mpii, SK))
    assert m[J["neck"]] == 7  # thorax
    assert J["mid_hip"] not in m and J["nose"] not in m
    posetrack = ("nose", "head_bottom", "head_top", "left_ear", "right_ear")
    assert dict(joint_map(posetrack, SK)) == {J["nose"]: 0}


# -- OKS ------------------------------------------------------------------------------------------------


def test_oks_is_one_for_a_perfect_prediction_and_follows_the_coco_formula_for_an_offset() -> None:
    xy = _skeleton_2d(100, 50)
    g = _gt(xy)
    assert oks_matrix(xy[None], [g], SIG)[0, 0] == pytest.approx(1.0)
    shifted = xy.copy()
    shifted[J["l_wrist"]] += (6.0, 8.0)  # 10 px off on one of the 14 labelled joints
    expected = (13 + math.exp(-100.0 / (2 * g.area * (2 * COCO_SIGMAS["l_wrist"]) ** 2))) / 14
    assert oks_matrix(shifted[None], [g], SIG)[0, 0] == pytest.approx(expected)


def test_oks_ignores_unlabelled_joints() -> None:
    xy = _skeleton_2d(100, 50)
    lab = np.isfinite(SIG).copy()
    lab[J["r_ankle"]] = False
    wild = xy.copy()
    wild[J["r_ankle"]] += 500.0
    assert oks_matrix(wild[None], [_gt(xy, lab)], SIG)[0, 0] == pytest.approx(1.0)


def test_person_without_joints_is_compared_with_its_enlarged_box() -> None:
    g = GTPerson(np.full((K, 2), np.nan), np.zeros(K, bool), 2000.0, np.array([100.0, 100.0, 50.0, 100.0]))
    inside = _skeleton_2d(120, 100, 0.4)
    far = _skeleton_2d(900, 900, 0.4)
    o = oks_matrix(np.stack([inside, far]), [g], SIG)
    assert o[0, 0] == pytest.approx(1.0) and o[1, 0] < 1e-6


# -- matching and AP -----------------------------------------------------------------------------------


def test_greedy_match_gives_each_person_to_the_highest_scoring_prediction() -> None:
    oks = np.array([[0.9, 0.1], [0.95, 0.6]])  # both predictions overlap person 0 best
    pred_gt, ign = greedy_match(oks, np.array([0.3, 0.8]), np.zeros(2, bool), 0.5)
    assert pred_gt.tolist() == [-1, 0] and not ign.any()  # the 0.8 prediction takes person 0 first
    pred_gt, _ = greedy_match(oks, np.array([0.3, 0.8]), np.zeros(2, bool), 0.55)
    assert pred_gt.tolist() == [-1, 0]


def test_greedy_match_lets_an_ignored_person_take_one_prediction_and_a_crowd_any_number() -> None:
    oks = np.array([[0.8, 0.0], [0.7, 0.0]])
    ignored = np.array([True, False])
    pred_gt, ign = greedy_match(oks, np.array([0.9, 0.8]), ignored, 0.5)
    assert pred_gt.tolist() == [0, -1] and ign.tolist() == [True, False]
    pred_gt, ign = greedy_match(oks, np.array([0.9, 0.8]), ignored, 0.5, crowd=np.array([True, False]))
    assert pred_gt.tolist() == [0, 0] and ign.tolist() == [True, True]


def test_keypoint_ap_perfect_missed_and_false_positive_cases() -> None:
    perfect = ImageEval(np.array([0.9, 0.8]), np.eye(2), np.zeros(2, bool), np.zeros(2, bool))
    assert keypoint_ap([perfect], (0.5,))[0.5] == pytest.approx(1.0)
    half = ImageEval(np.array([0.9]), np.array([[1.0, 0.0]]), np.zeros(2, bool), np.zeros(1, bool))
    assert keypoint_ap([half], (0.5,))[0.5] == pytest.approx(51 / 101)  # recall 0.5, precision 1
    # a false positive scored above the only true positive: precision 0.5 at every recall point
    fp_first = ImageEval(np.array([0.9, 0.5]), np.array([[0.0], [1.0]]), np.zeros(1, bool), np.zeros(2, bool))
    assert keypoint_ap([fp_first], (0.5,))[0.5] == pytest.approx(0.5)
    # the same false positive is not counted where the image is only partly labelled
    partial = ImageEval(fp_first.scores, fp_first.oks, fp_first.gt_ignored, np.ones(2, bool))
    assert keypoint_ap([partial], (0.5,))[0.5] == pytest.approx(1.0)
    assert math.isnan(keypoint_ap([ImageEval(np.zeros(1), np.zeros((1, 0)), np.zeros(0, bool),
                                             np.zeros(1, bool))], (0.5,))[0.5])


def test_keypoint_ap_drops_at_stricter_oks_thresholds() -> None:
    e = ImageEval(np.array([0.9]), np.array([[0.7]]), np.zeros(1, bool), np.zeros(1, bool))
    ap = keypoint_ap([e], (0.5, 0.75))
    assert ap[0.5] == pytest.approx(1.0) and ap[0.75] == 0.0


def test_root_in_box_is_positive_inside_the_box_and_highest_at_its_centre() -> None:
    g = GTPerson(np.full((K, 2), np.nan), np.zeros(K, bool), 1.0, np.array([0.0, 0.0, 100.0, 200.0]))
    sim = root_in_box_matrix(np.array([[50.0, 100.0], [90.0, 100.0], [120.0, 100.0]]), [g])[:, 0]
    assert sim[0] > sim[1] > 0 and sim[2] == 0


def test_a_small_skeleton_on_the_right_person_is_found_only_by_the_lenient_rule() -> None:
    a = _skeleton_2d(100, 50)
    img = RealImage("coco", Path("e.jpg"), 640, 480, [_gt(a)], name="coco/e.jpg")
    tiny = _skeleton_2d(100, 120, 0.2)  # a short torso line around the hips: what users saw
    r = score_predictions([img], [_persons([tiny], [0.9])], SK)["overall_2d"]
    assert (r["recall"], r["precision"]) == (0.0, 0.0)
    assert (r["recall_root_in_box"], r["precision_root_in_box"]) == (1.0, 1.0)


def test_the_per_joint_breakdown_names_the_misplaced_joint_of_the_people_found() -> None:
    a, b = _skeleton_2d(100, 50), _skeleton_2d(400, 50)
    img = RealImage("coco", Path("j.jpg"), 640, 480, [_gt(a), _gt(b)], name="coco/j.jpg")
    pa, pb = a.copy(), b.copy()
    pa[J["l_wrist"]] += (40.0, 0.0)  # one person's left wrist 40 px off, everything else exact
    per_joint = score_predictions([img], [_persons([pa, pb], [0.9, 0.8])], SK)["per_joint_2d_root_in_box"]
    assert "mid_hip" not in per_joint  # never labelled in 2D
    assert per_joint["l_wrist"]["labelled"] == 2 and per_joint["l_wrist"]["similarity_ge_0.5"] == 0.5
    assert abs(per_joint["l_wrist"]["mean_similarity"] - 0.5) < 1e-3  # 1 and exp(-40²/(2·5000·(2·0.062)²)) ≈ 0
    assert all(v["mean_similarity"] == 1.0 for k, v in per_joint.items() if k != "l_wrist")


def test_the_offset_breakdown_tells_arms_that_hug_the_torso_from_hips_that_sit_too_high() -> None:
    a, b = _skeleton_2d(100, 50), _skeleton_2d(400, 50)
    img = RealImage("coco", Path("o.jpg"), 640, 480, [_gt(a), _gt(b)], name="coco/o.jpg")
    preds = []
    for gt in (a, b):
        p = gt.copy()
        mid = gt[:, 0].mean()
        for name in ("l_wrist", "r_wrist"):  # both wrists pulled 10 px towards the mid-line
            p[J[name], 0] -= 10.0 * np.sign(gt[J[name], 0] - mid)
        for name in ("l_hip", "r_hip"):  # both hips 6 px too high
            p[J[name], 1] -= 6.0
        preds.append(p)
    height = _gt(a).box[3]
    off = score_predictions([img], [_persons(preds, [0.9, 0.8])], SK)["per_joint_offset_2d_root_in_box"]
    assert off["l_wrist"]["median_outward"] == pytest.approx(-10.0 / height, abs=1e-4)
    assert off["r_wrist"]["median_outward"] == pytest.approx(-10.0 / height, abs=1e-4)
    assert off["l_wrist"]["median_down"] == pytest.approx(0.0)
    assert off["l_hip"]["median_down"] == pytest.approx(-6.0 / height, abs=1e-4) and off["l_hip"]["median_outward"] == 0.0
    assert off["neck"]["median_outward"] is None  # no side, so no outward direction
    assert off["l_wrist"]["median_distance"] == pytest.approx(10.0 / height, abs=1e-4)
    assert off["l_knee"] == {"labelled": 2, "median_down": 0.0, "median_outward": 0.0, "median_distance": 0.0}


def test_the_confidence_bins_show_whether_confident_joints_are_the_well_placed_ones() -> None:
    a = _skeleton_2d(100, 50)
    img = RealImage("coco", Path("c.jpg"), 640, 480, [_gt(a)], name="coco/c.jpg")
    p = a.copy()
    p[J["l_wrist"]] += (40.0, 0.0)  # the one misplaced joint ...
    pred = _persons([p], [0.9], conf=0.95)
    pred.joint_confidence[0, J["l_wrist"]] = 0.2  # ... is the one with a low confidence
    bins = score_predictions([img], [pred], SK)["confidence_vs_placement_2d_root_in_box"]
    by_low = {b["confidence"][0]: b for b in bins}
    assert by_low[0.0] == {"confidence": [0.0, 0.3], "joints": 1, "similarity_ge_0.5": 0.0}
    assert by_low[0.9]["joints"] == 13 and by_low[0.9]["similarity_ge_0.5"] == 1.0  # 14 labelled, mid_hip never
    assert by_low[0.5]["joints"] == 0 and by_low[0.5]["similarity_ge_0.5"] is None


def test_recall_by_height_separates_the_near_people_missed_from_the_far_people_found() -> None:
    far = _skeleton_2d(100, 50)  # box 70 × 225 px: 0.47 of a 480-px image
    near = _skeleton_2d(400, 20, 1.9)  # 0.89 of the image height, missed
    img = RealImage("coco", Path("h.jpg"), 640, 480, [_gt(far), _gt(near)], name="coco/h.jpg")
    rows = score_predictions([img], [_persons([far], [0.9])], SK)["recall_by_height_2d"]
    by_bin = {r["height_share"]: r for r in rows}
    assert [r["height_share"] for r in rows] == ["0–0.25", "0.25–0.5", "0.5–0.75", "≥ 0.75"]
    assert by_bin["0.25–0.5"] == {"height_share": "0.25–0.5", "people": 1, "recall": 1.0, "recall_root_in_box": 1.0}
    assert by_bin["≥ 0.75"]["people"] == 1 and by_bin["≥ 0.75"]["recall"] == 0.0
    assert by_bin["0–0.25"]["people"] == 0 and by_bin["0–0.25"]["recall"] is None


# -- 3D -------------------------------------------------------------------------------------------------


def test_root_depth_error_is_a_percentage_of_the_true_distance() -> None:
    assert root_depth_error_pct(5.5, 5.0) == pytest.approx(10.0)
    assert root_depth_error_pct(4.5, 5.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="positive"):
        root_depth_error_pct(1.0, 0.0)


def test_mpjpe_absolute_sees_a_translation_that_root_alignment_removes() -> None:
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(K, 3))
    pred = gt + np.array([0.0, 0.0, 0.3])
    mask = np.ones(K, bool)
    assert mpjpe_mm(pred, gt, mask) == pytest.approx(300.0)
    assert mpjpe_mm(pred, gt, mask, pred[2], gt[2]) == pytest.approx(0.0, abs=1e-9)
    noisy = pred.copy()
    noisy[5] += (0.1, 0.0, 0.0)
    assert mpjpe_mm(noisy, gt, mask, noisy[2], gt[2]) == pytest.approx(100.0 / K)
    assert math.isnan(mpjpe_mm(pred, gt, np.zeros(K, bool)))


# -- the whole scorer on synthetic images ---------------------------------------------------------------


def _image_3d(z: float) -> tuple[RealImage, np.ndarray]:
    cam = Intrinsics(500.0, 500.0, 320.0, 240.0)
    rng = np.random.default_rng(1)
    j3 = np.column_stack([rng.uniform(-0.3, 0.3, K), np.linspace(-0.8, 0.9, K), np.full(K, z)])
    j3[J["mid_hip"]] = (j3[J["l_hip"]] + j3[J["r_hip"]]) / 2
    j2 = cam.project(j3)
    g = _gt(j2, area=float(np.ptp(j2[:, 0]) * np.ptp(j2[:, 1])))
    gt3 = j3.copy()
    gt3[J["nose"]] = np.nan  # the 3D datasets do not label a nose
    g.joints_3d, g.root_3d = gt3, (j3[J["l_hip"]] + j3[J["r_hip"]]) / 2
    return RealImage("h36m", Path("a.jpg"), 640, 480, [g], cam, name="h36m/a.jpg"), j3


def test_scorer_reports_perfect_figures_for_ground_truth_predictions() -> None:
    img3, j3 = _image_3d(4.0)
    a, b = _skeleton_2d(100, 50), _skeleton_2d(300, 60)
    img2 = RealImage("coco", Path("b.jpg"), 640, 480, [_gt(a), _gt(b)], name="coco/b.jpg")
    preds = [_persons([img3.camera().project(j3)], [0.9], [j3], conf=0.8),
             _persons([a, b], [0.9, 0.7])]
    r = score_predictions([img3, img2], preds, SK)
    o = r["overall_2d"]
    assert (o["recall"], o["precision"], o["ap_oks50"], o["ap_oks50_95"]) == (1.0, 1.0, 1.0, 1.0)
    assert r["per_dataset_2d"]["coco"]["joints_conf_ge_0.3"] == 1.0
    t = r["overall_3d"]
    assert (t["found"], t["persons"]) == (1, 1)
    assert t["median_root_depth_error_pct"] == 0.0 and t["median_mpjpe_rel_mm"] == 0.0
    assert r["frames_3d"][0]["shared_joints"] == K - 2  # no nose in 3D, root excluded
    assert "| coco | 1 | 2 (0)" in format_table(r)
    h = headline(r)
    assert (h["3d_found"], h["3d_persons"], h["2d_recall"], h["2d_ap_oks50"]) == (1, 1, 1.0, 1.0)


def test_scorer_measures_depth_error_and_counts_misses_false_positives_and_low_confidence() -> None:
    img3, j3 = _image_3d(4.0)
    far = j3 * (4.4 / 4.0)  # same 2D projection, 10 % further away
    a, b = _skeleton_2d(100, 50), _skeleton_2d(300, 60)
    img2 = RealImage("coco", Path("b.jpg"), 640, 480, [_gt(a), _gt(b)], name="coco/b.jpg")
    preds = [_persons([img3.camera().project(far)], [0.9], [far]),
             _persons([a, _skeleton_2d(550, 300)], [0.9, 0.95], conf=0.1)]  # b missed, one false positive
    r = score_predictions([img3, img2], preds, SK)
    f = r["frames_3d"][0]
    assert f["root_depth_error_pct"] == pytest.approx(10.0, abs=1e-3)
    assert f["root_depth_signed_pct"] == pytest.approx(10.0, abs=1e-3)
    assert f["mpjpe_abs_mm"] > 300 and f["mpjpe_rel_mm"] > 0
    c = r["per_dataset_2d"]["coco"]
    assert (c["recall"], c["precision"], c["joints_conf_ge_0.3"]) == (0.5, 0.5, 0.0)
    assert c["ap_oks50"] == pytest.approx(0.5 * 51 / 101, abs=1e-4)  # FP ranked first, recall 0.5


def test_unlabelled_people_ignore_regions_and_partial_labels_do_not_make_false_positives() -> None:
    a = _skeleton_2d(100, 50)
    few = np.zeros(K, bool)
    few[[J["l_shoulder"], J["r_shoulder"]]] = True
    assert MIN_LABELLED_JOINTS > 2
    stray = _skeleton_2d(400, 100)
    regions = [np.array([[380.0, 0.0], [480.0, 0.0], [480.0, 400.0], [380.0, 400.0]])]
    img = RealImage("posetrack18", Path("c.jpg"), 640, 480, [_gt(a), _gt(_skeleton_2d(250, 50), few)],
                    ignore_regions=regions, name="posetrack18/c.jpg")
    partial = RealImage("mpii", Path("d.jpg"), 640, 480, [_gt(a)], exhaustive=False, name="mpii/d.jpg")
    preds = [_persons([a, _skeleton_2d(250, 50), stray], [0.9, 0.8, 0.7]), _persons([a, stray], [0.6, 0.9])]
    r = score_predictions([img, partial], preds, SK)
    pt, mp = r["per_dataset_2d"]["posetrack18"], r["per_dataset_2d"]["mpii"]
    assert (pt["gt_persons"], pt["ignored_gt_persons"], pt["false_positives"], pt["precision"]) == (1, 1, 0, 1.0)
    assert (mp["false_positives"], mp["ap_oks50"]) == (0, 1.0)
    empty = score_predictions([partial], [Persons.empty(K)], SK)["overall_2d"]
    assert (empty["recall"], empty["precision"], empty["ap_oks50"]) == (0.0, None, 0.0)


# -- readers --------------------------------------------------------------------------------------------


def test_coco_style_reader_maps_joints_ignores_empty_people_and_defaults_the_area(tmp_path: Path) -> None:
    (tmp_path / "crowdpose").mkdir()
    cv2.imwrite(str(tmp_path / "crowdpose" / "x.jpg"), np.zeros((40, 60, 3), np.uint8))
    names = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
             "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "head", "neck"]
    kp = np.zeros((14, 3))
    kp[:, :2], kp[:, 2] = np.arange(28).reshape(14, 2) + 1, 2
    kp[12:, 2] = (1, 1)
    kp[4] = 0  # left wrist unlabelled
    anns = [{"image_id": 7, "keypoints": kp.reshape(-1).tolist(), "bbox": [0, 0, 10, 20], "iscrowd": 0},
            {"image_id": 7, "keypoints": [0] * 42, "bbox": [30, 0, 10, 20], "iscrowd": 0}]
    data = {"categories": [{"keypoints": names}], "images": [{"id": 7, "file_name": "x.jpg", "width": 60,
                                                               "height": 40}], "annotations": anns}
    (tmp_path / "crowdpose" / "test_crowdpose.json").write_text(json.dumps(data))
    (img,) = read_coco_style(tmp_path, "crowdpose", SK)
    p, empty = img.persons
    assert p.labelled.sum() == 12 and not p.labelled[J["l_wrist"]] and not p.labelled[J["nose"]]
    assert p.keypoints[J["neck"]].tolist() == [27.0, 28.0]  # source index 13
    assert p.keypoints[J["r_shoulder"]].tolist() == [3.0, 4.0]
    assert p.area == pytest.approx(0.53 * 200)
    assert empty.ignored and not p.ignored


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RealDataError, match="no real-image development set"):
        load_realdata(tmp_path, SK)


def _real_folder() -> Path | None:
    for cand in (Path("/work/shared/realdata"), Path(__file__).resolve().parents[3].parent / "shared" / "realdata"):
        if (cand / "mmpose_tests" / "cameras.json").is_file():
            return cand
    return None


@pytest.mark.skipif(_real_folder() is None, reason="../shared/realdata (the real-image development set) is absent")
def test_real_folder_loads_every_annotated_image_with_calibrated_3d_frames() -> None:
    images = load_realdata(_real_folder(), SK)  # type: ignore[arg-type]
    per = {}
    for im in images:
        per[im.dataset] = per.get(im.dataset, 0) + 1
    assert per == {"coco": 4, "crowdpose": 2, "aic": 3, "ochuman": 3, "posetrack18": 3, "jhmdb": 3, "mhp": 2,
                   "exlpose": 2, "humanart": 1, "mpii": 5, "h36m": 4, "mpi_inf_3dhp": 4}
    assert len({im.name for im in images}) == len(images)
    three_d = [p for im in images for p in im.persons if p.joints_3d is not None]
    assert len(three_d) == 8
    for im in images:
        if im.dataset in ("h36m", "mpi_inf_3dhp"):
            assert im.intrinsics is not None and np.isfinite(im.intrinsics.matrix()).all()
            (p,) = im.persons
            assert p.root_3d is not None and 2.0 < p.root_3d[2] < 8.0
            # the stored 2D joints are the projections of the 3D ones (a wrong camera is tens of px off)
            lab = p.labelled & np.isfinite(p.joints_3d).all(1)
            assert np.abs(im.intrinsics.project(p.joints_3d[lab]) - p.keypoints[lab]).max() < 5.0
        else:
            assert im.intrinsics is None
    assert sum(len(im.persons) for im in images if im.dataset not in ("h36m", "mpi_inf_3dhp")) == 67


# -- the script -------------------------------------------------------------------------------------------


def _load_module(path: Path, name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_score_realdata_script_writes_figures_and_a_sheet_for_any_checkpoint(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[3]
    fixtures = _load_module(repo / "tests/apps/cli_fixtures.py", "cli_fixtures_realdata")
    ckpt = fixtures.tiny_checkpoint(tmp_path / "tiny")  # type: ignore[attr-defined]
    root = tmp_path / "realdata" / "mmpose_tests"
    (root / "coco").mkdir(parents=True)
    (root / "cameras.json").write_text("{}")
    cv2.imwrite(str(root / "coco" / "a.jpg"), np.full((80, 120, 3), 90, np.uint8))
    kp = np.zeros((17, 3))
    kp[5:, :2] = np.column_stack([np.linspace(40, 80, 12), np.linspace(10, 70, 12)])
    kp[5:, 2] = 2
    data = {"categories": [{"keypoints": [
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
        "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
        "right_ankle"]}], "images": [{"id": 1, "file_name": "a.jpg", "width": 120, "height": 80}],
        "annotations": [{"image_id": 1, "keypoints": kp.reshape(-1).tolist(), "bbox": [35, 5, 50, 70], "area": 1800}]}
    (root / "coco" / "test_coco.json").write_text(json.dumps(data))
    script = _load_module(repo / "training/score_realdata.py", "score_realdata_under_test")
    out = tmp_path / "out"
    rc = script.main(["--checkpoint", str(ckpt), "--data", str(tmp_path / "realdata"), "--out", str(out),  # type: ignore[attr-defined]
                      "--datasets", "coco"])
    assert rc == 0
    result = json.loads((out / "realdata.json").read_text())
    assert result["overall_2d"]["images"] == 1 and result["overall_2d"]["gt_persons"] == 1
    assert result["score_thr"] == pytest.approx(0.07)  # the checkpoint's own threshold, nothing tuned
    assert result["images"][0]["predictions"] >= 1
    assert result["headline"]["3d_persons"] == 0 and result["headline"]["2d_recall"] is not None
    sheet = cv2.imread(str(out / "realdata_sheet.jpg"))
    assert sheet is not None and sheet.shape[0] > 0
    assert script.main(["--checkpoint", str(tmp_path / "nope"), "--data", str(tmp_path / "realdata"),  # type: ignore[attr-defined]
                        "--out", str(out)]) == 2


def test_recall_and_ap_equal_pycocotools_cocoeval_on_a_random_set() -> None:
    """The same people, predictions and sigmas through pycocotools' COCOeval (skips where it is absent)."""
    pytest.importorskip("pycocotools")
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    coco_index = dict(SK.coco_map)  # ours → COCO keypoint index
    gt_images, anns, dets, ours, preds = [], [], [], [], []

    def to_coco(xy: np.ndarray, lab: np.ndarray, prediction: bool = False) -> list[float]:
        kp = np.zeros((17, 3))
        if prediction:  # eyes and ears: never labelled, but COCOeval's box rule for unlabelled people sees them
            kp[1:5] = (*xy[J["nose"]], 2)
        for j, c in coco_index.items():
            if lab[j]:
                kp[c] = (*xy[j], 2)
        return kp.reshape(-1).tolist()

    for image_id in range(1, 41):
        people: list[GTPerson] = []
        p_xy: list[np.ndarray] = []
        p_s: list[float] = []
        for _ in range(int(rng.integers(1, 4))):
            xy = _skeleton_2d(rng.uniform(60, 600), rng.uniform(40, 300), rng.uniform(0.5, 1.6))
            lab = np.array([j in coco_index for j in range(K)]) & (rng.random(K) < 0.85)
            if lab.sum() < MIN_LABELLED_JOINTS:
                lab = np.array([j in coco_index for j in range(K)])
            box = np.array([*xy.min(0), *(xy.max(0) - xy.min(0))])
            area = float(rng.uniform(0.4, 0.7) * box[2] * box[3])
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0, "area": area,
                         "bbox": box.tolist(), "keypoints": to_coco(xy, lab), "num_keypoints": int(lab.sum())})
            people.append(GTPerson(np.where(lab[:, None], xy, np.nan), lab, area, box))
            if rng.random() < 0.8:  # found, with an error from tiny to large
                p_xy.append(xy + rng.normal(scale=rng.uniform(0.5, 12.0), size=(K, 2)))
                p_s.append(float(rng.random()))
        if rng.random() < 0.3:  # a person without keypoints (ignored) far right, one prediction inside its box
            xy = _skeleton_2d(rng.uniform(1000, 1200), 100, 1.0)
            box = np.array([*xy.min(0), *(xy.max(0) - xy.min(0))])
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0, "area": 5000.0,
                         "bbox": box.tolist(), "keypoints": [0] * 51, "num_keypoints": 0})
            people.append(GTPerson(np.full((K, 2), np.nan), np.zeros(K, bool), 5000.0, box))
            p_xy.append(_skeleton_2d(box[0] + box[2] / 2, box[1] + 20, 0.3))
            p_s.append(float(rng.random()))
        for _ in range(int(rng.integers(0, 3))):  # false positives
            p_xy.append(_skeleton_2d(rng.uniform(0, 650), rng.uniform(0, 350), rng.uniform(0.3, 1.6)))
            p_s.append(float(rng.random()))
        gt_images.append({"id": image_id, "width": 1300, "height": 500, "file_name": f"{image_id}.jpg"})
        dets += [{"image_id": image_id, "category_id": 1, "score": s, "keypoints": to_coco(xy, np.ones(K, bool), True)}
                 for xy, s in zip(p_xy, p_s, strict=True)]
        ours.append(RealImage("coco", Path(f"{image_id}.jpg"), 1300, 500, people, name=f"coco/{image_id}.jpg"))
        preds.append(_persons(p_xy, p_s) if p_xy else Persons.empty(K))

    gt = COCO()
    gt.dataset = {"images": gt_images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    r = score_predictions(ours, preds, SK)["overall_2d"]
    assert 0.2 < r["ap_oks50_95"] < 0.9  # a set that exercises both hits and misses
    assert r["ap_oks50_95"] == pytest.approx(ev.stats[0], abs=1e-4)
    assert r["ap_oks50"] == pytest.approx(ev.stats[1], abs=1e-4)
    assert r["recall"] == pytest.approx(ev.stats[6], abs=1e-4)  # AR at OKS 0.5 = recall of all predictions
