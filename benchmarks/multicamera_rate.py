#!/usr/bin/env python3
"""Several cameras at a real frame rate: one node with one model vs N separate single-camera nodes.

Each camera is a paced source (``--rate`` Hz, default 30; the cameras' phases spread evenly over one period,
as unsynchronised cameras are) that stamps a ``sensor_msgs/Image``-like message with the wall clock and hands
it to that camera's own ``das_ros.worker.LatestFrameWorker`` (the node's keep-last-1 slot: a frame that
arrives while the previous one still waits replaces it and is counted as dropped). The worker runs that
camera's own ``das_ros.pipeline.FramePipeline`` (image conversion, model, sanitise, tracker, pose and marker
messages) exactly as ``DASNode._work`` does. Latency = time the messages are built − the frame's stamp.

Modes (``--modes``):
  node      one process, one ``Estimator``; with N > 1 cameras the pipelines share it through
            ``das_ros.batching.BatchingModel`` (frames that wait for the model together run as one
            ``Estimator.batch``), as ``DASNode.on_configure`` wires it.
  separate  N subprocesses of this script, each one camera with its own ``Estimator`` (N single-camera
            nodes); they load and warm up, then all start on the same wall-clock instant.

What is not in it: rclpy and DDS (subscription callbacks, serialisation, publishing). The node's DDS path is
covered by tests/ros/test_node_multicamera.py; here the frames enter where the node's image callback hands
them to the worker, so the figures isolate batching, the model and the drop policy.

Model: the shipped checkpoint (``das_ros.apps.infer.shipped_checkpoint``) unless ``--model``. Frames are
synthetic ``--width`` × ``--height`` images (fixed seeds, one per camera).

examples:
  python benchmarks/multicamera_rate.py --device cpu --cameras 1,2,4 --rate 30 --seconds 20 \\
      --modes node,separate --json docs/results/multicamera_cpu.json
  python benchmarks/multicamera_rate.py --device cuda --cameras 1,2,4 --seconds 8 --modes node,separate
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.frames import camera_info, image_msg, synthetic_rgb  # noqa: E402
from das_ros.batching import BatchingModel  # noqa: E402
from das_ros.factory import namespace_factory  # noqa: E402
from das_ros.pipeline import FramePipeline, PipelineSettings, skeleton_of  # noqa: E402
from das_ros.worker import LatestFrameWorker  # noqa: E402

MODES = ("node", "separate")


# ---- model -----------------------------------------------------------------------------------------------
def load_estimator(args: argparse.Namespace) -> Any:
    import torch

    from das_core.engine.estimator import Estimator

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    return Estimator.from_checkpoint(args.model, device=args.device, backend=args.backend, precision=args.precision)


def warm_up(est: Any, width: int, height: int, max_batch: int, repeats: int) -> None:
    """Every batch size the run can meet (1..max_batch), so that cuDNN's per-shape search and lazy CUDA
    initialisation happen before the clock starts."""
    from das_core.camera import Intrinsics

    k = Intrinsics.from_fov(width, height, 60.0)
    img = synthetic_rgb(width, height, 99)
    for _ in range(repeats):
        for b in range(1, max_batch + 1):
            est.batch([img] * b, [k] * b)


# ---- one process: N cameras through the node's per-camera worker + pipeline --------------------------------
def stats_ms(values: list[float]) -> dict[str, float | None]:
    a = np.asarray(values, float) * 1e3
    if a.size == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max())}


def run_cameras(est: Any, names: list[str], phases: list[float], rate: float, seconds: float, t_start: float,
                width: int, height: int, seeds: list[int]) -> dict[str, Any]:
    """Run ``len(names)`` paced cameras in this process from wall-clock ``t_start`` for ``seconds``; one
    estimator, shared through a ``BatchingModel`` when there is more than one camera (as the node does)."""
    model = est if len(names) == 1 else BatchingModel(est, max_batch=len(names))
    skeleton = skeleton_of(est)
    period = 1.0 / rate
    t_end = t_start + seconds
    cams: list[dict[str, Any]] = []
    for name, seed in zip(names, seeds, strict=True):
        pipe = FramePipeline(model, skeleton, namespace_factory(), PipelineSettings())
        pipe.set_camera_info(camera_info(width, height))
        cam: dict[str, Any] = {"name": name, "pipe": pipe, "lat": [], "done": [], "late": [],
                               "data": synthetic_rgb(width, height, seed).tobytes(), "lock": threading.Lock()}

        def process(msg: SimpleNamespace, cam: dict[str, Any] = cam) -> None:
            res = cam["pipe"].process(msg)
            done = time.time()
            if res.ok:  # as DASNode._process: only a good frame is published
                st = msg.header.stamp
                with cam["lock"]:
                    cam["lat"].append(done - (st.sec + st.nanosec * 1e-9))
                    cam["done"].append(done)

        cam["worker"] = LatestFrameWorker(process, name=f"das_worker_{name}")
        cams.append(cam)

    def source(cam: dict[str, Any], phase: float) -> None:
        worker, data = cam["worker"], cam["data"]
        k = 0
        while True:
            due = t_start + phase + k * period
            if due >= t_end:
                return
            now = time.time()
            if due > now:
                time.sleep(due - now)
            stamp = time.time()  # a driver stamps the capture time
            cam["late"].append(stamp - due)
            worker.submit(image_msg(data, width, height, stamp, f"{cam['name']}_optical"))
            k += 1

    for cam in cams:
        cam["worker"].start()
    threads = [threading.Thread(target=source, args=(cam, ph), name=f"camera_{cam['name']}", daemon=True)
               for cam, ph in zip(cams, phases, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for cam in cams:  # the frame in progress (and one waiting) still finish, as on a running node
        cam["worker"].wait_idle(timeout=120.0)
        cam["worker"].stop()

    out_cams = []
    for cam in cams:
        w: LatestFrameWorker[Any] = cam["worker"]
        done = cam["done"]
        span = (max(done) - t_start) if done else seconds
        out_cams.append({
            "camera": cam["name"],
            "offered": w.submitted, "processed": w.processed, "published": len(cam["lat"]), "dropped": w.dropped,
            "worker_errors": w.errors,
            "bad_frames": int(cam["pipe"].counters["frames_bad"]),
            "fps": len(cam["lat"]) / span if span > 0 else 0.0,
            "offered_fps": w.submitted / seconds,
            "latency_ms": stats_ms(cam["lat"]),
            "source_late_ms_max": float(max(cam["late"]) * 1e3) if cam["late"] else None,
            "_lat": cam["lat"],
        })
    batching = None
    if isinstance(model, BatchingModel):
        batching = {"model_runs": model.batches, "images": model.frames,
                    "images_per_run": model.frames / max(model.batches, 1), "largest_batch": model.largest_batch}
    return {"cameras": out_cams, "batching": batching}


def totals(cams: list[dict[str, Any]]) -> dict[str, Any]:
    lat = [v for c in cams for v in c["_lat"]]
    return {"offered": sum(c["offered"] for c in cams), "processed": sum(c["processed"] for c in cams),
            "published": sum(c["published"] for c in cams), "dropped": sum(c["dropped"] for c in cams),
            "fps": sum(c["fps"] for c in cams), "latency_ms": stats_ms(lat)}


# ---- the two modes ---------------------------------------------------------------------------------------
def phases_for(n: int, rate: float) -> list[float]:
    return [i / (n * rate) for i in range(n)]


def names_for(n: int) -> list[str]:
    return [f"cam{i}" for i in range(n)]


def run_node(args: argparse.Namespace, est: Any, n: int) -> dict[str, Any]:
    warm_up(est, args.width, args.height, n, args.warmup)
    t_start = time.time() + 0.2
    res = run_cameras(est, names_for(n), phases_for(n, args.rate), args.rate, args.seconds, t_start,
                      args.width, args.height, list(range(n)))
    return {"mode": "node", "n_cameras": n, "processes": 1, **res}


def child_argv(args: argparse.Namespace, index: int, n: int) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", str(index), "--child-of", str(n),
            "--model", args.model, "--device", args.device, "--backend", args.backend, "--precision", args.precision,
            "--rate", str(args.rate), "--seconds", str(args.seconds), "--width", str(args.width),
            "--height", str(args.height), "--warmup", str(args.warmup), "--torch-threads", str(args.torch_threads)]


def run_separate(args: argparse.Namespace, n: int) -> dict[str, Any]:
    """N single-camera processes, each with its own model; started together once all have warmed up."""
    procs = [subprocess.Popen(child_argv(args, i, n), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"}) for i in range(n)]
    try:
        for i, p in enumerate(procs):
            assert p.stdout is not None
            line = p.stdout.readline().strip()
            if line != "ready":
                raise RuntimeError(f"camera process {i} did not start (said {line!r}, exit {p.poll()}); "
                                   "its error is above")
        t_start = time.time() + 0.5
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(f"{t_start!r}\n")
            p.stdin.flush()
        cams = []
        for i, p in enumerate(procs):
            out, _ = p.communicate(timeout=args.seconds + 180)
            if p.returncode != 0:
                raise RuntimeError(f"camera process {i} failed with exit {p.returncode}; its error is above")
            cams.append(json.loads(out.strip().splitlines()[-1])["cameras"][0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return {"mode": "separate", "n_cameras": n, "processes": n, "cameras": cams, "batching": None}


def child_main(args: argparse.Namespace) -> int:
    est = load_estimator(args)
    warm_up(est, args.width, args.height, 1, args.warmup)
    print("ready", flush=True)
    line = sys.stdin.readline()
    if not line.strip():  # the parent ended (e.g. killed by a time limit) before the start
        print("multicamera_rate: no start time from the parent process; exiting", file=sys.stderr)
        return 1
    t_start = float(line)
    i, n = args.child, args.child_of
    res = run_cameras(est, [names_for(n)[i]], [phases_for(n, args.rate)[i]], args.rate, args.seconds, t_start,
                      args.width, args.height, [i])
    print(json.dumps(res), flush=True)
    return 0


# ---- report ----------------------------------------------------------------------------------------------
def fmt(v: float | None, spec: str = ".1f") -> str:
    return "n/a" if v is None else format(v, spec)


def table(runs: list[dict[str, Any]]) -> str:
    head = ("| mode | N | camera | offered | processed | dropped | published | fps | latency mean | p50 | p90 | "
            "images/run |")
    rows = [head, "|" + "---|" * 12]
    for r in runs:
        b = r["batching"]
        per_run = f"{b['images_per_run']:.2f} (max {b['largest_batch']})" if b else "—"
        for c in r["cameras"]:
            lat = c["latency_ms"]
            rows.append(f"| {r['mode']} | {r['n_cameras']} | {c['camera']} | {c['offered']} | {c['processed']} | "
                        f"{c['dropped']} | {c['published']} | {c['fps']:.2f} | {fmt(lat['mean'])} | "
                        f"{fmt(lat['p50'])} | {fmt(lat['p90'])} | |")
        t = r["totals"]
        lat = t["latency_ms"]
        rows.append(f"| {r['mode']} | {r['n_cameras']} | **total** | {t['offered']} | {t['processed']} | "
                    f"{t['dropped']} | {t['published']} | **{t['fps']:.2f}** | {fmt(lat['mean'])} | "
                    f"{fmt(lat['p50'])} | {fmt(lat['p90'])} | {per_run} |")
    return "\n".join(rows)


def parse_cameras(text: str) -> list[int]:
    try:
        ns = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--cameras must be a comma-separated list of counts such as 1,2,4, got {text!r}") from None
    if not ns or min(ns) < 1:
        raise SystemExit(f"--cameras needs counts >= 1, got {text!r}")
    return ns


def main(argv: list[str] | None = None) -> int:
    from das_ros.apps.infer import shipped_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--model", default=str(shipped_checkpoint()), help="checkpoint (default: the shipped one)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    ap.add_argument("--backend", default="eager")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--cameras", default="1,2,4", help="camera counts to run, comma-separated (default 1,2,4)")
    ap.add_argument("--rate", type=float, default=30.0, help="frames per second of each camera (default 30)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    ap.add_argument("--modes", default="node", help="node, separate or node,separate (default node)")
    ap.add_argument("--separate", action="store_true", help="shorthand for --modes separate")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--warmup", type=int, default=3, help="warm-up rounds over batch sizes 1..N (default 3)")
    ap.add_argument("--torch-threads", type=int, default=0,
                    help="torch intra-op threads per process (0: torch's default, what a node gets)")
    ap.add_argument("--json", help="write every run's figures here")
    ap.add_argument("--child", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--child-of", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0:
        raise SystemExit("--rate and --seconds must be > 0")
    if args.child >= 0:
        return child_main(args)
    # A time limit's SIGTERM must still run the `finally` that kills the camera processes of --modes separate.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    counts = parse_cameras(args.cameras)
    modes = ["separate"] if args.separate else [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise SystemExit(f"--modes must name {' and/or '.join(MODES)}, got {args.modes!r}")

    import torch

    est = load_estimator(args) if "node" in modes else None
    env = {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine(),
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "load_average_start": list(os.getloadavg()),
           "gpu": torch.cuda.get_device_name() if args.device.startswith("cuda") and torch.cuda.is_available()
           else None}
    config = {k: getattr(args, k) for k in ("model", "device", "backend", "precision", "rate", "seconds", "width",
                                            "height", "warmup", "torch_threads")}
    config["cameras"], config["modes"] = counts, modes
    print(f"environment: {json.dumps(env)}")
    print(f"config: {json.dumps(config)}", flush=True)
    runs = []
    t0 = time.time()
    for mode in modes:
        for n in counts:
            t = time.time()
            r = run_node(args, est, n) if mode == "node" else run_separate(args, n)
            r["totals"] = totals(r["cameras"])
            r["wall_s"] = time.time() - t
            r["load_average_after"] = list(os.getloadavg())
            runs.append(r)
            tt = r["totals"]
            for c in r["cameras"]:
                c.pop("_lat", None)
            print(f"{mode} N={n}: {tt['fps']:.2f} frames/s total, latency mean {fmt(tt['latency_ms']['mean'])} ms "
                  f"p90 {fmt(tt['latency_ms']['p90'])} ms, dropped {tt['dropped']} of {tt['offered']} "
                  f"({r['wall_s']:.1f} s)", flush=True)
            if args.json:  # after every run, so that a run cut short by a time limit keeps what it measured
                Path(args.json).write_text(json.dumps({"environment": env, "config": config, "runs": runs},
                                                      indent=2) + "\n")
    print()
    print(table(runs))
    print(f"\nwall time {time.time() - t0:.1f} s; load average at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
