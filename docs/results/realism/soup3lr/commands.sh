# The weight average of stage 3 and arms_lr2e4 (0.5 / 0.5, decided before scoring, as for the stage 3 / 4 and 3 / 5
# soups), fitted and scored on this 2-core CPU (2026-12-03). /tmp/arms_lr2e4_fp16: the learning-rate ablation's arm
# (docs/results/realism/ablation_lr/; its parts joined with cat). /work/data4: das make-synthetic --split val/test
# --num 300 --seed 0 (realistic val with --preset realistic --backgrounds .bg; basic val and test).
set -x
cd /work/main
C=${C:-/tmp/soup3lr/soup}; J=${J:-/tmp/soup3lr}; D=/work/data4; mkdir -p $J
python3 training/average_checkpoints.py das_core/assets/das_demo /tmp/arms_lr2e4_fp16 $C
bash training/calibrate_checkpoint.sh $C $D $J cpu
python3 training/score_realdata.py --checkpoint $C --out $J/rd > $J/realdata.txt 2>&1; tail -3 $J/realdata.txt
echo SOUPDONE
