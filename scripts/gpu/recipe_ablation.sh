#!/usr/bin/env bash
# Which stage-4 change cost the real-image figures (issue 17; docs/RESULTS.md "Stage 4"), and do hands and
# everyday arm poses help the arms, the worst-placed joints on real people? Three fine-tunings of the shipped stage-3 weights side by side on one GPU, the same minutes, seed,
# learning rate and basic-recipe share:
#   stage3_recipe  --preset realistic --scene crowd_prob=0 --scene high_fixture_share=0 (what stage 3 was trained on)
#   stage4_recipe  --preset realistic                     (what stage 4 was trained on: + crowds, + high fixtures)
#   stage3_arms    stage3_recipe --scene hands=true --scene everyday_pose_prob=0.25 (hands beyond the wrists
#                  instead of a disc on each; a quarter of the people with crossed arms, a phone, a hand on the hip)
# Each then gets its score threshold by best F1 on the realistic val split (sweep_threshold.py, as `finish` does),
# is evaluated on the synthetic test split, and comes back as fp16 parts for the real-image scorer here:
#   python training/score_realdata.py --checkpoint <arm>_fp16 --out <dir>
# Arm 1 against the shipped stage 3 says what more minutes of the same recipe do; arm 2 against arm 1, what the
# crowds and high fixtures do; arm 3 against arm 1, what the arm changes do (together: one arm of device time). One call (~9 minutes with the defaults):
#   bash scripts/gpu/recipe_ablation.sh [MINUTES=5] [NUM_REALISTIC=15000] [NUM_BASIC=6000]    (carry .bg)
# Learning-rate arms (the session after; does a gentler fine-tuning keep stage 3's real recall?), each on the
# data of the recipe it names, rendered once however many arms use it:
#   arms_lr2e4 / arms_lr1e4   stage3_arms' data at LR 2e-4 / 1e-4
#   arms4_lr2e4               stage4_recipe + hands + everyday poses, LR 2e-4
#   ARMS="arms_lr2e4 arms_lr1e4 arms4_lr2e4" bash scripts/gpu/recipe_ablation.sh 6 20000 6000
# Volume shading (people dark at the rim, lit inside; --scene volume_shading=true) and, on top of it, tapered limbs
# (--scene tapered_limbs=true) against their control, all on stage3_arms' scenes at LR 2e-4 (the best LR of that
# ablation), each recipe rendered from the same seed:
#   ARMS="arms_lr2e4 arms_vol_lr2e4 arms_volt_lr2e4" bash scripts/gpu/recipe_ablation.sh 5.5 18000 6000
# Random-convolution texture augmentation (augment.randconv_prob=0.5, das_core/training/randconv.py) against its
# control, each with two training seeds (0 and 1: the same data, other weight-update noise), so that the arms'
# difference can be set against the seeds' spread; all on stage3_arms' scenes at LR 2e-4:
#   ARMS="arms_lr2e4 arms_lr2e4_seed1 arms_rc_lr2e4 arms_rc_lr2e4_seed1" KEEP=arms_rc_lr2e4 LOADERS=4 bash scripts/gpu/recipe_ablation.sh 5 15000 6000
# The weight average (ema_decay=0.995, das_core/training/trainer.py): each arm trains once and returns two
# checkpoints, its last weights (ARM) and their moving average (ARM_ema), each calibrated and scored the same
# way, so the average is compared with the weights it was averaged from, seed by seed (three training seeds):
#   ARMS="arms_ema_lr2e4 arms_ema_lr2e4_seed1 arms_ema_lr2e4_seed2" KEEP=arms_ema_lr2e4 bash scripts/gpu/recipe_ablation.sh 5 15000 6000
# Dynamic poses (--scene dynamic_pose_prob=0.25: running, lunging / kicking, bending over, free angles; the
# sports and street photos of the real set are full of them, the other families have none) against their control,
# two training seeds each, all at LR 2e-4:
#   ARMS="arms_lr2e4 arms_lr2e4_seed1 arms_dyn_lr2e4 arms_dyn_lr2e4_seed1" KEEP=arms_dyn_lr2e4 LOADERS=4 bash scripts/gpu/recipe_ablation.sh 5 15000 6000
# Waistlines (--scene waistline_prob=0.7: the top ends above the hips, the bottom garment covers the pelvis; the
# shipped network puts real hips 3.5-4 % of the height too high, docs/RESULTS.md "Where the joints go"), two seeds:
#   ARMS="arms_lr2e4 arms_lr2e4_seed1 arms_waist_lr2e4 arms_waist_lr2e4_seed1" KEEP=arms_waist_lr2e4 LOADERS=4 bash scripts/gpu/recipe_ablation.sh 4.5 15000 6000
# Waistlines and volume shading (one seed ahead of its control on 2026-12-03, within the spread) with two seeds
# each, against the controls of the dynamic-pose call (same data, minutes and loaders):
#   ARMS="arms_waist_lr2e4 arms_waist_lr2e4_seed1 arms_vol_lr2e4 arms_vol_lr2e4_seed1" KEEP=arms_vol_lr2e4 LOADERS=4 bash scripts/gpu/recipe_ablation.sh 4.5 15000 6000
# Free arms (--scene free_arms_prob=0.3: both arms redrawn apart from the pose family, so that the body's context no
# longer gives them away; erasing an arm barely moves the shipped network's wrist, docs/RESULTS.md "Real arms fail
# where synthetic ones are easiest") against their control, two seeds each:
#   ARMS="arms_lr2e4 arms_lr2e4_seed1 arms_free_lr2e4 arms_free_lr2e4_seed1" KEEP=arms_free_lr2e4 LOADERS=4 bash scripts/gpu/recipe_ablation.sh 4.5 15000 6000
# (arms_free6_lr2e4: the same with free_arms_prob=0.6, context even less reliable; its training/arm_context.py figures
# show with one seed whether the dose matters.) The call after: a third seed of both and the dose with two seeds:
#   ARMS="arms_lr2e4_seed2 arms_free_lr2e4_seed2 arms_free6_lr2e4 arms_free6_lr2e4_seed1" KEEP=arms_free6_lr2e4 LOADERS=4 bash scripts/gpu/recipe_ablation.sh 4.5 15000 6000
# Free arms with the weight average, three seeds (seed 0's average named beforehand as the candidate to ship):
#   ARMS="arms_free_ema_lr2e4 arms_free_ema_lr2e4_seed1 arms_free_ema_lr2e4_seed2" KEEP=arms_free_ema_lr2e4 bash scripts/gpu/recipe_ablation.sh 4.5 15000 6000
# A fine-tuning of stage 3 moved the freed-arm error only from ~40° to ~35° (docs/RESULTS.md "Free arms, trained"):
# the body prior of three stages is not unlearnt in minutes. Whether a network that never had the prior looks at
# arms: two trainings from scratch (LR 1e-3, the stage-1 recipe's), without and with free arms, compared with each
# other on training/arm_context.py and the real arm diagnostics (neither is near the shipped weights' quality):
#   ARMS="scratch_arms scratch_free" KEEP="" bash scripts/gpu/recipe_ablation.sh 8 15000 6000
# Knobs: INIT (default das_core/assets/das_demo), LR (6e-4, for the arms without their own), SEED (5), DEVICE (cuda;
# DEVICE=cpu with tiny numbers and VAL=8 checks the script here), WORKERS (render processes, 16), LOADERS (loader
# workers per arm, 5), ARMS (any of the names above), REALDATA (the real-image development set carried along,
# e.g. `mkdir -p .carry && cp -r ../shared/realdata .carry/` here and carry `.carry`: each arm is then also scored
# on it in the call, `training/score_realdata.py --no-sheet`, evaluation only, and its arms measured bone by bone
# (docs/results/realism/arm_diagnostics/arm_diagnostics.py, ARM.arm_diagnostics.txt), so the arms' real figures come back
# with the call and a follow-up call can start while the machine is still warm), KEEP (the arms whose fp16
# weights come back, split in 15 MB parts; default all: four arms' weights exceed what a device call returns),
# ARM_CONTEXT (scenes per setting of training/arm_context.py, run on every arm: whether it places arms from their
# pixels or from the body; 80, 0 skips it).
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
MIN=${1:-5}; NUM=${2:-15000}; NB=${3:-6000}
INIT=${INIT:-das_core/assets/das_demo}; LR=${LR:-0.0006}; SEED=${SEED:-5}; DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-16}; LOADERS=${LOADERS:-5}
D=${WORK:-/tmp/recipe_ablation}; mkdir -p "$D"
P="python3 -m das_core.cli"
t0=$(date +%s)
S3="--scene crowd_prob=0 --scene high_fixture_share=0"
ARMS_SCENE="--scene hands=true --scene everyday_pose_prob=0.25"
declare -A SCENE=([stage3_recipe]="$S3" [stage4_recipe]="" [stage3_arms]="$S3 $ARMS_SCENE"
                  [stage4_arms]="$ARMS_SCENE" [stage3_arms_vol]="$S3 $ARMS_SCENE --scene volume_shading=true"
                  [stage3_arms_volt]="$S3 $ARMS_SCENE --scene volume_shading=true --scene tapered_limbs=true"
                  [stage3_arms_dyn]="$S3 $ARMS_SCENE --scene dynamic_pose_prob=0.25"
                  [stage3_arms_waist]="$S3 $ARMS_SCENE --scene waistline_prob=0.7"
                  [stage3_arms_free]="$S3 $ARMS_SCENE --scene free_arms_prob=0.3"
                  [stage3_arms_free6]="$S3 $ARMS_SCENE --scene free_arms_prob=0.6")
