"""Where a restart's Dynamo time goes: tracing cost of each function the GPU fast path compiles (issue 14).

A restarted ``compile`` node with every Inductor artefact cached still spends ~15 s in Dynamo (H200:
``docs/results/issue14_h200_2026-12-02_restart.json``, ``dynamo_compile_times``). Tracing is host-side Python
work, so it can be measured on any machine: this script compiles the same functions as the GPU path —
the backend's trunk and per-level head (``CompiledBackend._trunk`` / ``_level``) and the frame graph's
preprocessing and decoding (``FrameGraph._pre`` / ``_post``, OKS-NMS with its fixed step count) — with
``torch.compile(backend="eager")``: Dynamo traces (bytecode, fake tensors, guards) and hands the graph back
without Inductor, so the first call's extra time over a second call is Dynamo's cost for that function.

Usage::

    python benchmarks/trace_cost.py --model das_r50_fpn --frame 1280x720 --json trace_cost.json

Prints one line per function (first call, second call, their difference = tracing) and the total; the JSON
also holds Dynamo's own compile-time table. Random weights: tracing does not depend on them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from das_core.camera import ResizeRecord  # noqa: E402
from das_core.engine.bench import default_camera, synthetic_frame  # noqa: E402
from das_core.engine.decode import NMS_ITERS_PER_BLOCK, device_camera_table  # noqa: E402
from das_core.engine.export import load_model  # noqa: E402
from das_core.model.dense import concat_levels  # noqa: E402


@contextlib.contextmanager
def _eager_compile() -> Iterator[None]:
    """While active, ``torch.compile`` traces with Dynamo only (``backend="eager"``), whatever its options.

    das calls ``torch.compile`` when a backend or frame graph is built, so only their construction needs it.
    """
    original = torch.compile

    def compile_eager(fn: Any = None, **kwargs: Any) -> Any:
        for key in ("mode", "options", "backend"):
            kwargs.pop(key, None)
        return original(fn, backend="eager", **kwargs)

    torch.compile = compile_eager  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.compile = original


def _timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def measure(model_name: str, frame: tuple[int, int], nms_iters: int) -> dict[str, Any]:
    """First and second call seconds of each compiled function, on the CPU, fp32."""
    from das_core.engine.backends.compiled import CompiledBackend
    from das_core.engine.frame_graph import FrameGraph

    cfg, model, _ = load_model(model_name, "cpu")
    w, h = frame
    with _eager_compile():
        backend = CompiledBackend(model, cfg, device="cpu", precision="fp32", channels_last=False,
                                  cuda_graphs=False, persistent_cache=False)
        graph = FrameGraph(backend.capturable, cfg, 1, (h, w), torch.device("cpu"), capture=False,
                           nms_iters=nms_iters, compile=True)
    graph.frames.copy_(torch.from_numpy(synthetic_frame(w, h))[None])
    record = ResizeRecord.for_image(w, h, cfg.input.long_side, cfg.input.short_side, cfg.input.size_divisor)
    graph.cameras.copy_(device_camera_table([record], [default_camera(w, h)], torch.device("cpu")))
    rows: dict[str, dict[str, float]] = {}
    with torch.inference_mode():
        images, first = _timed(graph._pre, graph.frames)
        _, second = _timed(graph._pre, graph.frames)
        rows["preprocess"] = {"first_s": first, "second_s": second}
        backend._warm = True  # the size check's attribute write would otherwise retrace (see CompiledBackend)
        pyramid, first = _timed(backend._trunk, images)
        _, second = _timed(backend._trunk, images)
        rows["trunk"] = {"first_s": first, "second_s": second}
        levels = []
        for i, x in enumerate(pyramid):
            out, first = _timed(backend._level, x, i)
            _, second = _timed(backend._level, x, i)
            rows[f"level_{i}"] = {"first_s": first, "second_s": second}
            levels.append(out)
        dense = concat_levels(levels)
        _, first = _timed(graph._post, dense, graph.cameras)
        _, second = _timed(graph._post, dense, graph.cameras)
        rows["decode"] = {"first_s": first, "second_s": second}
    for r in rows.values():
        r["tracing_s"] = max(0.0, r["first_s"] - r["second_s"])
    from torch._dynamo.utils import compile_times

    return {"model": model_name, "frame": [w, h], "nms_iters": nms_iters, "device": "cpu", "torch": torch.__version__,
            # microseconds: a warm preprocess call of a small frame takes well under a millisecond
            "functions": {k: {m: round(v, 6) for m, v in r.items()} for k, r in rows.items()},
            "total_tracing_s": round(sum(r["tracing_s"] for r in rows.values()), 3),
            "dynamo_compile_times": compile_times(repr="str", aggregate=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="das_r50_fpn", help="config name / YAML / checkpoint")
    parser.add_argument("--frame", default="1280x720", help="host frame WIDTHxHEIGHT")
    parser.add_argument("--nms-iters", type=int, default=NMS_ITERS_PER_BLOCK, help="fixed OKS-NMS steps")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        w, h = (int(v) for v in args.frame.lower().split("x"))
    except ValueError:
        parser.error(f"--frame: expected WIDTHxHEIGHT, got {args.frame!r}")
    report = measure(args.model, (w, h), args.nms_iters)
    for name, r in report["functions"].items():
        print(f"{name:12s} first {r['first_s']:7.3f} s  second {r['second_s']:7.3f} s  tracing {r['tracing_s']:7.3f} s")
    print(f"total tracing {report['total_tracing_s']:.2f} s (torch {report['torch']}, cpu, {args.model}, {w}x{h})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
