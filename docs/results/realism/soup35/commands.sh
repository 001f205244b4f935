# The weight average of stages 3 and 5 (0.5 / 0.5, decided before scoring, as for stages 3 and 4), fitted and scored on this 2-core CPU (2026-12-02).
# /tmp/s5/final_fp16: the stage-5 checkpoint (docs/results/realism/ft5/); /work/data4: das make-synthetic --split
# val/test --num 300 --seed 0 (realistic val with --preset realistic --backgrounds .bg; basic val and test).
set -x
cd /work/main
C=${C:-/tmp/soup35/soup}; J=${J:-/tmp/soup35}; D=/work/data4; mkdir -p $J
python3 training/average_checkpoints.py das_core/assets/das_demo /tmp/s5/final_fp16 $C
python3 training/sweep_threshold.py --checkpoint $C --data $D/real/val.json --device cpu --json $J/threshold_sweep_val.json --write-checkpoint | tail -2
python3 training/confidence_calibration.py --checkpoint $C --data $D/real/val.json --max-images 150 --device cpu --fit $J/confidence_knots_val.json --write-checkpoint | tail -2
python3 training/score_realdata.py --checkpoint $C --out $J/rd > $J/realdata.txt 2>&1; tail -3 $J/realdata.txt
python3 training/calibrate_uncertainty.py --checkpoint $C --val $D/basic/val.json --test $D/basic/test.json --num-val 200 --device cpu --json $J/uncertainty_calibration.json --write-checkpoint | tail -8
python3 -m das_core.cli evaluate --checkpoint $C --data $D/basic/test.json --protocol synthetic --device cpu --json $J/test_basic.json 2>&1 | tail -3
python3 -m das_core.cli evaluate --checkpoint $C --data $D/real/val.json --protocol synthetic --device cpu --json $J/val_realistic.json 2>&1 | tail -3
echo SOUPDONE
