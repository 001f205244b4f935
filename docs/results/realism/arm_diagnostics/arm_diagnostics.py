"""Where the shipped network's arms go wrong on real people, set against synthetic ones (a diagnostic record).

Runs a checkpoint on the real development set and on a synthetic realistic val split, matches people by the
scorer's lenient rule (the predicted root inside the person's box, one-to-one, highest score first; people with
fewer than 4 labelled joints skipped) and prints, per bone, the 2D length ratio predicted / annotated and the
median angle between the two, and the wrist error (in box heights) by the annotated elbow bend and by the
shoulder-to-wrist reach.

    das make-synthetic --out /tmp/an/val --split val --num 120 --seed 0 --preset realistic --backgrounds .bg \
        --scene hands=true --scene everyday_pose_prob=0.25
    python docs/results/realism/arm_diagnostics/arm_diagnostics.py --checkpoint das_core/assets/das_demo \
        --real .carry/realdata --synthetic /tmp/an/val/val.json

The same scenes with every person's arms drawn apart from the pose (``--scene free_arms_prob=1.0`` added to the
make-synthetic command, out /tmp/an/val_free): ``--real '' --synthetic /tmp/an/val_free/val.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from das_core.camera import Intrinsics
from das_core.engine.estimator import Estimator
from das_core.evaluation.realdata import load_realdata
from das_core.skeletons import get_skeleton

BONES = {"upper arm": [("l_shoulder", "l_elbow"), ("r_shoulder", "r_elbow")],
         "forearm": [("l_elbow", "l_wrist"), ("r_elbow", "r_wrist")],
         "thigh": [("l_hip", "l_knee"), ("r_hip", "r_knee")], "shin": [("l_knee", "l_ankle"), ("r_knee", "r_ankle")],
         "neck-hip": [("neck", "l_hip"), ("neck", "r_hip")]}


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def real_images(est: Estimator, root: str):
    """(image, camera, [(keypoints, labelled, box)] of the people not ignored) per real image."""
    for im in load_realdata(root, get_skeleton(est.cfg.skeleton)):
        yield rgb(im.path), im.camera(), [(g.keypoints, g.labelled, g.box) for g in im.persons if not g.ignored]


def synthetic_images(split: str, limit: int | None = None):
    """The same for a synthetic split; its boxes are the tight boxes of the visible joints."""
    d = json.loads(Path(split).read_text())
    for im in d["images"][:limit]:
        c = im["camera"]
        gt = []
        for per in im["persons"]:
            j, vis = np.array(per["joints_3d"]), np.array(per["visible"], bool)
            if vis.sum() < 4:
                continue
            uv = np.stack([c["fx"] * j[:, 0] / j[:, 2] + c["cx"], c["fy"] * j[:, 1] / j[:, 2] + c["cy"]], 1)
            lo, hi = uv[vis].min(0), uv[vis].max(0)
            gt.append((uv, vis, np.array([*lo, *(hi - lo)])))
        yield rgb(Path(split).parent / im["file"]), Intrinsics(c["fx"], c["fy"], c["cx"], c["cy"]), gt


def predicted(est: Estimator, images):
    for image, camera, gt in images:
        yield gt, est(image, camera)


def lenient_pairs(gt, persons, root: int):
    used, out = set(), []
    for g_i, (_, _, (x, y, w, h)) in enumerate(gt):
        for p_i in np.argsort(-persons.scores):
            rx, ry = persons.joints_2d[p_i, root]
            if p_i not in used and x <= rx <= x + w and y <= ry <= y + h:
                used.add(p_i)
                out.append((g_i, p_i))
                break
    return out


def bend(kp: np.ndarray, s: int, e: int, w: int) -> float:
    u, f = kp[e] - kp[s], kp[w] - kp[e]
    return float(np.degrees(np.arccos(np.clip(u @ f / (np.linalg.norm(u) * np.linalg.norm(f) + 1e-9), -1, 1))))


def report(name: str, people, names: list[str]) -> None:
    ix = {n: i for i, n in enumerate(names)}
    ratio: dict[str, list[float]] = {b: [] for b in BONES}
    angle: dict[str, list[float]] = {b: [] for b in BONES}
    arms = []  # (annotated bend, reach / H, wrist error / H)
    for gt, persons in people:
        for g_i, p_i in lenient_pairs(gt, persons, ix["mid_hip"]):
            kp, lab, box = gt[g_i]
            pr = persons.joints_2d[p_i]
            for b, pairs in BONES.items():
                for a, c in pairs:
                    vg, vp = kp[ix[c]] - kp[ix[a]], pr[ix[c]] - pr[ix[a]]
                    if lab[ix[a]] and lab[ix[c]] and np.linalg.norm(vg) > 3:
                        ratio[b].append(np.linalg.norm(vp) / np.linalg.norm(vg))
                        cos = vg @ vp / (np.linalg.norm(vg) * np.linalg.norm(vp) + 1e-9)
                        angle[b].append(float(np.degrees(np.arccos(np.clip(cos, -1, 1)))))
            for side in "lr":
                s, e, w = ix[f"{side}_shoulder"], ix[f"{side}_elbow"], ix[f"{side}_wrist"]
                if lab[s] and lab[e] and lab[w]:
                    arms.append((bend(kp, s, e, w), np.linalg.norm(kp[w] - kp[s]) / box[3],
                                 np.linalg.norm(pr[w] - kp[w]) / box[3]))
    print(f"== {name}")
    for b in BONES:
        r = np.array(ratio[b])
        print(f"  {b:9s} n={len(r):4d}  length predicted / annotated median {np.median(r):.2f} "
              f"(p25 {np.percentile(r, 25):.2f}, p75 {np.percentile(r, 75):.2f}), angle error median {np.median(angle[b]):.0f} deg")
    a = np.array(arms)
    for lo, hi in ((0, 30), (30, 60), (60, 90), (90, 181)):
        m = (a[:, 0] >= lo) & (a[:, 0] < hi)
        print(f"  elbow bend {lo:3d}-{min(hi, 180):3d} deg: {m.sum():4d} arms ({m.mean():4.0%}), wrist error median {np.median(a[m, 2]):.3f} H")
    for lo, hi in ((0, .25), (.25, .35), (.35, 9)):
        m = (a[:, 1] >= lo) & (a[:, 1] < hi)
        print(f"  shoulder-wrist reach {lo:.2f}-{min(hi, 1):.2f} H: {m.sum():4d} arms ({m.mean():4.0%}), wrist error median {np.median(a[m, 2]):.3f} H")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="das_core/assets/das_demo")
    ap.add_argument("--real", default=".carry/realdata", help="the real development set ('' to skip it)")
    ap.add_argument("--synthetic", nargs="*", default=[], help="synthetic splits (their JSON), none for real only")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if not args.real and not args.synthetic:
        ap.error("nothing to diagnose: give --real or --synthetic")
    est = Estimator.from_checkpoint(args.checkpoint, device=args.device)
    names = list(get_skeleton(est.cfg.skeleton).joint_names)
    if args.real:
        report("real development set (2D and 3D images)", predicted(est, real_images(est, args.real)), names)
    for split in args.synthetic:
        report(f"synthetic {split}", predicted(est, synthetic_images(split)), names)


if __name__ == "__main__":
    main()
