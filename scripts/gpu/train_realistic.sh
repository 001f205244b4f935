#!/usr/bin/env bash
# The shipped checkpoint (issue 17): das_r34s_fpn on the realistic synthetic recipe (+ a quarter basic-recipe
# scenes so the demo's rendering style stays covered), longer than one 10-minute device call allows:
#   [INIT=CKPT] [SEED=S] [LR=X] bash scripts/gpu/train_realistic.sh start [MINUTES] [NUM_REALISTIC] [NUM_BASIC]
#       renders the data on all cores (training scenes with seed S, default 0), starts training in its own
#       process session (it outlives the call while the machine stays held), then follows the log until
#       ~585 s of wall time, and returns the latest periodic checkpoint as fp16 parts (last_fp16.*). INIT: a das checkpoint to fine-tune (init_weights), e.g. das_core/assets/das_demo;
#       LR: the peak learning rate (default: the config's). EMA: keep a moving average of the weights with this
#       decay (ema_decay, e.g. EMA=0.998; `finish` with WEIGHTS=final_ema then calibrates and returns the average). SCENE: --scene overrides of the realistic training
#       scenes (the val split stays the preset's), e.g. SCENE="--scene hands=true --scene everyday_pose_prob=0.25". PROFILE=1 (default) first times the training step
#       with and without channels_last and cuDNN autotuning on a few batches of this data
#       (scripts/gpu/profile_train.py, ~1 minute, $OUT/profile_train.json) and trains with the fastest; PROFILE=0
#       keeps the config's settings; PROFILE=<variant> (a profile_train.py name, e.g.
#       channels_last+cudnn_benchmark, the fastest on the H200 on 2026-12-02) trains with it without timing.
#   ... start 5.5 24000 8000; bash scripts/gpu/train_realistic.sh finish
#       both in ONE device call (483 s on the H200 on 2026-12-02): a training short enough to end within `start`'s
#       follow window needs no second call, so no held machine can be lost between the two (as twice before)
#   bash scripts/gpu/train_realistic.sh finish
#       (the next call, on the same machine: call it at once, a held machine waits only 30 s idle; on a fresh
#       one it stops with a message) waits for training to end, then on validation splits only:
#       chooses decode.score_thr (best F1, realistic val), fits decode.confidence_calibration (realistic val)
#       and the uncertainty scales (basic val; basic test reported), all written into the checkpoint YAML;
#       then evaluates on the synthetic test split (basic recipe, the existing 300 images) and the realistic
#       val split, and returns the fp16 checkpoint in 15 MB parts (made first, and the one calibrated) and
#       results.tar (the YAML, the training log and every JSON)
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
D=/tmp/final_data; R=/tmp/final_run; LOG=${TRAIN_LOG:-/tmp/final_train.log}  # TRAIN_LOG: for the tests
P="python3 -m das_core.cli"
t0=$(date +%s)
if [ "${1:-}" = start ]; then
  MIN=${2:-13}; NUM=${3:-30000}; NB=${4:-10000}; SEED=${SEED:-0}
  EXTRA=()
  [ -n "${INIT:-}" ] && EXTRA+=(--set "init_weights=$INIT")
  [ -n "${LR:-}" ] && EXTRA+=(--set "optim.lr=$LR")
  [ -n "${EMA:-}" ] && EXTRA+=(--set "ema_decay=$EMA")
  # shellcheck disable=SC2086  # SCENE holds several words on purpose
  $P make-synthetic --out $D/real --split train --num $NUM --seed $SEED --workers 16 --preset realistic --backgrounds .bg ${SCENE:-} --no-progress
  $P make-synthetic --out $D/real --split val --num 300 --seed 0 --workers 16 --preset realistic --backgrounds .bg --no-progress
  $P make-synthetic --out $D/basic --split train --num $NB --seed $SEED --workers 16 --no-progress
  $P make-synthetic --out $D/basic --split val --num 300 --seed 0 --workers 16 --no-progress
  $P make-synthetic --out $D/basic --split test --num 300 --seed 0 --workers 16 --no-progress
  echo "data ready after $(( $(date +%s) - t0 )) s"
  PROFILE=${PROFILE:-1}
  if [ "$PROFILE" != 0 ]; then
    if [ "$PROFILE" = 1 ]; then
      python3 scripts/gpu/profile_train.py $D/real/train.json $D/basic/train.json --json $OUT/profile_train.json | tail -5
      FASTEST=$(python3 -c "import json; print(json.load(open('$OUT/profile_train.json'))['fastest'])" 2>/dev/null || echo nchw)
    else
      FASTEST=$PROFILE
    fi
    CL=false; CB=false
    case "$FASTEST" in channels_last*) CL=true;; esac
    case "$FASTEST" in *cudnn_benchmark) CB=true;; esac
    EXTRA+=(--set "channels_last=$CL" --set "cudnn_benchmark=$CB")
    echo "training with channels_last=$CL cudnn_benchmark=$CB (fastest step: $FASTEST) after $(( $(date +%s) - t0 )) s"
  fi
  setsid nohup $P train --config config/train/realistic_r34s.yaml --set "data.train=[$D/real/train.json,$D/basic/train.json]" \
    --set max_minutes=$MIN --set data.num_workers=15 "${EXTRA[@]}" --output-dir $R --no-progress > $LOG 2>&1 < /dev/null &
  # Follow the log until ~585 s, or until a training short enough for one call has ended (then `start 5 ...;
  # finish` in one call trains, calibrates and evaluates with no second call to miss).
  while [ $(( $(date +%s) - t0 )) -lt 585 ] && pgrep -f "das_core.cli train" > /dev/null; do sleep 5; done
  grep -v Warn $LOG | grep -E "init_weights|budget|iter [0-9]*00/" | tail -5
  cp $LOG $OUT/train_start.log
  # The machine can be given back before `finish` comes (it waits only 30 s idle): return the latest periodic
  # checkpoint (every ckpt_interval iterations) in fp16, so a lost machine costs the tail, not the run.
  if [ -f $R/last.safetensors ]; then
    python3 training/fp16_checkpoint.py $R/last /tmp/last_fp16 > /dev/null && \
      split -b 15M /tmp/last_fp16.safetensors $OUT/last_fp16.safetensors.part- && cp /tmp/last_fp16.yaml $OUT/
  fi
