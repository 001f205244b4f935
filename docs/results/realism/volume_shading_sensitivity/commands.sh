# The shipped stage 3 on 150 realistic val scenes (hands and everyday poses on), flat, volume-shaded, and
# volume-shaded with tapered limbs; the same seed, so flat and vol have identical people and labels (2026-12-03,
# this 2-core CPU).
P="python -m das_core.cli"
for v in flat vol volt; do
  case $v in flat) X="";; vol) X="--scene volume_shading=true";; volt) X="--scene volume_shading=true --scene tapered_limbs=true";; esac
  $P make-synthetic --out /tmp/shade/$v --split val --num 150 --seed 0 --workers 2 --preset realistic --backgrounds .bg \
    --scene hands=true --scene everyday_pose_prob=0.25 $X --no-progress
  $P evaluate --checkpoint das_core/assets/das_demo --data /tmp/shade/$v/val.json --protocol synthetic --device cpu \
    --json docs/results/realism/volume_shading_sensitivity/stage3_val150_$v.json
done
