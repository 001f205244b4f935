#!/usr/bin/env bash
# How the files of this folder were made (2026-12-03, second session). The device call (one H200, carry .bg .carry,
# after `mkdir -p .carry && cp -r ../shared/realdata .carry/`), its printout in docs/results/device_calls_2026-12-03b.txt:
#   REALDATA=.carry/realdata ARMS="arms_lr2e4 arms_vol_lr2e4 arms_volt_lr2e4" bash scripts/gpu/recipe_ablation.sh 5.5 18000 6000
# The returned ablation.tar gave ARM.log (-> ARM_train.log), ARM.test_basic.json, ARM.threshold_sweep_val.json,
# ARM_fp16.yaml and ARM.realdata.json (-> ARM_realdata_gpu.json: scored on the H200 in the call); the weights came
# back as split parts (cat ARM_fp16.safetensors.part-* > ARM_fp16.safetensors; not committed). Then, here on the CPU:
set -euo pipefail
W=${W:-/tmp/abl_vol}   # the arms' fp16 checkpoints
R=docs/results/realism/ablation_vol
for a in arms_lr2e4 arms_vol_lr2e4 arms_volt_lr2e4; do
  python training/score_realdata.py --checkpoint "$W/${a}_fp16" --no-sheet --json "$R/${a}_realdata.json" > "$R/${a}_realdata.txt"
done
# Uniform average of every fine-tuning of stage 3 on the stage-3-arms data at LR <= 2e-4 (decided before scoring):
# the previous session's arms_lr2e4 and arms_lr1e4 (docs/results/realism/ablation_lr/) and this call's three arms.
# It keeps the first input's YAML (score_thr 0.2, which every one of the five chose on realistic val).
P=${P:-/tmp}           # the previous session's arms_lr2e4_fp16 / arms_lr1e4_fp16
python training/average_checkpoints.py "$P/arms_lr2e4_fp16" "$P/arms_lr1e4_fp16" "$W/arms_lr2e4_fp16" \
  "$W/arms_vol_lr2e4_fp16" "$W/arms_volt_lr2e4_fp16" /tmp/soup5/soup5
cp /tmp/soup5/soup5.yaml "$R/soup5.yaml"
python training/score_realdata.py --checkpoint /tmp/soup5/soup5 --no-sheet --json "$R/soup5_realdata.json"
