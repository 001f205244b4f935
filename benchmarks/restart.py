"""Time to first pose of a *fresh process* with the ``compile`` or ``aoti`` backend: first build, restart, restart
after /tmp is wiped (issue 14: a restarted node must see people within 10 s).

Each phase starts a new Python process (this script with ``--child``) that imports das, builds the model
(random weights: the cost does not depend on them), wraps it in an ``Estimator`` with the ``--backend`` (default
``compile``) and runs one host frame to ``Persons``. The time is taken from just before the process is spawned to the moment
the first ``Persons`` is back (interpreter start and imports included), i.e. what a restarted node waits.

Phases (``--phases``, in this order):

* ``first``      — empty das cache folder, empty temp folder: the first-ever build on this machine.
* ``restart``    — same das cache and temp folder: an ordinary restart.
* ``wiped_tmp``  — the temp folder emptied first (what a reboot does to ``/tmp``), das cache kept.
* ``no_cache_first`` / ``no_cache_restart`` — the same without the das compile cache
  (``persistent_cache=False``; Inductor's default cache in the temp folder): the behaviour before issue 14,
  for comparison (``compile`` only).

With ``--backend aoti`` the first process exports and compiles a ``.pt2`` package into the das cache folder
(``<das cache>/aoti/<slot>/model.pt2``) and verifies it against eager fp32; a later process only loads it (and
hashes it: the backend verifies once per package file, recorded in ``verified.json`` beside it, and a load whose
SHA-256 matches that record skips the eager forward unless ``reverify``). Each phase records which of the two
happened (``aoti.package``: ``built`` / ``loaded``); a restart that had to build is an error, and so is a package
the verification refused (``aoti.refused`` holds the backend's message; the other phases still run).

The children get ``TMPDIR=<workdir>/tmp``, so Inductor's default cache (``$TMPDIR/torchinductor_<user>``) lives
in a private folder that ``wiped_tmp`` can delete without touching other users of ``/tmp``;
``--wipe-system-tmp`` also deletes ``/tmp/torchinductor_*`` (a bare benchmark machine only).

Usage::

    python benchmarks/restart.py --device cuda --out "$OUT/restart.json"                 # das_r50_fpn fp16
    python benchmarks/restart.py --device cpu --model tiny --precision fp32 --out /tmp/restart_cpu.json
    python benchmarks/restart.py --device cuda --backend aoti --out "$OUT/restart_aoti.json"  # the .pt2 path

Prints one JSON report (also written to ``--out``): per phase the seconds to first pose, the child's own
breakdown (imports, model, first frame), the cache log lines (hit / miss and why) and Dynamo's
compile-time table (empty for ``aoti``, which does not trace at run time). ``--profile-top N`` runs every child
under cProfile and adds its N functions of most cumulative time up to the first pose (``profile_top``): where a
restart's seconds go when Dynamo's table does not account for them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

AOTI_INDUCTOR_CACHE: dict[str, bool | None] = {"auto": None, "on": True, "off": False}
PHASES = ("first", "restart", "wiped_tmp", "no_cache_first", "no_cache_restart")
DEFAULT_PHASES = ("first", "restart", "wiped_tmp")
BACKENDS = ("compile", "aoti")
# Phases after which the das cache is expected to hold the package: there the aoti backend must load, not build.
LOADING_PHASES = ("restart", "wiped_tmp")
# Child log lines kept in a phase's ``cache_log``: the compile cache's hit / miss lines, the artefact cache's
# reuse / rebuild lines and the aoti backend's load / verification lines.
CACHE_LOG_MARKERS = ("compile cache", "das_core.engine.backends.cache: ", "das_core.engine.backends.aoti: ")

# A model small enough for Inductor's C++ backend on a 2-core CI machine (the restart logic, not the speed,
# is what the CPU run checks): 2 levels, no DCN, no recursive update.
TINY = {
    "name": "tiny_restart",
    "strides": [8, 16],
    "backbone": {"name": "resnet18", "num_stages": 2},
    "fpn": {"out_channels": 16, "num_outs": 2},
    "head": {"feat_channels": 16, "stacked_convs": 1, "use_dcn": False, "num_groups": 4, "centerness_channels": 8},
    "update": {"mode": "none"},
    "targets": {"regress_ranges": [[-1, 64], [64, 1e8]]},
    "input": {"short_side": 64, "long_side": 128},
}


def process_age_s() -> float | None:
    """Seconds since this process was started by the kernel (Linux ``/proc``), None elsewhere."""
    try:
        stat = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(stat[19])  # field 22 (starttime) counted from after the ")" that ends field 2
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


# ----------------------------------------------------------------------------------------------
# child: one fresh process to first pose
# ----------------------------------------------------------------------------------------------


def child(args: argparse.Namespace) -> int:
    t_spawn = args.spawn_time
    age0 = process_age_s()
    t0 = time.time()
    profiler = start_profile(args.profile_top)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(ROOT))
    import numpy as np
    import torch

    from das_core.engine.bench import default_camera, synthetic_frame
    from das_core.engine.compile_cache import dynamo_cache_counts
    from das_core.engine.estimator import Estimator

    t_import = time.time()
    if args.model == "tiny":
        from das_core.config import ModelConfig, config_from_dict
        from das_core.model.das import DAS

        cfg = config_from_dict(ModelConfig, TINY)
        torch.manual_seed(0)
        model: torch.nn.Module = DAS.from_config(cfg).eval()
    else:
        from das_core.engine.export import load_model

        cfg, model, _ = load_model(args.model, "cpu")
    from das_core.engine.backends import BackendError

    device = torch.device(args.device)
    channels_last = device.type == "cuda" and args.precision != "fp32"
    options: dict[str, Any] = ({"persistent_cache": not args.no_cache, "mode": args.compile_mode,
                                "freezing": args.freezing,
                                "dynamo_cache": args.dynamo_cache and not args.no_cache} if args.backend == "compile" else
                               {"persistent_inductor_cache": AOTI_INDUCTOR_CACHE[args.aoti_inductor_cache]})
    def build() -> Estimator:
        return Estimator.from_model(model, cfg, device=device, backend=args.backend, precision=args.precision,
                                    channels_last=channels_last, **options)

    est: Any
    if args.warm_start:
        import copy

        from das_core.engine.warm_start import WarmStartEstimator

        quick = Estimator.from_model(copy.deepcopy(model), cfg, device=device, backend="eager", precision="fp32")
        est = WarmStartEstimator(quick, build, name=f"{args.backend} {args.precision}", warm_frames=args.warm_frames,
                                 release_compile_workers=not args.keep_compile_workers)
    else:
        est = build()
    t_model = time.time()
    w, h = args.frame
    frame, cam = synthetic_frame(w, h), default_camera(w, h)
    try:
        persons = est(frame, cam)
    except BackendError as exc:
        if args.backend != "aoti" or "disagrees" not in str(exc):
            raise
        # A package the verification refused: reported as a result (with what was built or loaded), not a crash.
        info = aoti_info(est.backend, refused=str(exc))
        print("RESTART_RESULT " + json.dumps({"backend": args.backend, "first_pose_s": None,
                                              "imports_s": round(t_import - t0, 3),
                                              "model_and_backend_s": round(t_model - t_import, 3),
                                              "cache_hit": info["package"] == "loaded", "aoti": info}), flush=True)
        return 3
    t_first = time.time()
    profile = stop_profile(profiler, args.profile_top)
    warm: dict[str, Any] | None = None
    if args.warm_start:  # first pose from eager; the figures below are the switched-to backend's
        switched = est.wait(args.timeout_s)
        warm = {"switched": switched, "switch_s": round(time.time() - t_spawn, 3) if switched and t_spawn else None,
                "build_s": est.build_s, "warm_s": est.warm_s, "quick_frames": est.quick_frames, "error": est.error,
                "warm_frame_ms": est.warm_frame_ms, "compile_workers_released": not args.keep_compile_workers,
                "first_pose_backend": "eager fp32"}
        est = est.active
    # A few more frames: the restarted process must also be fast, not only started.
    lat = []
    for _ in range(args.frames):
        s = time.perf_counter()
        est(frame, cam)
        lat.append((time.perf_counter() - s) * 1e3)
    cache = getattr(est.backend, "compile_cache", None)
    aoti = aoti_info(est.backend) if args.backend == "aoti" else None
    try:
        from torch._dynamo.utils import compile_times

        ctimes = compile_times(repr="str", aggregate=True)
    except Exception as exc:  # noqa: BLE001 - diagnostics only
        ctimes = f"unavailable: {exc}"
    report: dict[str, Any] = {
        "first_pose_s": round(t_first - t_spawn, 3) if t_spawn else None,
        "process_start_to_first_pose_s": round(age0 + (t_first - t0), 3) if age0 is not None else None,
        "interpreter_start_s": round(t0 - t_spawn, 3) if t_spawn else None,
        "imports_s": round(t_import - t0, 3),
        "model_and_backend_s": round(t_model - t_import, 3),
        "first_frame_s": round(t_first - t_model, 3),
        "persons": len(persons),
        "steady_p50_ms": float(np.median(lat)) if lat else None,
        # every timed frame, and who else is running meanwhile: a slow steady state that fades is a transient
        # (a background save, the dropped eager copy), one that stays is the backend's own
        "latency_ms": [round(v, 3) for v in lat],
        "threads": sorted(t.name for t in threading.enumerate()),
        "backend": args.backend,
        # das cache reused: the compile cache's bundle loaded, or (aoti) the package loaded without building
        "cache_hit": (aoti["package"] == "loaded") if aoti is not None else (None if cache is None else cache.hit),
        "cache_slots": ([str(Path(p).parent) for p in aoti["packages"]] if aoti is not None
                        else [] if cache is None else [str(s.entry.path) for s in cache.slots.values()]),
        "aoti": aoti,
        "inductor_cache_dir": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
        "frame_graph": est.uses_frame_graphs,
        # compile --dynamo-cache: traced functions installed from the das cache (hit) or traced here (miss)
        "dynamo_cache": dynamo_cache_counts() if getattr(est.backend, "dynamo_cache", False) else None,
        "dynamo_compile_times": ctimes,
        "profile_top": profile,
        "warm_start": warm,
    }
    print("RESTART_RESULT " + json.dumps(report), flush=True)
    return 0


def start_profile(top: int) -> Any:
    """A running cProfile profiler when ``--profile-top`` asks for one (the child's imports to its first pose)."""
    if top <= 0:
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def stop_profile(profiler: Any, top: int) -> list[dict[str, Any]] | None:
    """The ``top`` functions by cumulative time (where the seconds to first pose went), or None unprofiled."""
    if profiler is None:
        return None
    import pstats

    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = [(ct, tt, nc, f"{Path(file).name}:{line}({name})")
            for (file, line, name), (_, nc, tt, ct, _) in stats.stats.items()]  # type: ignore[attr-defined]
    rows.sort(key=lambda r: -r[0])
    return [{"cum_s": round(ct, 3), "self_s": round(tt, 3), "calls": nc, "function": fn}
            for ct, tt, nc, fn in rows[:top]]


def aoti_info(backend: Any, refused: str | None = None) -> dict[str, Any]:
    """What an ``AOTIBackend`` did in this process: built its package(s) or only loaded them, and how long each took.

    ``package`` is ``built`` when any export + compile ran here, ``loaded`` when every package came from the das
    cache, None when none was reached (the first frame failed before).
    """
    packages = [str(p) for p in getattr(backend, "package_paths", {}).values()]
    built = float(getattr(backend, "build_seconds", 0.0)) > 0.0
    reached = bool(packages) or built or float(getattr(backend, "load_seconds", 0.0)) > 0.0
    sizes = [Path(p).stat().st_size for p in packages if Path(p).is_file()]
    return {
        "package": ("built" if built else "loaded") if reached else None,
        "build_s": round(float(getattr(backend, "build_seconds", 0.0)), 3),
        "load_s": round(float(getattr(backend, "load_seconds", 0.0)), 3),
        "verify_s": round(float(getattr(backend, "verify_seconds", 0.0)), 3),
        "packages": packages,
        "package_bytes": sum(sizes) if sizes else None,
        "refused": refused,
    }


# ----------------------------------------------------------------------------------------------
# parent: the phases
# ----------------------------------------------------------------------------------------------


def run_phase(phase: str, args: argparse.Namespace, das_cache: Path, tmpdir: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED="1", TMPDIR=str(tmpdir), DAS_CACHE_DIR=str(das_cache),
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):  # the child must find its own, as a node would
        env.pop(var, None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--device", args.device, "--model", args.model,
           "--precision", args.precision, "--frame", f"{args.frame[0]}x{args.frame[1]}", "--frames", str(args.frames),
           "--backend", args.backend, "--aoti-inductor-cache", args.aoti_inductor_cache]
    if phase.startswith("no_cache"):
        cmd.append("--no-cache")
    cmd += ["--compile-mode", args.compile_mode] + (["--freezing"] if args.freezing else [])
    cmd += ["--dynamo-cache"] if args.dynamo_cache else []
    cmd += ["--profile-top", str(args.profile_top)]
    cmd += ["--warm-start", "--warm-frames", str(args.warm_frames)] if args.warm_start else []
    cmd += ["--keep-compile-workers"] if args.keep_compile_workers else []
    spawn = time.time()
    cmd += ["--spawn-time", repr(spawn)]
    print(f"[restart] phase {phase}: starting a fresh process", flush=True)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        return {"phase": phase, "error": f"timed out after {args.timeout_s} s",
                "log_tail": _tail(exc.stderr if isinstance(exc.stderr, str) else "")}
    wall = time.time() - spawn
    result: dict[str, Any] = {"phase": phase, "wall_s": round(wall, 3), "returncode": proc.returncode}
    for line in proc.stdout.splitlines():
        if line.startswith("RESTART_RESULT "):
            result.update(json.loads(line.removeprefix("RESTART_RESULT ")))
    check_child(phase, result, proc.returncode, proc.stderr)
    aoti = result.get("aoti") or {}
    what = f"package {aoti.get('package')}" if args.backend == "aoti" else f"cache hit: {result.get('cache_hit')}"
    warm = result.get("warm_start") or {}
    if warm:
        what += f"; eager answered first, {args.backend} took over after {warm.get('switch_s')} s"
    print(f"[restart] phase {phase}: first pose after {result.get('first_pose_s')} s ({what})"
          f"{'; REFUSED' if aoti.get('refused') else ''}; {result['cache_log'][:2]}", flush=True)
    return result


def check_child(phase: str, result: dict[str, Any], returncode: int, stderr: str | None) -> None:
    """Fill ``cache_log`` from the child's log and set ``error`` (+ ``log_tail``) for a failed phase: a crash, a
    refused aoti package, or an aoti restart that built its package instead of loading it from the das cache."""
    lines = (stderr or "").splitlines()
    result["cache_log"] = [ln.split(": ", 1)[-1] for ln in lines if any(m in ln for m in CACHE_LOG_MARKERS)]
    aoti = result.get("aoti") or {}
    if aoti.get("refused"):
        result["error"] = "aoti package refused by the verification against eager fp32"
    elif returncode != 0 or "first_pose_s" not in result:
        result["error"] = f"child exited with {returncode}"
        result["log_tail"] = _tail(stderr)
    elif result.get("backend") == "aoti" and phase in LOADING_PHASES and aoti.get("package") != "loaded":
        result["error"] = f"aoti {phase}: the package was {aoti.get('package')}, not loaded from the das cache"


def summarise(phases: list[dict[str, Any]], backend: str) -> dict[str, Any]:
    """Seconds to first pose per phase, ``meets_10s`` over the restarts, and for aoti what each phase did with
    the package (``built`` / ``loaded`` / ``refused``)."""
    by = {r["phase"]: r for r in phases}
    restarts = [by[p]["first_pose_s"] for p in LOADING_PHASES if by.get(p, {}).get("first_pose_s")]
    summary: dict[str, Any] = {p: by[p].get("first_pose_s") for p in by}
    if restarts:
        summary["meets_10s"] = max(restarts) <= 10.0
    if backend == "aoti":
        summary["aoti_package"] = {p: ("refused" if (r.get("aoti") or {}).get("refused")
                                       else (r.get("aoti") or {}).get("package")) for p, r in by.items()}
        loads = [summary["aoti_package"][p] for p in LOADING_PHASES if p in by]
        summary["restarts_loaded_package"] = bool(loads) and all(v == "loaded" for v in loads)
    return summary


def _tail(text: str | None, n: int = 40) -> list[str]:
    return (text or "").splitlines()[-n:]


def _wipe(folder: Path) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda[:i] or cpu (Inductor's C++ backend)")
    parser.add_argument("--backend", default="compile", choices=BACKENDS,
                        help="compile (das compile cache) or aoti (a .pt2 package cached in the das cache folder)")
    parser.add_argument("--aoti-inductor-cache", default="auto", choices=sorted(AOTI_INDUCTOR_CACHE),
                        help="aoti: Inductor's cache in the das cache folder (AOTIBackend persistent_inductor_cache; "
                             "auto = on CPU only); 'on' / 'off' bisect the H200 load segfault (docs/PERFORMANCE.md)")
    parser.add_argument("--model", default="das_r50_fpn", help="config name / YAML / checkpoint, or 'tiny'")
    parser.add_argument("--precision", default=None, help="fp16 on cuda, fp32 on cpu by default")
    parser.add_argument("--frame", default="1280x720", help="host frame WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=20, help="frames timed after the first (steady p50)")
    parser.add_argument("--phases", nargs="+", default=list(DEFAULT_PHASES), choices=PHASES)
    parser.add_argument("--workdir", type=Path, default=None, help="das cache + temp folder (default: a new one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (default: delete it)")
    parser.add_argument("--wipe-system-tmp", action="store_true",
                        help="wiped_tmp also deletes /tmp/torchinductor_* (bare benchmark machines only)")
    parser.add_argument("--compile-mode", default="default", help="default | max-autotune-no-cudagraphs")
    parser.add_argument("--freezing", action="store_true", help="Inductor freezing (experimental)")
    parser.add_argument("--dynamo-cache", action="store_true",
                        help="compile: also cache Dynamo's traced graphs (CompiledBackend dynamo_cache; experimental), "
                             "so a restart does not trace the model again")
    parser.add_argument("--profile-top", type=int, default=0, metavar="N",
                        help="run each child under cProfile and keep its N functions of most cumulative time up to "
                             "the first pose in the phase's profile_top (what the set-up spends its seconds on; "
                             "profiling slows the child)")
    parser.add_argument("--warm-start", action="store_true",
                        help="the node's warm_start: eager fp32 answers the first frames while the backend is built "
                             "(das_core.engine.warm_start); first_pose_s is then eager's, warm_start.switch_s when "
                             "the backend took over, and the steady p50 is the backend's")
    parser.add_argument("--warm-frames", type=int, default=1,
                        help="--warm-start: warm-up runs of the backend before it takes over (WarmStartEstimator)")
    parser.add_argument("--keep-compile-workers", action="store_true",
                        help="--warm-start: leave Inductor's compile workers running after the warm-up (the "
                             "behaviour before 2026-12-03; for comparison)")
    parser.add_argument("--timeout-s", type=float, default=300.0, help="per child process")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-cache", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--spawn-time", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        w, h = (int(v) for v in args.frame.lower().split("x"))
    except ValueError:
        parser.error(f"--frame {args.frame!r}: expected WIDTHxHEIGHT")
    args.frame = (w, h)
    if args.precision is None:
        args.precision = "fp32" if args.device == "cpu" else "fp16"
    if args.backend == "aoti":
        if any(p.startswith("no_cache") for p in args.phases):
            parser.error("--backend aoti: the no_cache phases are compile-only (a package is always cached)")
        if args.freezing or args.compile_mode != "default" or args.dynamo_cache:
            parser.error("--backend aoti: --compile-mode / --freezing / --dynamo-cache are compile-only options")
    if args.child:
        return child(args)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="das-restart-"))
    compiled = args.backend == "compile"
    report: dict[str, Any] = {"backend": args.backend, "model": args.model, "device": args.device,
                              "aoti_inductor_cache": None if compiled else args.aoti_inductor_cache,
                              "precision": args.precision, "compile_mode": args.compile_mode if compiled else None,
                              "freezing": args.freezing if compiled else None,
                              "dynamo_cache": args.dynamo_cache if compiled else None,
                              "warm_start": args.warm_start,
                              "warm_frames": args.warm_frames if args.warm_start else None,
                              "compile_workers_released": (not args.keep_compile_workers) if args.warm_start else None,
                              "frame": list(args.frame), "workdir": str(work), "phases": []}
    try:
        import torch

        report["torch"] = torch.__version__
        if args.device.startswith("cuda") and torch.cuda.is_available():
            report["gpu"] = torch.cuda.get_device_name()
    except ImportError:
        pass
    das_cache, tmpdir = work / "das-cache", work / "tmp"
    nc_cache = work / "das-cache-unused"  # the no-cache phases' DAS_CACHE_DIR (nothing is written there)
    for phase in args.phases:
        if phase in ("first", "no_cache_first"):
            _wipe(tmpdir)
            _wipe(das_cache if phase == "first" else nc_cache)
        if phase == "wiped_tmp":
            _wipe(tmpdir)
            if args.wipe_system_tmp:
                for p in Path("/tmp").glob("torchinductor_*"):
                    shutil.rmtree(p, ignore_errors=True)
        tmpdir.mkdir(parents=True, exist_ok=True)
        res = run_phase(phase, args, nc_cache if phase.startswith("no_cache") else das_cache, tmpdir)
        report["phases"].append(res)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    report["summary"] = summarise(report["phases"], args.backend)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all("error" not in r for r in report["phases"]) else 1


if __name__ == "__main__":
    sys.exit(main())
