"""Would per-joint confidence maps (fitted on synthetic val, as the shipped global map is) rank real joints better?

Diagnostic of 2026-12-04 (ninth session); output in perjoint_calibration.txt. Needs /tmp/cval/val.json from
  das make-synthetic --out /tmp/cval --split val --num 150 --seed 0 --preset realistic --backgrounds .bg
and .carry/realdata; run from the repository root:
  python docs/results/realism/confidence_per_joint/perjoint_calibration.py
A real joint counts as placed when its keypoint similarity is >= 0.5 (the scorer's per-joint rule); the people are
the best-scoring prediction with its root in each annotated person's box (the lenient rule, without its greedy
one-to-one step).
"""

import dataclasses
import importlib.util

import cv2
import numpy as np
import torch
from scipy.stats import rankdata

from das_core.engine.decode import calibrate_confidence
from das_core.engine.estimator import Estimator
from das_core.evaluation.realdata import DATASETS_2D, keypoint_similarity, load_realdata, root_in_box_matrix, sigmas_for
from das_core.skeletons import get_skeleton

spec = importlib.util.spec_from_file_location("cc", "training/confidence_calibration.py")
cc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cc)  # type: ignore[union-attr]
K = 15


def auc(ok: np.ndarray, score: np.ndarray) -> float:
    r = rankdata(score)
    n1, n0 = ok.sum(), len(ok) - ok.sum()
    return float((r[ok].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def apply(raw: np.ndarray, knots: tuple) -> np.ndarray:
    return calibrate_confidence(torch.as_tensor(raw, dtype=torch.float32), tuple(knots)).numpy()


est = Estimator.from_checkpoint("das_core/assets/das_demo", device="cpu")
global_knots = est.cfg.decode.confidence_calibration
est.cfg = dataclasses.replace(est.cfg, decode=dataclasses.replace(est.cfg.decode, confidence_calibration=()))

conf, right, joint = [], [], []
ann = cc.read_annotations("/tmp/cval/val.json")
for image, persons, _ in cc.run_estimator(est, ann, 150):
    f = cc.frame_result(image, persons)
    for i, m in enumerate(cc.match_hungarian_2d(f.gt_2d, f.gt_visible, f.pred_2d)):
        v = f.gt_visible[i]
        if m < 0 or not v.any():
            continue
        pts = f.gt_2d[i][v]
        diag = max(float(np.linalg.norm(pts.max(0) - pts.min(0))), 1.0)
        conf.append(persons.joint_confidence[m][v])
        right.append(np.linalg.norm(f.pred_2d[m][v] - pts, axis=-1) / diag < 0.05)
        joint.append(np.flatnonzero(v))
conf_a, right_a, joint_a = (np.concatenate(x) for x in (conf, right, joint))
print("synthetic val joints", len(conf_a))
per_joint = {k: cc.fit_knots(conf_a[joint_a == k], right_a[joint_a == k]) for k in range(K)}

sk = get_skeleton(est.cfg.skeleton)
sig = sigmas_for(sk)
rows = []
for img in load_realdata(".carry/realdata", sk):
    if img.dataset not in DATASETS_2D:
        continue
    p = est(cv2.cvtColor(cv2.imread(str(img.path)), cv2.COLOR_BGR2RGB), img.camera())
    if len(p) == 0:
        continue
    j2 = np.asarray(p.joints_2d, np.float64).reshape(len(p), K, 2)
    rib = root_in_box_matrix(j2[:, sk.root], img.persons)
    for gi, g in enumerate(img.persons):
        cand = np.flatnonzero(rib[:, gi] > 0)
        if g.ignored or not len(cand):
            continue
        i = cand[np.argmax(np.asarray(p.scores)[cand])]
        ks = keypoint_similarity(j2[i], g, sig)
        rows += [(k, float(p.joint_confidence[i][k]), ks[k] >= 0.5) for k in range(K) if g.labelled[k] and np.isfinite(ks[k])]
r = np.array(rows)
k_, raw, ok = r[:, 0].astype(int), r[:, 1], r[:, 2].astype(bool)
for name, c in (("global map", apply(raw, global_knots)),
                ("per-joint maps", np.array([apply(np.array([x]), per_joint[k])[0] for k, x in zip(k_, raw, strict=True)]))):
    cells = []
    for lo, hi in ((0, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01)):
        s = (c >= lo) & (c < hi)
        cells.append(f"{lo:.1f}-{min(hi, 1):.1f}: n={s.sum():3d} placed={ok[s].mean() if s.any() else float('nan'):.2f}")
    print(f"{name}: AUC {auc(ok, c):.3f} | " + " | ".join(cells))
