"""Split one training iteration's cost on a GPU: data loading alone vs the model + loss step alone, and A/B the
step's memory layout and cuDNN autotuning (``channels_last``, ``cudnn_benchmark`` of the train config).

Usage (device machine, after the data is rendered)::

    python scripts/gpu/profile_train.py REAL/train.json BASIC/train.json --json "$OUT/profile_train.json"

Prints the DataLoader's images/s (workers, collate and target assignment included), then for each variant the
step's ms and images/s on the same few loader batches (cycled, each shape tuned once before timing), the peak
GPU memory, and which variant is fastest. History: this split found the targets-in-the-main-loop bottleneck
(57 ms of a 176 ms step at batch 32 on an H100), which led to ``TrainCollate`` (targets in the workers).
A CPU dry run (``--device cpu --batch 2 --batches 2 --repeats 1 --set model=config/model/das_tiny.yaml``) checks the
script; its timings mean nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from das_core.config import TrainConfig, load_train_config, parse_overrides  # noqa: E402
from das_core.training.batching import RunBatches, SeededDataset  # noqa: E402
from das_core.training.trainer import (  # noqa: E402
    DistInfo,
    TrainCollate,
    _build_dataset,  # noqa: PLC2701
    _build_run,  # noqa: PLC2701
    _optimisation_step,  # noqa: PLC2701
    _step_module,  # noqa: PLC2701
)

VARIANTS = {  # name: (channels_last, cudnn_benchmark)
    "nchw": (False, False),
    "nchw+cudnn_benchmark": (False, True),
    "channels_last": (True, False),
    "channels_last+cudnn_benchmark": (True, True),
}


def loader_batches(cfg: TrainConfig, files: list[str], workers: int, n: int) -> tuple[float, list[dict[str, Any]]]:
    """Images per second the DataLoader keeps up once its prefetch queue is drained, and its first n batches.

    The workers prefetch two batches each while the first one is awaited, so the batches right after it arrive at
    once (timing only those printed 96,000 img/s on the H200). The rate is taken over batches 2W..4W instead
    (W = max(workers, 1)), when every batch has to be made while it is waited for."""
    dataset = _build_dataset(cfg, files, train=True)
    plan = RunBatches([int(g) for g in dataset.group_flags], cfg.data.batch_size, seed=0)  # the trainer's batches
    loader = torch.utils.data.DataLoader(SeededDataset(dataset), batch_sampler=plan, num_workers=workers,
                                         collate_fn=TrainCollate(cfg.model))
    w = max(workers, 1)
    batches: list[dict[str, Any]] = []
    stamps: list[float] = []
    sizes: list[int] = []
    for batch in itertools.islice(loader, max(n, 4 * w)):
        stamps.append(time.perf_counter())
        sizes.append(int(batch["images"].shape[0]))
        if len(batches) < n:
            batches.append(batch)
    first = min(2 * w, len(stamps) - 2)
    if first < 0:
        return float("nan"), batches
    return sum(sizes[first + 1:]) / (stamps[-1] - stamps[first]), batches


def step_time(cfg: TrainConfig, batches: list[dict[str, Any]], device: torch.device, repeats: int) -> dict[str, Any]:
    """ms per step of the trainer's own optimisation step (model, optimiser, amp, clipping, host copy and sync, as
    ``das train`` runs it) for ``cfg``'s channels_last and cudnn_benchmark, over ``batches``."""
    torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    run = _build_run(cfg, DistInfo(), device, Path(cfg.output_dir))
    run.model.train()
    step = _step_module(run)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for batch in batches:  # every shape once: cuDNN's search (with benchmark on) stays out of the timing
        _optimisation_step(run, step, batch)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    images = 0
    for _ in range(repeats):
        for batch in batches:
            images += _optimisation_step(run, step, batch)[1]
    sync()
    seconds = time.perf_counter() - start
    steps = repeats * len(batches)
    return {"step_ms": round(seconds / steps * 1e3, 2), "img_per_s": round(images / seconds, 1),
            "peak_mem_mib": round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", nargs="+", help="training annotation JSONs (as data.train)")
    parser.add_argument("--config", default=str(ROOT / "config/train/realistic_r34s.yaml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: the config's)")
    parser.add_argument("--workers", type=int, default=15)
    parser.add_argument("--batches", type=int, default=6, help="loader batches to time the step on (several shapes)")
    parser.add_argument("--repeats", type=int, default=3, help="passes over those batches per variant")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    overrides = parse_overrides(args.overrides + ([f"data.batch_size={args.batch}"] if args.batch else []))
    cfg = load_train_config(args.config, overrides)
    device = torch.device(args.device)
    rate, batches = loader_batches(cfg, args.data, args.workers, max(1, args.batches))
    shapes = sorted({tuple(b["images"].shape) for b in batches})
    print(f"loader, {args.workers} workers: {rate:.0f} img/s; batch shapes {shapes}", flush=True)
    report: dict[str, Any] = {"config": args.config, "overrides": args.overrides, "batch_size": cfg.data.batch_size,
                              "amp": cfg.amp, "device": str(device), "torch": torch.__version__,
                              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
                              "loader_workers": args.workers, "loader_img_per_s": round(rate, 1),
                              "batch_shapes": [list(s) for s in shapes], "variants": {}}
    for name in args.variants:
        channels_last, bench = VARIANTS[name]
        row = step_time(replace(cfg, channels_last=channels_last, cudnn_benchmark=bench), batches, device, args.repeats)
        report["variants"][name] = row
        print(f"{name:30s} step {row['step_ms']:8.1f} ms  {row['img_per_s']:7.1f} img/s  peak {row['peak_mem_mib']} MiB",
              flush=True)
    best = min(report["variants"], key=lambda k: report["variants"][k]["step_ms"])
    report["fastest"] = best
    print(f"fastest: {best}; the loader gives {rate:.0f} img/s, so training runs at most "
          f"min(loader, step) = {min(rate, report['variants'][best]['img_per_s']):.0f} img/s")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
