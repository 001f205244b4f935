"""Per dataset, the median 'down' offset of the hips and shoulders (box heights) of the people the shipped
checkpoint finds by the lenient rule; how docs/RESULTS.md's per-dataset hip figures were made:
  python docs/results/realism/joint_offsets/hip_bias_by_dataset.py > docs/results/realism/joint_offsets/hip_bias_by_dataset.txt
"""
import cv2
import numpy as np

from das_core.engine.estimator import Estimator
from das_core.evaluation.realdata import joint_offsets, load_realdata, root_in_box_matrix
from das_core.skeletons import get_skeleton

est = Estimator.from_checkpoint("das_core/assets/das_demo", device="cpu")
sk = get_skeleton(est.cfg.skeleton)
names = list(sk.joint_names)
hips, shoulders = [names.index("l_hip"), names.index("r_hip")], [names.index("l_shoulder"), names.index("r_shoulder")]
by: dict[str, list[tuple[float, float]]] = {}
for img in load_realdata(".carry/realdata", sk):
    p = est(cv2.cvtColor(cv2.imread(str(img.path)), cv2.COLOR_BGR2RGB), img.camera())
    if len(p) == 0:
        continue
    j2 = np.asarray(p.joints_2d, np.float64).reshape(len(p), sk.num_joints, 2)
    rib = root_in_box_matrix(j2[:, sk.root], img.persons)
    for gi, g in enumerate(img.persons):
        c = np.flatnonzero(rib[:, gi] > 0)
        if g.ignored or not len(c):
            continue
        o = joint_offsets(j2[c[np.argmax(np.asarray(p.scores)[c])]], g, sk)
        if np.isfinite(o[hips, 1]).any() and np.isfinite(o[shoulders, 1]).any():
            by.setdefault(img.dataset, []).append((np.nanmean(o[hips, 1]), np.nanmean(o[shoulders, 1])))
for d, v in by.items():
    a = np.array(v)
    print(f"{d:14s} people {len(a):2d}  hips down median {np.median(a[:, 0]):+.3f}  shoulders down median {np.median(a[:, 1]):+.3f}")
