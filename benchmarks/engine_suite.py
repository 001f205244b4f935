"""The inference-engine suite for one GPU machine, in ONE command of at most ~9 minutes.

Measures ``das_r50_fpn`` (random weights, forced people: see ``das_core/engine/bench.py``) on a 1280×720 host
frame at 640 short side (network input 1×3×640×1152) with every backend that can run here, then checks
issue 14's targets (``targets`` in the JSON):

* fastest backend total p50 ≤ 2.0 ms (host frame → host ``Persons``), eager fp32 measured in the same run;
* 20 forced people ≤ 1.05× the total time of 1 person (fastest backend);
* its decoded joints within 1 mm of eager fp32 (and every backend within its precision's
  ``das_core.engine.export.AGREEMENT`` tolerances);
* one ``Estimator.batch`` call of 8 frames ≥ 1,000 frames/s, and a call with 4 frames ≤ 1.5× a call with one;
* steady-state GPU memory (allocated / reserved after warm-up) is in each row (``gpu_mem_steady_*``).

It also times an AOTInductor *cold start* (a fresh backend loading the cached ``.pt2``: what a restarted
node pays). Results go to ``--out`` (JSON, rewritten after every backend so a killed run keeps what it
measured) and a table on stdout. Backends that cannot run (no onnxruntime CUDA provider, no TensorRT) are
listed with the error that says what to install; they do not stop the suite.

Usage (repository root, GPU machine)::

    python benchmarks/engine_suite.py --out "$OUT/engine_suite.json"

CPU smoke run (tiny settings, minutes on 2 cores)::

    python benchmarks/engine_suite.py --device cpu --model das_r18_fpn --quick --out /tmp/suite.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from das_core.engine.bench import BenchSettings, format_table, run_suite  # noqa: E402

GPU_SPECS = ["eager:fp32", "eager:fp16", "tensorrt:fp16", "onnx:fp32", "compile:fp16", "aoti:fp16", "compile:bf16"]
CPU_SPECS = ["eager:fp32", "onnx:fp32"]
TARGET_MS, TARGET_SCALING, TARGET_JOINTS_MM = 2.0, 1.05, 1.0  # issue 14
TARGET_B8_FPS, TARGET_B4_RATIO = 1000.0, 1.5


def cold_start(model_name: str, cache_dir: str, device: str, precision: str = "fp16") -> dict[str, float]:
    """Seconds for a fresh AOTI backend to load its cached package and produce the first outputs."""
    from das_core.engine.backends import make_backend
    from das_core.engine.export import load_model, network_input_shape

    cfg, model, _ = load_model(model_name, "cpu")
    h, w = network_input_shape(cfg, 1280, 720)
    t0 = time.perf_counter()
    backend = make_backend("aoti", model, cfg, device=device, precision=precision, channels_last=True,
                           cache_dir=cache_dir)
    x = torch.zeros((1, 3, h, w), device=device)
    backend.run(x)
    torch.cuda.synchronize()
    return {"aoti_cold_start_s": round(time.perf_counter() - t0, 2),
            "aoti_package_load_s": round(getattr(backend, "load_seconds", float("nan")), 2),
            "aoti_build_s_in_cold_start": round(getattr(backend, "build_seconds", float("nan")), 2)}


def check_targets(report: dict) -> dict:
    ok = [r for r in report["results"] if "latency_ms" in r]
    base = next((r for r in ok if r["backend"] == "eager" and r["precision"] == "fp32"), None)
    if not ok:
        return {"error": "no backend measured"}
    fastest = min(ok, key=lambda r: r["latency_ms"]["total_p50"])
    t = fastest["latency_ms"]["total_p50"]
    # No eager fp32 row (time budget): agreement still uses the suite's eager fp32 reference outputs.
    speedup = base["latency_ms"]["total_p50"] / t if base is not None else None
    scaling = fastest.get("ratio_20_vs_1", float("nan"))
    agree = {f"{r['backend']}:{r['precision']}": r.get("agreement", {}).get("pass") for r in ok if r is not base}
    joints = {f"{r['backend']}:{r['precision']}": r.get("agreement", {}).get("people_joints_mm_max")
              for r in ok if r is not base}
    b8 = fastest.get("batches", {}).get("8", {}).get("throughput_bN_fps")
    b4 = fastest.get("ratio_b4_vs_b1")
    fastest_mm = fastest.get("agreement", {}).get("people_joints_mm_max", 0.0 if fastest is base else None)
    return {
        "fastest": f"{fastest['backend']}:{fastest['precision']}",
        "fastest_total_p50_ms": t,
        "fastest_total_p99_ms": fastest["latency_ms"]["total_p99"],
        "speedup_vs_eager_fp32": speedup,
        "ratio_20_vs_1_people": scaling,
        "people_joints_mm_vs_eager_fp32": joints,
        "batch8_fps": b8,
        "ratio_batch4_vs_batch1": b4,
        "meets_2ms": t <= TARGET_MS,
        "meets_scaling_1_05": scaling <= TARGET_SCALING,
        "meets_joints_1mm": fastest_mm is not None and fastest_mm <= TARGET_JOINTS_MM,
        "meets_batch8_1000fps": None if b8 is None else b8 >= TARGET_B8_FPS,
        "meets_batch4_1_5x": None if b4 is None else b4 <= TARGET_B4_RATIO,
        "agreement_pass": agree,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="das_r50_fpn")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--specs", nargs="+", default=None, help="override the backend list (NAME:PRECISION)")
    parser.add_argument("--budget-s", type=float, default=450.0,
                        help="no backend is started when it would not fit in this many seconds")
    parser.add_argument("--quick", action="store_true", help="few repeats (smoke test)")
    parser.add_argument("--batch", type=int, default=None, help="frames per call for the batch-N throughput "
                        "(default 8, 2 with --quick; 1 skips it)")
    parser.add_argument("--batches", type=int, nargs="+", default=None,
                        help="several batch sizes, e.g. 4 8 (default: --batch alone)")
    parser.add_argument("--people", type=int, nargs="+", default=None,
                        help="forced-people scenes (default 1 5 10 20; a tiny model's input holds fewer)")
    parser.add_argument("--compile-mode", default="default",
                        help="compile backend: default | max-autotune-no-cudagraphs (Triton conv/matmul templates "
                             "benchmarked at build: a much longer first build, cached for restarts)")
    parser.add_argument("--compile-autocast", action="store_true",
                        help="compile backend: fp16/bf16 as autocast instead of converted weights (the default "
                             "until 2026-12-04)")
    parser.add_argument("--compile-freezing", action="store_true",
                        help="compile backend: Inductor freezing (weights as constants: conv-BN folding); experimental")
    parser.add_argument("--min-compile-s", type=float, default=None,
                        help="seconds the compile backend needs at least (default 200: a cold build; ~40 with a "
                             "warm das compile cache, e.g. after benchmarks/restart.py with the same DAS_CACHE_DIR)")
    parser.add_argument("--no-cudnn-benchmark", action="store_true",
                        help="keep cuDNN's heuristic algorithm choice (default: benchmark mode, for every backend "
                             "alike, since the input size is fixed)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "engine_suite.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("engine_suite: CUDA requested but torch has no CUDA", file=sys.stderr)
        return 2
    torch.backends.cudnn.benchmark = not args.no_cudnn_benchmark
    cache_dir = os.environ.get("DAS_CACHE_DIR") or tempfile.mkdtemp(prefix="das-cache-")
    specs = args.specs or (GPU_SPECS if args.device.startswith("cuda") else CPU_SPECS)
    settings = BenchSettings(
        frame_size=(1280, 720),
        warmup=2 if args.quick else 20,
        repeats=5 if args.quick else 200,
        scene_repeats=3 if args.quick else 50,
        people=tuple(args.people or (1, 5, 10, 20)),
        batch=args.batch or (2 if args.quick else 8),
        batches=tuple(args.batches or ()),
        device=args.device,
        cache_dir=cache_dir,
        options={"compile": {"mode": args.compile_mode, **({"freezing": True} if args.compile_freezing else {}),
                             **({"cast_weights": False} if args.compile_autocast else {})}},
    )
    if args.min_compile_s is not None:
        from das_core.engine import bench

        bench.MIN_SECONDS["compile"] = args.min_compile_s
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def save(report: dict) -> None:
        args.out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")

    report = run_suite(args.model, [tuple(s.partition(":")[::2]) for s in specs], settings,  # type: ignore[misc]
                       budget_s=args.budget_s, on_result=save)
    if any(r["backend"] == "aoti" and "latency_ms" in r for r in report["results"]) and \
            time.perf_counter() - start < args.budget_s + 60:
        try:
            report["cold_start"] = cold_start(args.model, cache_dir, args.device)
        except Exception as exc:  # reported, not fatal
            report["cold_start"] = {"error": f"{type(exc).__name__}: {exc}"}
    report["environment"]["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    report["targets"] = check_targets(report)
    report["suite_wall_s"] = round(time.perf_counter() - start, 1)
    save(report)
    print()
    print(format_table(report))
    print(json.dumps({"targets": report["targets"], "cold_start": report.get("cold_start")}, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
