"""benchmarks/trace_cost.py: every function the GPU fast path compiles is traced once and timed, and the
benchmark leaves ``torch.compile`` as it found it."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import trace_cost  # noqa: E402


def test_each_compiled_function_of_the_fast_path_is_traced_and_torch_compile_is_restored() -> None:
    compile_before = torch.compile
    report = trace_cost.measure(str(ROOT / "config/model/das_tiny.yaml"), (128, 64), nms_iters=2)
    assert torch.compile is compile_before
    assert set(report["functions"]) == {"preprocess", "trunk", "level_0", "level_1", "level_2", "decode"}
    for name, row in report["functions"].items():
        assert row["first_s"] > 0 and row["second_s"] > 0, name
        assert row["tracing_s"] >= 0, name
    # Dynamo really traced (its own table is not empty), and the first calls cost more than the second ones
    assert report["dynamo_compile_times"]
    assert report["total_tracing_s"] > 0
