#!/usr/bin/env bash
# First H100 call: environment, CUDA-path tests, model latency, and a 90-second training smoke run.
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch, cv2, scipy, safetensors; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
python3 -m pytest -q -x tests/core/test_inference.py tests/core/test_preprocess.py tests/core/model 2>&1 | tail -5
python3 benchmarks/model_latency.py --skip-cpu --json $OUT/model_latency.json 2>&1 | tail -20
D=/tmp/synth; R=/tmp/run
python3 -m das_core.cli make-synthetic --out $D --split train --num 1500 --workers 16 --no-progress
python3 -m das_core.cli make-synthetic --out $D --split test --num 100 --workers 16 --no-progress
timeout 200 python3 -m das_core.cli train --config config/train/synthetic_r18.yaml --set "data.train=[$D/train.json]" \
  --set "data.val=[]" --set max_minutes=1.5 --set model.depth_factor=300.0 --output-dir $R --no-progress 2>&1 | grep -v Warning | tail -25
python3 -m das_core.cli evaluate --checkpoint $R/final --data $D/test.json --protocol synthetic --json $OUT/smoke_eval.json 2>&1 | tail -15
cp $R/metrics.jsonl $OUT/ 2>/dev/null; true
