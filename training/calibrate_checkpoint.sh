#!/usr/bin/env bash
# What a new checkpoint gets before it is scored or shipped, on validation splits only: decode.score_thr (best F1,
# realistic val), decode.confidence_calibration (realistic val) and the uncertainty scales (basic val; basic test
# reported), all written into the checkpoint YAML; then its synthetic figures (basic test, realistic val).
# `scripts/gpu/train_realistic.sh finish` runs it on the GPU; the model soups ran it on the CPU.
#   bash training/calibrate_checkpoint.sh CKPT DATA JSON_DIR [DEVICE]      (repository root)
# CKPT: a checkpoint name (safetensors + YAML; the YAML is rewritten). DATA: a folder with real/val.json (das
# make-synthetic --preset realistic --backgrounds DIR --split val --num 300 --seed 0), basic/val.json and
# basic/test.json (--split val / test --num 300 --seed 0). JSON_DIR: where the JSON of every step goes.
# DEVICE: cpu (default) or cuda. Sourced, it defines calibrate_checkpoint, which runs the command named by
# AFTER_STEP after every step (train_realistic.sh packs its results with it, so an overrun keeps what was done).
calibrate_checkpoint() {
  local C=$1 D=$2 J=$3 DEV=${4:-cpu} after=${AFTER_STEP:-true}
  mkdir -p "$J"
  python3 training/sweep_threshold.py --checkpoint "$C" --data "$D/real/val.json" --device "$DEV" \
    --json "$J/threshold_sweep_val.json" --write-checkpoint | tail -2
  $after
  python3 training/confidence_calibration.py --checkpoint "$C" --data "$D/real/val.json" --max-images 150 \
    --device "$DEV" --fit "$J/confidence_knots_val.json" --write-checkpoint | tail -2
  $after
  python3 training/calibrate_uncertainty.py --checkpoint "$C" --val "$D/basic/val.json" --test "$D/basic/test.json" \
    --num-val 200 --device "$DEV" --json "$J/uncertainty_calibration.json" --write-checkpoint | tail -8
  $after
  python3 -m das_core.cli evaluate --checkpoint "$C" --data "$D/basic/test.json" --protocol synthetic \
    --device "$DEV" --json "$J/test_basic.json" 2>&1 | tail -3
  $after
  python3 -m das_core.cli evaluate --checkpoint "$C" --data "$D/real/val.json" --protocol synthetic \
    --device "$DEV" --json "$J/val_realistic.json" 2>&1 | tail -3
  $after
}
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  [ $# -ge 3 ] || { echo "usage: $0 CKPT DATA JSON_DIR [DEVICE]" >&2; exit 2; }
  calibrate_checkpoint "$@"
fi
