#!/usr/bin/env bash
# Last H100 call: CUDA-path tests, GPU soak of the node pipeline (shipped model), AOTInductor backend + cold start.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD || exit 1
export PYTHONUNBUFFERED=1
python3 -m pytest -q tests/core/test_inference.py tests/core/test_preprocess.py 2>&1 | tail -3
timeout 150 python3 benchmarks/soak.py --checkpoint das_core/assets/das_demo --device cuda --frames 10000 --bag-frames 1000 \
  --json $OUT/soak_cuda.json 2>&1 | grep -v Warning | tail -25
timeout 330 python3 benchmarks/engine_suite.py --specs aoti:fp16 --budget-s 320 --out "$OUT/engine_suite_aoti.json" 2>&1 \
  | grep -v Warning | tee $OUT/engine_suite_aoti.log | grep -v "^2026\|Traceback\|File \|^    " | tail -20
