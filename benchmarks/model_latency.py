"""Forward latency and parameter counts of the DAS models (DAS_SPEC Table 4 context).

For each model config: a 1280×720 frame resized with the config's ``input`` (keep ratio, pad to the size
divisor) → e.g. 1152×640 for das_r50_fpn (short side 640), 640×384 for das_r18_fpn (short side 384).
Runs eval-mode ``DAS.forward`` (no decode) on CPU fp32, and when CUDA is available on GPU in eager fp32
and eager fp16 autocast + channels_last (the head runs in fp32 by design, DAS_SPEC §4.4). Reports the
median of ``--iters`` timed runs after ``--warmup`` runs; GPU timings use CUDA events.

Usage::

    python benchmarks/model_latency.py [--configs a.yaml b.yaml] [--iters 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from das_core.config import ModelConfig, load_config  # noqa: E402
from das_core.model import DAS  # noqa: E402

DEFAULT_CONFIGS = [REPO / "config/model/das_r18_fpn.yaml", REPO / "config/model/das_r50_fpn.yaml"]
FRAME_W, FRAME_H = 1280, 720


def network_input_size(cfg: ModelConfig, width: int = FRAME_W, height: int = FRAME_H) -> tuple[int, int]:
    """(H, W) of the padded network input for a ``width × height`` frame (mmdet keep-ratio semantics)."""
    inp = cfg.input
    scale = min(inp.long_side / max(width, height), inp.short_side / min(width, height))
    w, h = round(width * scale), round(height * scale)
    d = inp.size_divisor
    return math.ceil(h / d) * d, math.ceil(w / d) * d


def count_parameters(model: DAS) -> dict[str, int]:
    def n(m: torch.nn.Module | None) -> int:
        return 0 if m is None else sum(p.numel() for p in m.parameters())

    return {
        "total": n(model),
        "backbone": n(model.backbone),
        "fpn": n(model.fpn),
        "head": n(model.head),
        "update": n(model.update),
        "sigma_branch": n(model.head.sigma_prev) + n(model.head.conv_sigma),  # loss-only at inference
    }


@torch.no_grad()
def count_flops(model: DAS, x: torch.Tensor) -> dict[str, float]:
    """Multiply-adds × 2 of one eval forward, in GFLOP: backbone, FPN, then per pyramid level the head and the
    pose update (``update_level*``; absent for a model without one).

    From ``torch.utils.flop_counter`` (convolutions and matmuls; element-wise ops, norms and the deformable
    sampling's gathers count 0, so this is the tensor-core work, the floor a GPU's peak rate divides).
    """
    from torch.utils.flop_counter import FlopCounterMode

    out: dict[str, float] = {}

    def measure(name: str, fn):  # type: ignore[no-untyped-def]
        with FlopCounterMode(display=False) as counter:
            result = fn()
        out[name] = counter.get_total_flops() / 1e9
        return result

    feats = measure("backbone", lambda: model.backbone(x))
    pyramid = measure("fpn", lambda: model.fpn(feats))
    for level, feat in enumerate(pyramid):
        tag = f"level{level}_stride{model.strides[level]}"
        head = measure(f"head_{tag}", lambda feat=feat, level=level: model.head.forward_level(feat, level))
        if model.update is not None:
            measure(f"update_{tag}", lambda head=head: model.update(head.pose_feat, head.offsets))
    out["total"] = sum(out.values())
    return out


@torch.no_grad()
def time_forward(model: DAS, x: torch.Tensor, iters: int, warmup: int, amp: bool) -> list[float]:
    """Milliseconds per forward, one entry per timed run."""
    cuda = x.device.type == "cuda"
    ctx = torch.autocast("cuda", dtype=torch.float16) if amp else torch.autocast(x.device.type, enabled=False)
    times = []
    with ctx:
        for _ in range(warmup):
            model(x)
        if cuda:
            torch.cuda.synchronize()
        for _ in range(iters):
            if cuda:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(x)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
    return times


def bench_config(path: Path, iters: int, warmup: int, cpu_iters: int, skip_cpu: bool, flops: bool = False) -> dict:
    cfg = load_config(path)
    torch.manual_seed(0)
    model = DAS.from_config(cfg).eval()
    h, w = network_input_size(cfg)
    result: dict = {"config": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path), "name": cfg.name,
                    "input_hw": [h, w], "params": count_parameters(model), "runs": []}
    if flops:
        result["gflops"] = count_flops(model, torch.randn(1, 3, h, w))
        print(f"{cfg.name:14s} {h}x{w:<5d} GFLOP per frame: "
              + ", ".join(f"{k} {v:.1f}" for k, v in result["gflops"].items()), flush=True)
    variants: list[tuple[str, str, bool, bool]] = []
    if not skip_cpu:
        variants.append(("cpu_fp32", "cpu", False, False))
    if torch.cuda.is_available():
        variants += [("cuda_fp32", "cuda", False, False), ("cuda_fp16_channels_last", "cuda", True, True)]
    for label, device, amp, channels_last in variants:
        m = model.to(device)
        x = torch.randn(1, 3, h, w, device=device)
        if channels_last:
            m = m.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            x = x.contiguous(memory_format=torch.channels_last)
        n = cpu_iters if device == "cpu" else iters
        times = time_forward(m, x, n, 1 if device == "cpu" else warmup, amp)
        run = {"variant": label, "iters": n, "median_ms": statistics.median(times), "min_ms": min(times),
               "max_ms": max(times)}
        result["runs"].append(run)
        print(f"{cfg.name:14s} {h}x{w:<5d} {label:24s} median {run['median_ms']:8.1f} ms  "
              f"(min {run['min_ms']:.1f}, max {run['max_ms']:.1f}, n={n})", flush=True)
        model = m.to("cpu", memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    p = result["params"]
    print(f"{cfg.name:14s} params total {p['total'] / 1e6:.2f} M (backbone {p['backbone'] / 1e6:.2f}, fpn "
          f"{p['fpn'] / 1e6:.2f}, head {p['head'] / 1e6:.2f}, update {p['update'] / 1e6:.2f}; sigma branch "
          f"{p['sigma_branch'] / 1e6:.2f} is loss-only)", flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", type=Path, default=DEFAULT_CONFIGS, help="model YAML files")
    parser.add_argument("--iters", type=int, default=50, help="timed GPU runs (median reported)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed GPU warm-up runs")
    parser.add_argument("--cpu-iters", type=int, default=5, help="timed CPU runs (after one warm-up run)")
    parser.add_argument("--skip-cpu", action="store_true", help="only GPU variants")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    parser.add_argument("--flops", action="store_true", help="also count GFLOP per frame (backbone, FPN, each level)")
    parser.add_argument("--json", type=Path, default=None, help="write all results to this JSON file")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
    env = {"torch": torch.__version__, "python": platform.python_version(), "cpu_threads": torch.get_num_threads(),
           "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
           "frame": [FRAME_W, FRAME_H]}
    print(f"torch {env['torch']}, {env['cpu_threads']} CPU threads, CUDA: {env['cuda_device']}", flush=True)
    results = [bench_config(p.resolve(), args.iters, args.warmup, args.cpu_iters, args.skip_cpu, args.flops)
               for p in args.configs]
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"env": env, "results": results}, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
