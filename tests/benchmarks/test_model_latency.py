"""benchmarks/model_latency.py --flops: the per-part GFLOP add up to what one whole forward costs."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import model_latency  # noqa: E402

from das_core.config import load_config  # noqa: E402
from das_core.model import DAS  # noqa: E402


def test_flops_are_split_into_backbone_fpn_and_head_and_update_per_level_that_sum_to_the_whole_forward() -> None:
    torch.manual_seed(0)
    model = DAS.from_config(load_config(ROOT / "config/model/das_tiny.yaml")).eval()
    x = torch.randn(1, 3, 64, 96)
    parts = model_latency.count_flops(model, x)
    levels = [f"level{i}_stride{s}" for i, s in enumerate((8, 16, 32))]
    assert list(parts) == ["backbone", "fpn", *(f"{part}_{lv}" for lv in levels for part in ("head", "update")),
                           "total"]
    assert all(v > 0 for v in parts.values())
    with torch.no_grad(), FlopCounterMode(display=False) as whole:
        model(x)
    assert abs(parts["total"] - whole.get_total_flops() / 1e9) < 1e-9 + 1e-6 * parts["total"]
    # a frame of twice the pixels costs twice the convolutions
    assert model_latency.count_flops(model, torch.randn(1, 3, 128, 96))["total"] > 1.9 * parts["total"]
