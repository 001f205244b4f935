#!/usr/bin/env bash
# How the files of this folder were made (2026-12-03, fourth session). The device call (one H200, carry .bg .carry,
# after `mkdir -p .carry && cp -r ../shared/realdata .carry/`), its printout in docs/results/device_calls_2026-12-03c.txt:
#   REALDATA=.carry/realdata ARMS="arms_lr2e4 arms_lr2e4_seed1 arms_rc_lr2e4 arms_rc_lr2e4_seed1" KEEP=arms_rc_lr2e4 \
#     LOADERS=4 bash scripts/gpu/recipe_ablation.sh 5 15000 6000
# The returned ablation.tar gave ARM.log (-> ARM_train.log), ARM.test_basic.json, ARM.threshold_sweep_val.json,
# ARM_fp16.yaml, run_ARM/metrics.jsonl (-> ARM_metrics.jsonl) and ARM.realdata.json (-> ARM_realdata_gpu.json:
# scored on the H200 in the call). Only arms_rc_lr2e4's weights came back (four arms' exceed what a call returns),
# as split parts (cat arms_rc_lr2e4_fp16.safetensors.part-* > /tmp/abl_rc/arms_rc_lr2e4_fp16.safetensors, the YAML
# beside it; not committed). Then, here on the CPU, the same real-image figures again:
set -euo pipefail
R=docs/results/realism/ablation_randconv
python training/score_realdata.py --checkpoint /tmp/abl_rc/arms_rc_lr2e4_fp16 --out /tmp/abl_rc/sheet \
  --json "$R/arms_rc_lr2e4_realdata.json" > "$R/arms_rc_lr2e4_realdata.txt"
