#!/usr/bin/env bash
# Table 1 ablation on synthetic data: four variants of config/train/synthetic_r18s.yaml trained side by side
# on one GPU (same data, budget and settings), then evaluated on the held-out synthetic test split.
# Usage (device machine): bash scripts/gpu/ablation.sh [MINUTES]   → $OUT/ablation.tar.gz + demo checkpoint parts
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 OMP_NUM_THREADS=2
MIN=${1:-7.2}
D=/tmp/synth; W=/tmp/ablation; mkdir -p $W
P="python3 -m das_core.cli"
t0=$(date +%s)
$P make-synthetic --out $D --split train --num 20000 --seed 0 --workers 16 --no-progress
$P make-synthetic --out $D --split test --num 300 --seed 0 --workers 16 --no-progress
echo "data ready after $(( $(date +%s) - t0 )) s"
declare -A VARIANTS=(
  [l1_baseline]="--set model.loss.pose_loss=l1 --set model.update.mode=none"
  [l1_update]="--set model.loss.pose_loss=l1"
  [rle]="--set model.update.mode=none"
  [rle_update]=""
)
for name in "${!VARIANTS[@]}"; do
  ( $P train --config config/train/synthetic_r18s.yaml --set "data.train=[$D/train.json]" --set max_minutes=$MIN \
      ${VARIANTS[$name]} --output-dir $W/$name --no-progress > $W/$name.log 2>&1
    $P evaluate --checkpoint $W/$name/final --data $D/test.json --protocol synthetic --device cuda \
      --json $W/$name.test.json >> $W/$name.log 2>&1 ) &
done
wait
echo "all done after $(( $(date +%s) - t0 )) s"
for name in l1_baseline l1_update rle rle_update; do
  echo "== $name"; grep -E "budget|stopped by|iter [0-9]+/" $W/$name.log | tail -3; cat $W/$name.test.json 2>/dev/null | head -c 600; echo
done
cp $W/rle_update/final.yaml $OUT/das_demo.yaml
split -b 15M $W/rle_update/final.safetensors $OUT/das_demo.safetensors.part-
(cd $W && tar czf $OUT/ablation.tar.gz *.log *.test.json */config.yaml */metrics.jsonl */final.yaml)
