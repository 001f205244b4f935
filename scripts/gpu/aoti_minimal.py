"""Smallest program that shows where AOTInductor's package load breaks on this GPU stack (issue 14, target 2).

A ladder of modules, from one ``nn.Linear`` to the das tiny model, each exported and packaged with
``torch._inductor.aoti_compile_and_package`` in one fresh process and loaded in another with
``torch._inductor.aoti_load_package`` (and the loader options torch offers), so a segfault kills only that child.
Every child prints one JSON line; the parent collects them with the child's exit code and its last stderr lines
(``PYTHONFAULTHANDLER=1``: the Python frame of a native crash), and with ``--gdb`` a native backtrace of the first
crashing load where gdb exists. A load that works is also checked against the module run eagerly (max |Δ|).

Usage (on the GPU machine)::

    python scripts/gpu/aoti_minimal.py --device cuda --out aoti_minimal.json
    python scripts/gpu/aoti_minimal.py --device cpu --rungs linear conv --out /tmp/aoti_cpu.json
    CXX=/usr/bin/g++ python scripts/gpu/aoti_minimal.py --device cuda --rungs linear --profile-top 40 --out …

``--profile-top N`` runs every load under cProfile (its N functions of most cumulative time go into the JSON) and
under ``faulthandler.dump_traceback_later``, whose watchdog thread needs no GIL, so the stacks it writes every
``--stack-every`` seconds show where a load waits even inside one long native call.

Rungs: ``linear`` (Linear fp32), ``linear_fp16``, ``conv`` (Conv2d + GroupNorm + ReLU, fp16), ``grid_sample``
(``F.grid_sample`` fp16 features, fp32 grid), ``das_tiny`` (``das_core.engine.export.export_aoti`` of the tiny
DAS, fp16: what the backend packages).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNGS = ("linear", "linear_fp16", "conv", "grid_sample", "das_tiny")
LOADERS = ("default", "single_threaded", "cuda_init_first")


def _module(rung: str, device: str):  # noqa: ANN202 - (module, example input); torch imported lazily
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(0)
    if rung in ("linear", "linear_fp16"):
        dtype = torch.float16 if rung == "linear_fp16" and device == "cuda" else torch.float32
        return nn.Linear(8, 8).to(device, dtype).eval(), torch.randn(2, 8, device=device, dtype=dtype)
    half = torch.float16 if device == "cuda" else torch.float32
    if rung == "conv":
        m = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.GroupNorm(4, 16), nn.ReLU()).to(device, half).eval()
        return m, torch.randn(1, 3, 64, 128, device=device, dtype=half)
    if rung == "grid_sample":
        class Sample(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.conv = nn.Conv2d(3, 8, 3, padding=1)

            def forward(self, x):  # noqa: ANN001, ANN202
                feat = self.conv(x)
                grid = torch.tanh(feat[:, :2].float().permute(0, 2, 3, 1))
                return F.grid_sample(feat, grid.to(feat.dtype), align_corners=False)

        return Sample().to(device, half).eval(), torch.randn(1, 3, 32, 64, device=device, dtype=half)
    raise ValueError(rung)


def _eager(rung: str, device: str):  # noqa: ANN202
    import torch

    if rung == "das_tiny":
        return None
    m, x = _module(rung, device)
    with torch.no_grad():
        return x, m(x)


def child_build(rung: str, device: str, path: str) -> dict:
    import torch

    t0 = time.perf_counter()
    if rung == "das_tiny":
        sys.path.insert(0, str(ROOT))
        from das_core.config import load_config
        from das_core.engine.export import export_aoti
        from das_core.model.das import DAS

        cfg = load_config(ROOT / "config/model/das_tiny.yaml")
        torch.manual_seed(0)
        model = DAS.from_config(cfg).eval()
        export_aoti(model, cfg, path, (1, 3, 64, 128), device=device, precision="fp16" if device == "cuda" else "fp32")
    else:
        m, x = _module(rung, device)
        with torch.no_grad():
            ep = torch.export.export(m, (x,))
            torch._inductor.aoti_compile_and_package(ep, package_path=path)
    return {"built_s": round(time.perf_counter() - t0, 2), "size_mb": round(os.path.getsize(path) / 1e6, 2)}


def _load(path: str, loader: str):  # noqa: ANN202 - the package's callable
    import torch

    if loader == "single_threaded":
        return torch._inductor.aoti_load_package(path, run_single_threaded=True)
    return torch._inductor.aoti_load_package(path)


def _profiled_load(path: str, loader: str, top: int, stack_every: float) -> tuple[object, dict]:
    """The load under cProfile and a GIL-free stack dumper; returns (callable, what they saw)."""
    import cProfile
    import faulthandler
    import io
    import pstats

    stacks = tempfile.TemporaryFile("w+")
    faulthandler.dump_traceback_later(stack_every, repeat=True, file=stacks)
    prof = cProfile.Profile()
    try:
        fn = prof.runcall(_load, path, loader)
    finally:
        faulthandler.cancel_dump_traceback_later()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("cumulative").print_stats(top)
    stacks.seek(0)
    dumps = [d.strip() for d in stacks.read().split("Thread 0x") if d.strip()]
    main = [d for d in dumps if "most recent call first" in d]
    seen: dict[str, int] = {}
    for d in main:  # the main thread's stacks, each kind once, with how often it was seen
        key = "\n".join(d.splitlines()[1:])
        seen[key] = seen.get(key, 0) + 1
    return fn, {"profile_top": text.getvalue().splitlines()[:top + 12],
                "stacks": [{"samples": n, "stack": k.splitlines()[:25]} for k, n in seen.items()],
                "stack_every_s": stack_every}


def child_load(rung: str, device: str, path: str, loader: str, top: int = 0, stack_every: float = 3.0) -> dict:
    import torch

    t0 = time.perf_counter()
    if loader == "cuda_init_first" and device == "cuda":
        torch.zeros(1, device="cuda")  # the CUDA context exists before the loader runs
    cuda_init_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    seen: dict = {}
    if top:
        fn, seen = _profiled_load(path, loader, top, stack_every)
    else:
        fn = _load(path, loader)
    load_s = time.perf_counter() - t0
    out: dict = {"load_s": round(load_s, 3), "cuda_init_s": round(cuda_init_s, 3), **seen}
    ref = _eager(rung, device)
    if ref is not None:
        x, y = ref
        with torch.no_grad():
            got = fn(x)
        got = got[0] if isinstance(got, (list, tuple)) else got
        out["max_abs_diff"] = float((got.float() - y.float()).abs().max())
    else:
        x = torch.randn(1, 3, 64, 128, device=device)
        outs = fn(x)
        out["outputs"] = [list(t.shape) for t in outs]
    return out


def run_child(args: list[str], timeout: float) -> dict:
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    t0 = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"rc": "timeout", "wall_s": round(time.perf_counter() - t0, 1)}
    res: dict = {"rc": p.returncode, "wall_s": round(time.perf_counter() - t0, 1)}
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            res.update(json.loads(line))
    if p.returncode != 0:
        res["stderr_tail"] = [ln[:300] for ln in p.stderr.splitlines()[-25:]]
    return res


def gdb_backtrace(args: list[str], timeout: float) -> list[str] | None:
    gdb = shutil.which("gdb")
    if gdb is None:
        return None
    cmd = [gdb, "-batch", "-ex", "run", "-ex", "bt 40", "--args", sys.executable, __file__, *args]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return ["gdb timed out"]
    return [ln[:300] for ln in p.stdout.splitlines() if ln.startswith("#")][:40]


def environment() -> dict:
    import torch

    env = {"torch": torch.__version__, "python": sys.version.split()[0], "cuda": torch.version.cuda}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["driver_capability"] = list(torch.cuda.get_device_capability(0))
    for tool in ("gcc", "g++", "gdb"):
        path = shutil.which(tool)
        env[tool] = path
        if path and tool != "gdb":
            env[tool + "_version"] = subprocess.run([path, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    env["CXX"] = os.environ.get("CXX")
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    ap.add_argument("--rungs", nargs="+", default=list(RUNGS), choices=RUNGS)
    ap.add_argument("--loaders", nargs="+", default=list(LOADERS), choices=LOADERS)
    ap.add_argument("--timeout-s", type=float, default=240.0, help="per child")
    ap.add_argument("--gdb", action="store_true", help="native backtrace of the first crashing load")
    ap.add_argument("--profile-top", type=int, default=0, metavar="N",
                    help="profile every load: its N functions of most cumulative time and its stacks go into the JSON")
    ap.add_argument("--stack-every", type=float, default=3.0, metavar="S", help="with --profile-top: stack dump period")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--child", nargs=4, metavar=("MODE", "RUNG", "PATH", "LOADER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, rung, path, loader = args.child
        res = (child_build(rung, args.device, path) if mode == "build"
               else child_load(rung, args.device, path, loader, args.profile_top, args.stack_every))
        print(json.dumps(res), flush=True)
        return 0
    if args.out is None:
        ap.error("--out is required")

    work = Path(tempfile.mkdtemp(prefix="aoti_minimal_"))
    report: dict = {"environment": environment(), "device": args.device, "rungs": {}}
    crashed_once = False
    for rung in args.rungs:
        path = str(work / f"{rung}.pt2")
        entry: dict = {"build": run_child(["--device", args.device, "--child", "build", rung, path, "-"], args.timeout_s)}
        if entry["build"]["rc"] == 0:
            entry["load"] = {}
            for loader in args.loaders:
                child = ["--device", args.device, "--profile-top", str(args.profile_top),
                         "--stack-every", str(args.stack_every), "--child", "load", rung, path, loader]
                entry["load"][loader] = res = run_child(child, args.timeout_s)
                if res["rc"] != 0 and args.gdb and not crashed_once:
                    crashed_once = True
                    entry["gdb_backtrace"] = gdb_backtrace(child, args.timeout_s)
        report["rungs"][rung] = entry
        print(rung, json.dumps({k: v if k != "load" else {n: r["rc"] for n, r in v.items()} for k, v in entry.items()
                                if k != "gdb_backtrace"}), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
