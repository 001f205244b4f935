"""Choose a checkpoint's score threshold on a synthetic validation split (never on the real-image set).

Example:
  das make-synthetic --out data/real --split val --num 300 --preset realistic --backgrounds BACKGROUNDS
  python training/sweep_threshold.py --checkpoint runs/realistic_r34s/final --data data/real/val.json \\
      --json docs/results/threshold_sweep.json

Runs the network once at the lowest threshold and keeps, for each threshold t, the people scoring >= t.
That equals decoding at t: greedy OKS-NMS only lets a higher-scoring person suppress a lower-scoring one, so
people below t never change which people above t survive. Prints precision, recall, F1 and the synthetic
protocol's errors per threshold and names the threshold of the best F1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from das_core.checkpoint import amend_checkpoint, load_checkpoint  # noqa: E402
from das_core.data.annotations import read_annotations  # noqa: E402
from das_core.evaluation.run import compute_metrics, frame_result, run_estimator  # noqa: E402
from das_core.model.das import DAS  # noqa: E402

THRESHOLDS = (0.05, 0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True, help="annotation JSON of a synthetic validation split")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None, help="write the rows here")
    parser.add_argument("--write-checkpoint", action="store_true",
                        help="set the checkpoint's decode.score_thr to the best-F1 threshold (and record why)")
    parser.add_argument("--flip-test", action="store_true",
                        help="average each image's predictions with its mirror image's (Estimator flip_test)")
    args = parser.parse_args(argv)
    from das_core.engine.estimator import Estimator

    ck = load_checkpoint(args.checkpoint)
    cfg = dataclasses.replace(ck.config, decode=dataclasses.replace(ck.config.decode, score_thr=min(THRESHOLDS)))
    model = DAS.from_config(cfg)
    model.load_state_dict(ck.state_dict)
    estimator = Estimator.from_model(model.eval(), cfg, device=args.device, flip_test=args.flip_test)
    ann = read_annotations(args.data)
    runs = run_estimator(estimator, ann)
    rows = []
    for thr in THRESHOLDS:
        frames = [frame_result(img, p[p.scores >= thr], seq) for img, p, seq in runs]
        m = compute_metrics(frames, "synthetic", ann.skeleton)
        f1 = 2 * m["precision"] * m["recall"] / max(1e-9, m["precision"] + m["recall"])
        rows.append({"score_thr": thr, "f1": f1, **m})
        print(f"thr {thr:.2f}  P {m['precision']:.3f} R {m['recall']:.3f} F1 {f1:.3f}  rel {m['mpjpe_rel_mm']:.1f} "
              f"abs {m['mpjpe_abs_mm']:.1f} pck_abs {m['pck_abs']:.3f}", flush=True)
    best = max(rows, key=lambda r: r["f1"])
    print(f"best F1 {best['f1']:.3f} at score_thr {best['score_thr']}")
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "data": args.data, "flip_test": args.flip_test, "rows": rows,
                                               "best_f1_score_thr": best["score_thr"]}, indent=1) + "\n")
    if args.write_checkpoint:
        at = {k: round(float(best[k]), 4) for k in ("precision", "recall", "f1")}
        amend_checkpoint(args.checkpoint, model={"decode": {"score_thr": best["score_thr"]}}, record={
            "score_thr_note": f"decode.score_thr {best['score_thr']} = best F1 on {args.data} "
                              f"(training/sweep_threshold.py): {at}. Never chosen on real images."})
        print(f"wrote decode.score_thr {best['score_thr']} into {args.checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
