"""Missed real people: is there a low-score prediction on them? (a diagnostic record)

For every annotated person of the real development set (2D and 3D images, people with fewer than 4 labelled joints
left out), the highest score of a prediction whose root lies in the person's box, with the shipped weights decoded
at score_thr 0.02 instead of their 0.2; and how many predictions each threshold keeps over all images.

    ln -s $PWD/das_core/assets/das_demo.safetensors /tmp/ck/shipped_low.safetensors
    sed 's/^    score_thr: 0.2$/    score_thr: 0.02/' das_core/assets/das_demo.yaml > /tmp/ck/shipped_low.yaml
    python docs/results/realism/detection_scores/near_miss.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "arm_diagnostics"))
from arm_diagnostics import real_images  # noqa: E402

from das_core.engine.estimator import Estimator  # noqa: E402
from das_core.skeletons import get_skeleton  # noqa: E402

THRESHOLDS = (0.02, 0.05, 0.1, 0.2)

est = Estimator.from_checkpoint("/tmp/ck/shipped_low", device="cpu")
root = list(get_skeleton(est.cfg.skeleton).joint_names).index("mid_hip")
best, kept = [], dict.fromkeys(THRESHOLDS, 0)
for image, cam, gt in real_images(est, ".carry/realdata"):
    p = est(image, cam)
    for t in THRESHOLDS:
        kept[t] += int((p.scores >= t).sum())
    r = p.joints_2d[:, root] if len(p) else np.zeros((0, 2))
    for _, _, (x, y, w, h) in gt:
        inside = (r[:, 0] >= x) & (r[:, 0] <= x + w) & (r[:, 1] >= y) & (r[:, 1] <= y + h)
        best.append(float(p.scores[inside].max()) if inside.any() else 0.0)
b = np.array(best)
print(f"{len(b)} annotated people; best in-box score: >=0.2 {np.mean(b >= 0.2):.2f}, "
      f"0.1-0.2 {np.mean((b >= 0.1) & (b < 0.2)):.2f}, 0.05-0.1 {np.mean((b >= 0.05) & (b < 0.1)):.2f}, "
      f"0.02-0.05 {np.mean((b >= 0.02) & (b < 0.05)):.2f}, none >= 0.02 {np.mean(b < 0.02):.2f}")
print("predictions at or above each threshold (all images):", kept)
