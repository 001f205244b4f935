"""Does the network look at an arm to place it? Erase the arm, see whether the predicted wrist moves (a diagnostic).

For each person matched by the lenient rule (the predicted root inside the person's box) with a labelled shoulder,
elbow and wrist on one side, that arm (a thick polyline shoulder → elbow → wrist → a hand length beyond, 0.1 of the
person's height wide, :func:`body_scale`) is painted out with OpenCV's inpainting and the image run again. Reported per set: how far the
predicted wrist and elbow move (box heights), and how far the prediction was from the annotation before. A network
that finds the arm in the pixels moves its wrist a lot when the arm is gone; one that places it from the body's
context moves it little. The same on synthetic people (realistic val scenes) is the reference.

    python docs/results/realism/arm_diagnostics/arm_erasure.py --checkpoint das_core/assets/das_demo \
        --real .carry/realdata --synthetic /tmp/an/val/val.json --max-synthetic 80
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from arm_diagnostics import lenient_pairs, real_images, synthetic_images  # noqa: E402

from das_core.engine.estimator import Estimator  # noqa: E402
from das_core.skeletons import get_skeleton  # noqa: E402


def body_scale(kp: np.ndarray, lab: np.ndarray, box: np.ndarray, ix: dict[str, int]) -> float:
    """About the person's height in pixels: the box height, or 3.3 torso lengths (neck → mid-hips) when larger
    (a person cut by the frame has a short box; the synthetic boxes are the tight boxes of the visible joints)."""
    if lab[ix["neck"]] and lab[ix["l_hip"]] and lab[ix["r_hip"]]:
        torso = float(np.linalg.norm(kp[ix["neck"]] - (kp[ix["l_hip"]] + kp[ix["r_hip"]]) / 2))
        return max(float(box[3]), 3.3 * torso)
    return float(box[3])


def erase_arm(rgb: np.ndarray, kp: np.ndarray, s: int, e: int, w: int, scale: float) -> np.ndarray:
    """Paint out shoulder → elbow → wrist → a hand length beyond, 0.1 × ``scale`` wide (a sleeve is ~0.06)."""
    d = kp[w] - kp[e]
    hand = kp[w] + d / max(float(np.linalg.norm(d)), 1e-6) * 0.11 * scale
    pts = np.round(np.stack([kp[s], kp[e], kp[w], hand])).astype(np.int32)
    mask = np.zeros(rgb.shape[:2], np.uint8)
    cv2.polylines(mask, [pts], False, 255, thickness=max(3, int(0.1 * scale)))
    return cv2.inpaint(rgb, mask, 5, cv2.INPAINT_TELEA)


def run(name: str, images, est: Estimator, names: list[str], max_arms: int | None = None) -> None:
    ix = {n: i for i, n in enumerate(names)}
    root = ix["mid_hip"]
    moved_w, moved_e, err_w, lost = [], [], [], 0
    for rgb, cam, gt in images:
        if max_arms is not None and len(moved_w) + lost >= max_arms:
            break
        persons = est(rgb, cam)
        for g_i, p_i in lenient_pairs(gt, persons, root):
            kp, lab, box = gt[g_i]
            for side in "lr":
                s, e, w = ix[f"{side}_shoulder"], ix[f"{side}_elbow"], ix[f"{side}_wrist"]
                if not (lab[s] and lab[e] and lab[w]):
                    continue
                edited = est(erase_arm(rgb, kp, s, e, w, body_scale(kp, lab, box, ix)), cam)
                if len(edited) == 0:
                    lost += 1
                    continue
                same = int(np.argmin(np.linalg.norm(edited.joints_2d[:, root] - persons.joints_2d[p_i, root], axis=1)))
                if np.linalg.norm(edited.joints_2d[same, root] - persons.joints_2d[p_i, root]) > 0.15 * box[3]:
                    lost += 1
                    continue
                h = box[3]
                moved_w.append(np.linalg.norm(edited.joints_2d[same, w] - persons.joints_2d[p_i, w]) / h)
                moved_e.append(np.linalg.norm(edited.joints_2d[same, e] - persons.joints_2d[p_i, e]) / h)
                err_w.append(np.linalg.norm(persons.joints_2d[p_i, w] - kp[w]) / h)
    mw, me, ew = map(np.array, (moved_w, moved_e, err_w))
    print(f"== {name}: {len(mw)} arms erased ({lost} more whose person was lost)")
    print(f"  wrist moved by the erasure, median {np.median(mw):.3f} H (p75 {np.percentile(mw, 75):.3f}); "
          f"elbow {np.median(me):.3f} H; wrist error before, median {np.median(ew):.3f} H")
    print(f"  share of wrists moved < 0.02 H: {np.mean(mw < 0.02):.0%}; moved by more than a quarter of their error: "
          f"{np.mean(mw > 0.25 * ew):.0%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="das_core/assets/das_demo")
    ap.add_argument("--real", default=".carry/realdata")
    ap.add_argument("--synthetic", required=True)
    ap.add_argument("--max-synthetic", type=int, default=80, help="synthetic arms to erase (each costs a run)")
    args = ap.parse_args()
    est = Estimator.from_checkpoint(args.checkpoint, device="cpu")
    names = list(get_skeleton(est.cfg.skeleton).joint_names)
    run("real development set", real_images(est, args.real), est, names)
    run(f"synthetic {args.synthetic}", synthetic_images(args.synthetic), est, names, args.max_synthetic)


if __name__ == "__main__":
    main()
