"""Where the time of one ``das_r50_fpn`` frame goes on a GPU: per-stage device times and the top kernels.

Usage (device machine): ``python scripts/gpu/profile_engine.py --out $OUT/profile.txt [--compile]``.
Random weights, a 1×3×640×1152 input (a 1280×720 frame at 640 short side). Prints, per variant (eager
fp32, eager fp16 + channels_last, optionally ``torch.compile`` fp16), the device time of backbone, FPN,
head and update per level (CUDA events), and the 25 most expensive kernels (``torch.profiler``). Also times
the host side of a frame upload: copying a 1280×720×3 uint8 frame into pinned memory and to the device.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from das_core.config import load_config
from das_core.model.das import DAS

CONFIG = Path(__file__).resolve().parents[2] / "config" / "model" / "das_r50_fpn.yaml"


def log(out: list[str], *parts: object) -> None:
    line = " ".join(str(p) for p in parts)
    print(line, flush=True)
    out.append(line)


def timed(fn, repeats: int = 20) -> float:
    """Median device milliseconds of ``fn()`` (events around each call)."""
    times = []
    for _ in range(3):
        fn()
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return float(np.median(times))


def stages(model: DAS, x: torch.Tensor, dtype: torch.dtype | None, out: list[str]) -> None:
    ac = torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()
    with torch.inference_mode(), ac:
        feats = model.backbone(x)
        pyr = model.fpn(feats)
        log(out, f"  backbone {timed(lambda: model.backbone(x)):.3f} ms")
        log(out, f"  fpn      {timed(lambda: model.fpn(feats)):.3f} ms")
        for lvl, p in enumerate(pyr):
            h = model.head.forward_level(p, lvl)
            th = timed(lambda p=p, lvl=lvl: model.head.forward_level(p, lvl))
            tu = timed(lambda h=h: model.update(h.pose_feat, h.offsets))
            log(out, f"  level {lvl} {tuple(p.shape[-2:])}: head {th:.3f} ms, update {tu:.3f} ms")
        log(out, f"  whole forward {timed(lambda: model(x)):.3f} ms")


def kernels(fn, out: list[str], title: str) -> None:
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA, ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
    log(out, f"--- top kernels: {title} (5 iterations) ---")
    log(out, prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=25, max_name_column_width=70))


def upload(out: list[str]) -> None:
    frame = np.random.randint(0, 255, (720, 1280, 3), dtype=np.uint8)
    pinned = torch.empty((720, 1280, 3), dtype=torch.uint8).pin_memory()
    dev = torch.empty((720, 1280, 3), dtype=torch.uint8, device="cuda")
    view = pinned.numpy()
    t = []
    for _ in range(50):
        s = time.perf_counter()
        np.copyto(view, frame)
        t.append((time.perf_counter() - s) * 1e3)
    log(out, f"np.copyto into pinned: {np.median(t):.3f} ms")
    t = []
    src = torch.from_numpy(frame)
    for _ in range(50):
        s = time.perf_counter()
        pinned.copy_(src)
        t.append((time.perf_counter() - s) * 1e3)
    log(out, f"torch copy_ into pinned: {np.median(t):.3f} ms (threads {torch.get_num_threads()})")
    log(out, f"H2D pinned 2.76 MB: {timed(lambda: dev.copy_(pinned, non_blocking=True)):.3f} ms device")
    t = []
    for _ in range(50):
        s = time.perf_counter()
        src.pin_memory().to("cuda", non_blocking=True)
        torch.cuda.synchronize()
        t.append((time.perf_counter() - s) * 1e3)
    log(out, f"pin_memory()+to+sync (current path): {np.median(t):.3f} ms wall")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--compile", nargs="*", default=[], help="compile modes to try: default, max-autotune-no-cudagraphs")
    ap.add_argument("--freezing", action="store_true")
    ap.add_argument("--cast-weights", action="store_true",
                    help="compile the network with its weights converted to fp16 (the compile backend's default "
                         "since 2026-12-04) instead of autocast")
    args = ap.parse_args()
    out: list[str] = []
    torch.backends.cudnn.benchmark = True
    log(out, torch.__version__, torch.cuda.get_device_name(), "cudnn", torch.backends.cudnn.version())
    upload(out)
    cfg = load_config(CONFIG)
    model = DAS.from_config(cfg).cuda().eval()
    x = torch.randn(1, 3, 640, 1152, device="cuda")
    log(out, "== eager fp32 (TF32 convs: cudnn.allow_tf32 =", torch.backends.cudnn.allow_tf32, ")")
    stages(model, x, None, out)
    with torch.inference_mode():
        kernels(lambda: model(x), out, "eager fp32")
    model = model.to(memory_format=torch.channels_last)
    model.fp32_head = False
    xc = x.contiguous(memory_format=torch.channels_last)
    log(out, "== eager fp16 autocast, channels_last, fp16 head")
    stages(model, xc, torch.float16, out)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
        kernels(lambda: model(xc), out, "eager fp16 cl")
    model = model.to(memory_format=torch.contiguous_format)
    log(out, "== eager fp16 autocast, contiguous, fp16 head")
    stages(model, x, torch.float16, out)
    args.out.write_text("\n".join(out))

    from das_core.engine.export import DenseExportWrapper

    for mode in args.compile:
        if args.freezing:
            import torch._inductor.config as ic

            ic.freezing = True
        torch._dynamo.reset()
        m = model.to(memory_format=torch.channels_last)
        if args.cast_weights:
            wrapper = DenseExportWrapper(m.half(), cfg.depth_factor, input_dtype=torch.float16).eval()
        else:
            wrapper = DenseExportWrapper(m, cfg.depth_factor, torch.float16).eval()
        compiled = torch.compile(wrapper, mode=mode, dynamic=False)
        t0 = time.perf_counter()
        with torch.inference_mode():
            compiled(xc)
            torch.cuda.synchronize()
            log(out, f"== compile {mode} freezing={args.freezing} cast_weights={args.cast_weights}: compiled in {time.perf_counter() - t0:.0f} s")
            log(out, f"  compiled forward (no graph) {timed(lambda c=compiled: c(xc)):.3f} ms")
            kernels(lambda c=compiled: c(xc), out, f"compile {mode}")
        args.out.write_text("\n".join(out))
    args.out.write_text("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