# arm -> the recipe (a SCENE key) whose training data it uses, and its own peak LR where it has one
declare -A RECIPE=([stage3_recipe]=stage3_recipe [stage4_recipe]=stage4_recipe [stage3_arms]=stage3_arms
                   [arms_lr2e4]=stage3_arms [arms_lr1e4]=stage3_arms [arms4_lr2e4]=stage4_arms
                   [arms_vol_lr2e4]=stage3_arms_vol [arms_volt_lr2e4]=stage3_arms_volt
                   [arms_lr2e4_seed1]=stage3_arms [arms_rc_lr2e4]=stage3_arms [arms_rc_lr2e4_seed1]=stage3_arms
                   [arms_ema_lr2e4]=stage3_arms [arms_ema_lr2e4_seed1]=stage3_arms [arms_ema_lr2e4_seed2]=stage3_arms
                   [arms_dyn_lr2e4]=stage3_arms_dyn [arms_dyn_lr2e4_seed1]=stage3_arms_dyn
                   [arms_waist_lr2e4]=stage3_arms_waist [arms_waist_lr2e4_seed1]=stage3_arms_waist
                   [arms_vol_lr2e4_seed1]=stage3_arms_vol [arms_free_lr2e4]=stage3_arms_free
                   [arms_free_lr2e4_seed1]=stage3_arms_free [arms_free6_lr2e4]=stage3_arms_free6
                   [arms_free6_lr2e4_seed1]=stage3_arms_free6 [arms_lr2e4_seed2]=stage3_arms
                   [arms_free_lr2e4_seed2]=stage3_arms_free [arms_free_ema_lr2e4]=stage3_arms_free
                   [arms_free_ema_lr2e4_seed1]=stage3_arms_free [arms_free_ema_lr2e4_seed2]=stage3_arms_free
                   [scratch_arms]=stage3_arms [scratch_free]=stage3_arms_free)
