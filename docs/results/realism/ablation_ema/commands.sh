#!/usr/bin/env bash
# How the files of this folder were made (2026-12-03, fifth session). The device call (one H200, carry .bg .carry,
# after `mkdir -p .carry && cp -r ../shared/realdata .carry/`), 442 s; its printout in docs/results/device_calls_2026-12-03d.txt:
#   REALDATA=.carry/realdata ARMS="arms_ema_lr2e4 arms_ema_lr2e4_seed1 arms_ema_lr2e4_seed2" KEEP=arms_ema_lr2e4 \
#     bash scripts/gpu/recipe_ablation.sh 5 15000 6000
# The returned ablation.tar, unpacked here, gave NAME.log, NAME.test_basic.json, NAME.threshold_sweep_val.json,
# NAME_fp16.yaml, NAME.realdata.json (scored on the H200 in the call) and run_ARM/metrics.jsonl, for NAME = each arm
# (its last weights) and ARM_ema (their moving average, ema_decay 0.995). Only arms_ema_lr2e4's two checkpoints came back
# (split parts: cat NAME_fp16.safetensors.part-* > /tmp/NAME_fp16.safetensors, the YAML beside it; not committed).
# Then, here on the CPU, the same real-image figures again (they match the H200's to 0.0001):
set -euo pipefail
R=docs/results/realism/ablation_ema
for n in arms_ema_lr2e4 arms_ema_lr2e4_ema; do
  python training/score_realdata.py --checkpoint /tmp/${n}_fp16 --data ../shared/realdata --no-sheet \
    --json "$R/${n}.realdata_cpu.json" > "$R/${n}.realdata_cpu.txt" 2>&1
done
# The table in docs/RESULTS.md ("Weight average"):
python3 - <<'PY'
import json
R = "docs/results/realism/ablation_ema"
for arm in ("arms_ema_lr2e4", "arms_ema_lr2e4_seed1", "arms_ema_lr2e4_seed2"):
    for name in (arm, arm + "_ema"):
        t = json.load(open(f"{R}/{name}.test_basic.json"))["metrics"]
        h = json.load(open(f"{R}/{name}.realdata.json"))["headline"]
        print(name, f"{t['mpjpe_rel_mm']:.1f} mm, {100 * t['pck_abs']:.1f} %, {t['root_depth_err_pct_median']:.1f} %",
              f"| {h['2d_recall']:.2f} / {h['2d_precision']:.2f}, {h['2d_ap_oks50']:.3f}",
              f"| {h['2d_recall_root_in_box']:.2f} / {h['2d_precision_root_in_box']:.2f}",
              f"| {h['3d_found']} / 8, {h['3d_median_root_depth_error_pct']:.1f} %, {h['3d_median_mpjpe_rel_mm']:.0f} mm")
PY