elif [ "${1:-}" = finish ]; then
  if [ ! -f $LOG ]; then
    echo "finish: no training on this machine ($LOG is missing): the machine was given back after 'start'" \
      "(a held machine waits 30 s idle). The start call returned last_fp16.* (its latest checkpoint): join the" \
      "parts and start again with INIT=<that checkpoint>." >&2
    exit 3
  fi
  while pgrep -f "das_core.cli train" > /dev/null; do sleep 5; done
  echo "training ended $(( $(date +%s) - t0 )) s into this call"
  grep -v Warn $LOG | grep -E "budget|stopped|iter [0-9]*000/" | tail -6
  # The fp16 checkpoint is what ships: make it first (its weights come back even if a later step overruns),
  # then calibrate and evaluate that one.
  python3 training/fp16_checkpoint.py $R/${WEIGHTS:-final} /tmp/final_fp16
  split -b 15M /tmp/final_fp16.safetensors $OUT/final_fp16.safetensors.part-
  C=/tmp/final_fp16; J=/tmp/final_results; mkdir -p $J
  # At most 8 files come back: the small ones travel as one tar, refreshed after every step.
  save() { cp /tmp/final_fp16.yaml $LOG $J/; tar -C $J -cf $OUT/results.tar .; }
  save
  . training/calibrate_checkpoint.sh
  AFTER_STEP=save calibrate_checkpoint $C $D $J cuda
  ls -la $OUT
else
  echo "usage: $0 start|finish" >&2; exit 2
fi