declare -A ARM_LR=([arms_lr2e4]=0.0002 [arms_lr1e4]=0.0001 [arms4_lr2e4]=0.0002 [arms_vol_lr2e4]=0.0002
                   [arms_volt_lr2e4]=0.0002 [arms_lr2e4_seed1]=0.0002 [arms_rc_lr2e4]=0.0002
                   [arms_rc_lr2e4_seed1]=0.0002 [arms_ema_lr2e4]=0.0002 [arms_ema_lr2e4_seed1]=0.0002
                   [arms_ema_lr2e4_seed2]=0.0002 [arms_dyn_lr2e4]=0.0002 [arms_dyn_lr2e4_seed1]=0.0002
                   [arms_waist_lr2e4]=0.0002 [arms_waist_lr2e4_seed1]=0.0002 [arms_vol_lr2e4_seed1]=0.0002
                   [arms_free_lr2e4]=0.0002 [arms_free_lr2e4_seed1]=0.0002 [arms_free6_lr2e4]=0.0002
                   [arms_free6_lr2e4_seed1]=0.0002 [arms_lr2e4_seed2]=0.0002 [arms_free_lr2e4_seed2]=0.0002
                   [arms_free_ema_lr2e4]=0.0002 [arms_free_ema_lr2e4_seed1]=0.0002 [arms_free_ema_lr2e4_seed2]=0.0002
                   [scratch_arms]=0.001 [scratch_free]=0.001)
