#!/usr/bin/env bash
# Main synthetic result and the shipped demo checkpoint: config/train/synthetic_r18s.yaml alone on one GPU
# (all 16 CPU cores for loading), then evaluation on the held-out synthetic test split.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
MIN=${1:-7.3}
D=/tmp/synth; R=/tmp/main
P="python3 -m das_core.cli"
t0=$(date +%s)
$P make-synthetic --out $D --split train --num 40000 --seed 0 --workers 16 --no-progress
$P make-synthetic --out $D --split test --num 300 --seed 0 --workers 16 --no-progress
echo "data ready after $(( $(date +%s) - t0 )) s"
$P train --config config/train/synthetic_r18s.yaml --set "data.train=[$D/train.json]" --set max_minutes=$MIN \
  --set data.num_workers=14 --output-dir $R --no-progress 2>&1 | grep -v Warn | tee $OUT/train.log | grep -E "budget|stopped|iter [0-9]*00/"
$P evaluate --checkpoint $R/final --data $D/test.json --protocol synthetic --device cuda --json $OUT/test_metrics.json 2>&1 | tail -12
echo "all done after $(( $(date +%s) - t0 )) s"
cp $R/final.yaml $OUT/das_demo.yaml; cp $R/metrics.jsonl $OUT/
split -b 15M $R/final.safetensors $OUT/das_demo.safetensors.part-
