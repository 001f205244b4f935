"""What does a joint's confidence mean? Reliability of the per-joint confidence on a synthetic split.

Example:
  python training/confidence_calibration.py --checkpoint das_core/assets/das_demo --data TEST/test.json \\
      --json docs/results/confidence_calibration.json

Confidence is decode's ``clamp(1 − mean(σ_u, σ_v), 0, 1)`` (σ in stride units, from the RLE head). For the
people matched to the ground truth (``match_hungarian_2d``, as the synthetic protocol), every visible joint is
*right in 2D* if its pixel error is within 5 % of the person's visible-joint box diagonal and *right in 3D* if
its root-aligned error is under 150 mm. Prints, per confidence bin, how many joints fall in it and how often
they are right, and, per threshold t, the share of joints kept (confidence ≥ t) and how often those are right:
the evidence a ``joint_confidence_threshold`` default should come from.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from das_core.checkpoint import amend_checkpoint  # noqa: E402
from das_core.data.annotations import read_annotations  # noqa: E402
from das_core.evaluation.metrics import match_hungarian_2d  # noqa: E402
from das_core.evaluation.run import frame_result, run_estimator  # noqa: E402
from das_core.skeletons import get_skeleton  # noqa: E402

BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)
THRESHOLDS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def collect(estimator, data: str, max_images: int | None) -> dict[str, np.ndarray]:
    """(J,) confidence, 2D error / box diagonal, root-aligned 3D error (m) of every matched visible joint."""
    ann = read_annotations(data)
    root = get_skeleton(ann.skeleton).root
    conf, e2, e3 = [], [], []
    for image, persons, _ in run_estimator(estimator, ann, max_images):
        f = frame_result(image, persons)
        match = match_hungarian_2d(f.gt_2d, f.gt_visible, f.pred_2d)
        for i, m in enumerate(match):
            v = f.gt_visible[i]
            if m < 0 or not v.any():
                continue
            pts = f.gt_2d[i][v]
            diag = max(float(np.linalg.norm(pts.max(0) - pts.min(0))), 1.0)
            g, p = f.gt_3d[i], f.pred_3d[m]
            conf.append(persons.joint_confidence[m][v])
            e2.append(np.linalg.norm(f.pred_2d[m][v] - pts, axis=-1) / diag)
            e3.append(np.linalg.norm((p - p[root]) - (g - g[root]), axis=-1)[v])
    return {"confidence": np.concatenate(conf), "err2d_rel": np.concatenate(e2), "err3d_rel_m": np.concatenate(e3)}


def tables(d: dict[str, np.ndarray]) -> dict[str, list[dict[str, float]]]:
    c = d["confidence"]
    ok2, ok3 = d["err2d_rel"] < 0.05, d["err3d_rel_m"] < 0.15
    bins = []
    for lo, hi in zip(BINS[:-1], BINS[1:], strict=True):
        sel = (c >= lo) & (c < hi)
        bins.append({"lo": lo, "hi": min(hi, 1.0), "joints": int(sel.sum()),
                     "right_2d": float(ok2[sel].mean()) if sel.any() else float("nan"),
                     "right_3d": float(ok3[sel].mean()) if sel.any() else float("nan")})
    kept = []
    for t in THRESHOLDS:
        sel = c >= t
        kept.append({"threshold": t, "kept": float(sel.mean()),
                     "right_2d": float(ok2[sel].mean()) if sel.any() else float("nan"),
                     "right_3d": float(ok3[sel].mean()) if sel.any() else float("nan"),
                     "right_2d_dropped": float(ok2[~sel].mean()) if (~sel).any() else float("nan")})
    return {"bins": bins, "thresholds": kept}


def fit_knots(confidence: np.ndarray, right: np.ndarray, bins: int = 12) -> list[tuple[float, float]]:
    """Monotone (raw, P(right)) knots: quantile bins of the raw confidence, pool-adjacent-violators on the rates.

    The knots are the bins' mean raw value and their (monotone) share of right joints, plus the ends 0 and 1,
    so :func:`das_core.engine.decode.calibrate_confidence` maps any raw value to a rate seen on this split.
    """
    order = np.argsort(confidence, kind="stable")
    c, r = confidence[order], right[order].astype(np.float64)
    groups = [g for g in np.array_split(np.arange(len(c)), bins) if len(g)]
    xs = [float(c[g].mean()) for g in groups]
    ys = [float(r[g].mean()) for g in groups]
    ws = [float(len(g)) for g in groups]
    i = 0
    while i < len(ys) - 1:  # pool adjacent violators: merge a bin with its left neighbour while the rate falls
        if ys[i] > ys[i + 1]:
            w = ws[i] + ws[i + 1]
            xs[i] = (xs[i] * ws[i] + xs[i + 1] * ws[i + 1]) / w
            ys[i] = (ys[i] * ws[i] + ys[i + 1] * ws[i + 1]) / w
            ws[i] = w
            del xs[i + 1], ys[i + 1], ws[i + 1]
            i = max(i - 1, 0)
        else:
            i += 1
    knots = [(0.0, round(ys[0], 4))] if xs[0] > 0 else []
    for x, y in zip(xs, ys, strict=True):
        if not knots or x > knots[-1][0] + 1e-6:
            knots.append((round(x, 6), round(y, 4)))
    if knots[-1][0] < 1.0:
        knots.append((1.0, knots[-1][1]))
    return knots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(Path(__file__).resolve().parents[1] / "das_core/assets/das_demo"))
    parser.add_argument("--data", required=True)
    parser.add_argument("--max-images", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    parser.add_argument("--fit", default=None, metavar="KNOTS_JSON",
                        help="fit decode.confidence_calibration (raw → share right in 2D) on this split (a validation "
                             "split, never the test split) and write the knots here")
    parser.add_argument("--write-checkpoint", action="store_true",
                        help="with --fit: also store the knots in the checkpoint (decode.confidence_calibration)")
    args = parser.parse_args(argv)
    if args.write_checkpoint and not args.fit:
        parser.error("--write-checkpoint needs --fit (the knots are fitted on a validation split)")
    from das_core.engine.estimator import Estimator

    est = Estimator.from_checkpoint(args.checkpoint, device=args.device)
    if args.fit and est.cfg.decode.confidence_calibration:
        # knots are fitted on the raw confidence, not on a previous calibration's output
        raw = dataclasses.replace(est.cfg.decode, confidence_calibration=())
        est = Estimator(dataclasses.replace(est.cfg, decode=raw), est.backend)
    d = collect(est, args.data, args.max_images)
    t = tables(d)
    print(f"{len(d['confidence'])} matched visible joints; confidence median {np.median(d['confidence']):.3f}")
    print("bin          joints  right 2D  right 3D")
    for b in t["bins"]:
        print(f"[{b['lo']:.1f}, {b['hi']:.1f})  {b['joints']:7d}  {b['right_2d']:8.3f}  {b['right_3d']:8.3f}")
    print("threshold  kept   right 2D (kept)  right 3D (kept)  right 2D (dropped)")
    for k in t["thresholds"]:
        print(f"{k['threshold']:9.2f}  {k['kept']:.3f}  {k['right_2d']:15.3f}  {k['right_3d']:15.3f}  {k['right_2d_dropped']:17.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "data": args.data,
                                               "max_images": args.max_images, **t}, indent=1) + "\n")
    if args.fit:
        knots = fit_knots(d["confidence"], d["err2d_rel"] < 0.05)
        Path(args.fit).write_text(json.dumps({"confidence_calibration": knots, "fitted_on": args.data,
                                              "max_images": args.max_images,
                                              "target": "2D error < 5 % of the person's visible-joint box diagonal"},
                                             indent=1) + "\n")
        print("knots:", knots)
        if args.write_checkpoint:
            amend_checkpoint(args.checkpoint, model={"decode": {"confidence_calibration": knots}}, record={
                "confidence_note": f"decode.confidence_calibration fitted on {args.data} (first {args.max_images} "
                                   "images; training/confidence_calibration.py --fit): calibrated confidence = "
                                   "share of joints within 5 % of the person's box diagonal in 2D"})
            print(f"wrote decode.confidence_calibration into {args.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