# arm -> its own extra training settings (--set KEY=VALUE ...)
declare -A ARM_SET=([arms_lr2e4_seed1]="--set seed=1" [arms_rc_lr2e4]="--set augment.randconv_prob=0.5"
                    [arms_rc_lr2e4_seed1]="--set augment.randconv_prob=0.5 --set seed=1"
                    [arms_ema_lr2e4]="--set ema_decay=0.995" [arms_ema_lr2e4_seed1]="--set ema_decay=0.995 --set seed=1"
                    [arms_ema_lr2e4_seed2]="--set ema_decay=0.995 --set seed=2" [arms_dyn_lr2e4_seed1]="--set seed=1"
                    [arms_waist_lr2e4_seed1]="--set seed=1" [arms_vol_lr2e4_seed1]="--set seed=1"
                    [arms_free_lr2e4_seed1]="--set seed=1" [arms_free6_lr2e4_seed1]="--set seed=1"
                    [arms_lr2e4_seed2]="--set seed=2" [arms_free_lr2e4_seed2]="--set seed=2"
                    [arms_free_ema_lr2e4]="--set ema_decay=0.995" [arms_free_ema_lr2e4_seed1]="--set ema_decay=0.995 --set seed=1"
                    [arms_free_ema_lr2e4_seed2]="--set ema_decay=0.995 --set seed=2"
                    [scratch_arms]="--set init_weights=null" [scratch_free]="--set init_weights=null")
ARMS=${ARMS:-"stage3_recipe stage4_recipe stage3_arms"}
RECIPES=""
for arm in $ARMS; do
  [ -n "${RECIPE[$arm]:-}" ] || { echo "unknown arm '$arm' (known: ${!RECIPE[*]})" >&2; exit 2; }
  case " $RECIPES " in *" ${RECIPE[$arm]} "*) ;; *) RECIPES="$RECIPES ${RECIPE[$arm]}";; esac
done
for recipe in $RECIPES; do
  # shellcheck disable=SC2086  # SCENE holds several words on purpose
  $P make-synthetic --out $D/$recipe --split train --num $NUM --seed $SEED --workers $WORKERS --preset realistic \
    --backgrounds .bg ${SCENE[$recipe]} --no-progress > /dev/null
