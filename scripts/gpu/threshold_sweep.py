"""Score-threshold sweep of a checkpoint on a synthetic test split (precision/recall/MPJPE per threshold)."""
import dataclasses
import json
import sys

from das_core.checkpoint import load_checkpoint
from das_core.data.annotations import read_annotations
from das_core.engine.estimator import Estimator
from das_core.evaluation.run import evaluate_estimator
from das_core.model.das import DAS

ckpt, data, out = sys.argv[1], sys.argv[2], sys.argv[3]
ck = load_checkpoint(ckpt)
ann = read_annotations(data)
rows = []
for thr in (0.07, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4):
    cfg = dataclasses.replace(ck.config, decode=dataclasses.replace(ck.config.decode, score_thr=thr))
    model = DAS.from_config(cfg)
    model.load_state_dict(ck.state_dict)
    est = Estimator.from_model(model.eval(), cfg, device="cuda")
    m = evaluate_estimator(est, ann, "synthetic")
    rows.append({"score_thr": thr, **m})
    print(f"thr {thr:.2f}  P {m['precision']:.3f} R {m['recall']:.3f} rel {m['mpjpe_rel_mm']:.1f} abs {m['mpjpe_abs_mm']:.1f} pck {m['pck_abs']:.3f}", flush=True)
json.dump(rows, open(out, "w"), indent=1)
