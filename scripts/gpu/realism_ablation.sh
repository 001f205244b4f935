#!/usr/bin/env bash
# Realism ablation (issue 17): four runs side by side on one GPU, same budget each, 3 loader workers each:
#   basic      today's recipe (make-synthetic --preset basic, config/train/synthetic_r18s.yaml)
#   realistic  --preset realistic with photo backgrounds (config/train/realistic_r18s.yaml)
#   nophoto    --preset realistic --disable photos      (what the photo backgrounds add)
#   r34s       realistic data, das_r34s_fpn              (what capacity adds)
# then each is evaluated on the held-out synthetic test split (basic recipe, the existing 300 images) and on
# a realistic test split; the fp16 checkpoints come back for the real-image scorer (training/score_realdata.py).
# Usage (device machine, repo root, photos in .bg/): bash scripts/gpu/realism_ablation.sh [MINUTES] [NUM]
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
MIN=${1:-6.0}; NUM=${2:-10000}
D=/tmp/data; W=/tmp/abl; mkdir -p $W
P="python3 -m das_core.cli"
t0=$(date +%s)
$P make-synthetic --out $D/basic --split train --num $NUM --seed 0 --workers 16 --no-progress
$P make-synthetic --out $D/basic --split test --num 300 --seed 0 --workers 16 --no-progress
$P make-synthetic --out $D/real --split train --num $NUM --seed 0 --workers 16 --preset realistic --backgrounds .bg --no-progress
$P make-synthetic --out $D/real --split test --num 300 --seed 0 --workers 16 --preset realistic --backgrounds .bg --no-progress
$P make-synthetic --out $D/nophoto --split train --num $NUM --seed 0 --workers 16 --preset realistic --disable photos --no-progress
echo "data ready after $(( $(date +%s) - t0 )) s"
declare -A CFG=([basic]=synthetic_r18s [realistic]=realistic_r18s [nophoto]=realistic_r18s [r34s]=realistic_r34s)
declare -A DATA=([basic]=basic [realistic]=real [nophoto]=nophoto [r34s]=real)
for name in basic realistic nophoto r34s; do
  ( $P train --config config/train/${CFG[$name]}.yaml --set "data.train=[$D/${DATA[$name]}/train.json]" \
      --set max_minutes=$MIN --set data.num_workers=3 --output-dir $W/$name --no-progress > $W/$name.log 2>&1
    for t in basic real; do
      $P evaluate --checkpoint $W/$name/final --data $D/$t/test.json --protocol synthetic --device cuda \
        --json $W/$name.test_$t.json >> $W/$name.log 2>&1
    done
    python3 training/fp16_checkpoint.py $W/$name/final $W/${name}_fp16 >> $W/$name.log 2>&1 ) &
done
wait
echo "all done after $(( $(date +%s) - t0 )) s"
for name in basic realistic nophoto r34s; do
  echo "== $name"; grep -E "budget|stopped by" $W/$name.log | tail -2
  for t in basic real; do python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items() if not isinstance(v, (dict, list))})" $W/$name.test_$t.json $t 2>/dev/null; done
done
for name in basic realistic nophoto; do cp $W/${name}_fp16.safetensors $OUT/; done
split -b 15M $W/r34s_fp16.safetensors $OUT/r34s_fp16.safetensors.part-
(cd $W && tar czf $OUT/abl.tar.gz *.log *.json *_fp16.yaml */metrics.jsonl $D/real/test.json 2>/dev/null)
ls -la $OUT