done
$P make-synthetic --out $D/basic --split train --num $NB --seed $SEED --workers $WORKERS --no-progress > /dev/null
$P make-synthetic --out $D/real --split val --num ${VAL:-300} --seed 0 --workers $WORKERS --preset realistic --backgrounds .bg --no-progress > /dev/null
$P make-synthetic --out $D/basic --split test --num ${VAL:-300} --seed 0 --workers $WORKERS --no-progress > /dev/null
echo "data ready after $(( $(date +%s) - t0 )) s"
EXTRA=(--set "init_weights=$INIT" --set max_minutes=$MIN --set data.num_workers=$LOADERS)
[ "$DEVICE" = cuda ] && EXTRA+=(--set channels_last=true --set cudnn_benchmark=true)
# One trained checkpoint of an arm (SRC: final or final_ema) → NAME_fp16: threshold on realistic val, the
# synthetic test split, and the real development set when it was carried along.
finish_ckpt() {  # arm name src
  local arm=$1 name=$2 src=$3
  python3 training/fp16_checkpoint.py $D/run_$arm/$src $D/${name}_fp16 >> $D/$arm.log 2>&1 &&
    python3 training/sweep_threshold.py --checkpoint $D/${name}_fp16 --data $D/real/val.json --device $DEVICE \
      --json $D/$name.threshold_sweep_val.json --write-checkpoint >> $D/$arm.log 2>&1 &&
    $P evaluate --checkpoint $D/${name}_fp16 --data $D/basic/test.json --protocol synthetic --device $DEVICE \
      --json $D/$name.test_basic.json >> $D/$arm.log 2>&1 &&
    { [ -z "${REALDATA:-}" ] || python3 training/score_realdata.py --checkpoint $D/${name}_fp16 --data "$REALDATA" \
        --device $DEVICE --no-sheet --json $D/$name.realdata.json >> $D/$arm.log 2>&1; } &&
    { [ -z "${REALDATA:-}" ] || python3 docs/results/realism/arm_diagnostics/arm_diagnostics.py --checkpoint $D/${name}_fp16 \
        --real "$REALDATA" --device $DEVICE > $D/$name.arm_diagnostics.txt 2>> $D/$arm.log; } &&
    { [ "${ARM_CONTEXT:-80}" = 0 ] || python3 training/arm_context.py --checkpoint $D/${name}_fp16 --backgrounds .bg \
        --num ${ARM_CONTEXT:-80} --device $DEVICE --json $D/$name.arm_context.json >> $D/$arm.log 2>&1; }
}
for arm in $ARMS; do
  ( $P train --config config/train/realistic_r34s.yaml --set "data.train=[$D/${RECIPE[$arm]}/train.json,$D/basic/train.json]" \
      --set "optim.lr=${ARM_LR[$arm]:-$LR}" "${EXTRA[@]}" ${ARM_SET[$arm]:-} ${TRAIN_SET:-} --device $DEVICE --output-dir $D/run_$arm --no-progress > $D/$arm.log 2>&1 &&
    finish_ckpt $arm $arm final &&
    { [ ! -f $D/run_$arm/final_ema.safetensors ] || finish_ckpt $arm ${arm}_ema final_ema; } ||
    echo "$arm FAILED (its log: $D/$arm.log)" ) &
done
wait
echo "all done after $(( $(date +%s) - t0 )) s"
NAMES=""
for arm in $ARMS; do NAMES="$NAMES $arm"; [ -f $D/run_$arm/final_ema.safetensors ] && NAMES="$NAMES ${arm}_ema"; done
for arm in $NAMES; do
  base=${arm%_ema}
  echo "== $arm (data ${RECIPE[$base]}, LR ${ARM_LR[$base]:-$LR} ${ARM_SET[$base]:-})"; grep -E "init_weights|budget|stopped by|best F1" $D/$base.log | tail -5
  python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d=d.get('metrics', d); print({k: round(v, 4) if isinstance(v, float) else v for k, v in d.items() if not isinstance(v, (dict, list))})" $D/$arm.test_basic.json 2>/dev/null
  [ -f $D/$arm.realdata.json ] && python3 -c "import json,sys; print('real:', json.load(open(sys.argv[1]))['headline'])" $D/$arm.realdata.json
  [ -f $D/$arm.arm_diagnostics.txt ] && grep -E "upper arm|forearm" $D/$arm.arm_diagnostics.txt
  [ -f $D/$arm.arm_context.json ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('arm angle error, as trained / arms freed:', {b: [round(d[s]['bones'][b]['median_angle_deg'] or -1, 1) for s in ('as_trained', 'free_arms')] for b in ('upper_arm', 'forearm', 'thigh')})" $D/$arm.arm_context.json
done
OUT=${OUT:-$D/out}; mkdir -p "$OUT"
# The device returns at most 8 files / 64 MiB: KEEP names the arms whose weights come back (default: all of them).
for arm in ${KEEP-$ARMS}; do
  for name in $arm ${arm}_ema; do
    [ -f $D/${name}_fp16.safetensors ] && split -b 15M $D/${name}_fp16.safetensors $OUT/${name}_fp16.safetensors.part-
  done
done
(cd $D && tar cf $OUT/ablation.tar ./*.log ./*.json ./*.txt ./*_fp16.yaml run_*/metrics.jsonl 2>/dev/null)
ls -la $OUT
