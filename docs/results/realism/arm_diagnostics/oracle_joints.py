"""What fixing one joint group would be worth: the real 2D figures with those joints of the found people set right.

Runs a checkpoint on the real development set once, then rescores its predictions (the scorer's own rules,
``das_core.evaluation.realdata.score_predictions``) with the labelled elbows and wrists (or knees and ankles, hips,
everything) of each person found by the lenient rule (the predicted root inside the box) replaced by the
annotation. An upper bound on what better arms alone can buy, not a result.

    python docs/results/realism/arm_diagnostics/oracle_joints.py --checkpoint das_core/assets/das_demo --real .carry/realdata
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arm_diagnostics import lenient_pairs, rgb  # noqa: E402

from das_core.engine.estimator import Estimator  # noqa: E402
from das_core.evaluation.realdata import headline, load_realdata, score_predictions  # noqa: E402
from das_core.skeletons import get_skeleton  # noqa: E402

GROUPS = {"as predicted": (), "elbows and wrists right": ("l_elbow", "l_wrist", "r_elbow", "r_wrist"),
          "knees and ankles right": ("l_knee", "l_ankle", "r_knee", "r_ankle"), "hips right": ("l_hip", "r_hip")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="das_core/assets/das_demo")
    ap.add_argument("--real", default=".carry/realdata")
    args = ap.parse_args()
    est = Estimator.from_checkpoint(args.checkpoint, device="cpu")
    sk = get_skeleton(est.cfg.skeleton)
    names = list(sk.joint_names)
    images = load_realdata(args.real, sk)
    predictions = [est(rgb(im.path), im.camera()) for im in images]
    groups = {**GROUPS, "every joint right": tuple(names)}
    for title, joints in groups.items():
        fixed = []
        for im, p in zip(images, predictions, strict=True):
            j2 = np.array(p.joints_2d, np.float32)
            gt = [(g.keypoints, g.labelled, g.box) for g in im.persons if not g.ignored]
            for g_i, p_i in lenient_pairs(gt, p, names.index("mid_hip")) if len(p) else []:
                kp, lab, _ = gt[g_i]
                for name in joints:
                    if lab[names.index(name)]:
                        j2[p_i, names.index(name)] = kp[names.index(name)]
            fixed.append(replace(p, joints_2d=j2))
        h = headline(score_predictions(images, fixed, sk))
        print(f"{title:24s} strict recall {h['2d_recall']:.3f} precision {h['2d_precision']:.3f} "
              f"AP@0.5 {h['2d_ap_oks50']:.3f} AP@[.5:.95] {h['2d_ap_oks50_95']:.3f}")


if __name__ == "__main__":
    main()
