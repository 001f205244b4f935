#!/usr/bin/env python3
"""CPU backends for small robots: frames/s through the node's pipeline, and what each option costs in accuracy.

Speed (``--speed``, default on): the shipped checkpoint (``das_core/assets/das_demo``, or ``--checkpoint``) runs
in ``das_ros.pipeline.FramePipeline`` exactly as the node runs it — ``sensor_msgs/Image``-like rgb8 messages
of ``--frame-size`` (640×384) and a CameraInfo of the same size → conversion → ``Estimator`` (preprocess,
backend, decode) → sanitise → tracker → pose and marker messages. Frames are basic-recipe synthetic scenes
(so people are found and decoding, tracking and messages cost what they cost with people in view),
resized to the frame size. All options are built in this one process first; then ``--rounds`` rounds each
run ``--frames`` frames through every option in turn (round-robin, so load from other processes on a shared
machine hits every option alike). Reported per option: frames/s of its best round (``fps_best``) and
median over all rounds, the median per-frame time split into the node's stages, and the build time (ONNX
export, int8 quantisation; cached under ``$DAS_CACHE_DIR`` after the first run).

Options (``--options``, names below): the backend (eager PyTorch, onnxruntime fp32, onnxruntime int8), the
threads (``torch.set_num_threads`` and onnxruntime's intra-op threads), channels_last for eager, and the
network input scale (``Estimator(input_scale=…)``, ``das_core.engine.preprocess.scaled_input``: 0.8 turns a
640×384 frame into a 512×320 network input).

Accuracy (``--accuracy TEST.json``): the synthetic protocol of ``das evaluate`` (MPJPE root-relative and
absolute, PCK_abs@150 mm, root-depth error, precision, recall) for every option with its own numerics
(threads and channels_last do not change the results, so each backend × precision × scale is evaluated once),
on ``--max-images`` images of the split.

examples:
  das make-synthetic --out /tmp/syn --split test --num 300 --seed 0
  python benchmarks/cpu_backends.py --json docs/results/cpu_backends_2core.json            # speed only
  python benchmarks/cpu_backends.py --no-speed --accuracy /tmp/syn/test.json --max-images 300 \\
      --json docs/results/cpu_backends_accuracy.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.frames import camera_info, rgb_msg  # noqa: E402


@dataclass(frozen=True)
class Option:
    name: str
    backend: str = "eager"
    precision: str = "fp32"
    threads: int = 2
    input_scale: float = 1.0
    channels_last: bool = False

    @property
    def numerics(self) -> tuple[str, str, float]:
        """What changes the results (threads and memory format do not)."""
        return (self.backend, self.precision, self.input_scale)


def _options() -> dict[str, Option]:
    out = [
        Option("eager-fp32-t1", threads=1),
        Option("eager-fp32-t2"),
        Option("eager-fp32-t2-cl", channels_last=True),
        Option("onnx-fp32-t2", "onnx"),
        Option("onnx-int8-t1", "onnx", "int8", threads=1),
        Option("onnx-int8-t2", "onnx", "int8"),
    ]
    for s in (0.8, 0.7, 0.6):
        tag = f"s{int(round(s * 100)):03d}"
        out += [Option(f"eager-fp32-t2-{tag}", input_scale=s), Option(f"onnx-fp32-t2-{tag}", "onnx", input_scale=s),
                Option(f"onnx-int8-t1-{tag}", "onnx", "int8", threads=1, input_scale=s),
                Option(f"onnx-int8-t2-{tag}", "onnx", "int8", input_scale=s)]
    return {o.name: o for o in out}


OPTIONS = _options()
DEFAULT_SPEED = list(OPTIONS)
DEFAULT_ACCURACY = ["eager-fp32-t2", "onnx-int8-t2", "eager-fp32-t2-s080", "onnx-int8-t2-s080", "eager-fp32-t2-s070",
                    "onnx-fp32-t2", "onnx-int8-t2-s070", "eager-fp32-t2-s060"]


def build(opt: Option, checkpoint: Path, cache_dir: str | None) -> Any:
    import torch

    from das_core.engine.estimator import Estimator

    torch.set_num_threads(opt.threads)
    kw: dict[str, Any] = {}
    if opt.backend == "onnx":
        kw = {"threads": opt.threads, "cache_dir": cache_dir}
    return Estimator.from_checkpoint(checkpoint, device="cpu", backend=opt.backend, precision=opt.precision,
                                     channels_last=opt.channels_last, input_scale=opt.input_scale, **kw)


# ----------------------------------------------------------------------------------------------
# Speed
# ----------------------------------------------------------------------------------------------


def frames_for(width: int, height: int, count: int) -> list[np.ndarray]:
    """Basic-recipe scenes (split val, seed 99: not the test split), resized to ``width × height``."""
    import cv2

    from das_core.data.synthetic import make_scene

    return [np.ascontiguousarray(cv2.resize(make_scene(99, "val", i).image, (width, height),
                                            interpolation=cv2.INTER_AREA)) for i in range(count)]


def speed(options: list[Option], args: argparse.Namespace) -> list[dict[str, Any]]:
    import torch

    from das_core.skeletons import get_skeleton
    from das_ros.factory import namespace_factory
    from das_ros.pipeline import FramePipeline, PipelineSettings

    w, h = args.frame_size
    frames = frames_for(w, h, 8)
    info = camera_info(w, h, focal=(w / 2.0) / np.tan(np.radians(30.0)))  # 60° horizontal field of view
    cases = []
    for opt in options:
        t0 = time.perf_counter()
        est = build(opt, args.checkpoint, args.cache_dir)
        pipe = FramePipeline(est, get_skeleton(est.cfg.skeleton), namespace_factory(), PipelineSettings())
        pipe.set_camera_info(info)
        res = pipe.process(rgb_msg(frames[0], 0.0))  # builds fixed-shape graphs (export, quantisation)
        if not res.ok:
            raise RuntimeError(f"{opt.name}: the pipeline refused a frame: {res.reason}: {res.error}")
        build_s = time.perf_counter() - t0
        for i in range(args.warmup):
            pipe.process(rgb_msg(frames[i % len(frames)], 0.1 * (i + 1)))
        cases.append({"opt": opt, "pipe": pipe, "est": est, "build_s": build_s, "rounds": [], "stages": [],
                      "persons": []})
        print(f"built {opt.name:22s} in {build_s:6.1f} s", flush=True)
    stamp = 100.0
    for r in range(args.rounds):
        for case in cases:
            opt, pipe = case["opt"], case["pipe"]
            torch.set_num_threads(opt.threads)
            times = []
            start, cpu_start = time.perf_counter(), time.process_time()
            for i in range(args.frames):
                stamp += 1.0 / 30.0
                res = pipe.process(rgb_msg(frames[i % len(frames)], stamp))
                if not res.ok:
                    raise RuntimeError(f"{opt.name}: bad frame: {res.reason}: {res.error}")
                t = case["est"].timings
                case["stages"].append({**res.timings_ms, "preprocess": t.preprocess_ms, "network": t.forward_ms,
                                       "decode": t.decode_ms})
                case["persons"].append(len(res.persons))
                times.append(res.timings_ms["total"])
            # CPU seconds of all this process's threads: what a frame costs in core time, which load from other
            # processes inflates far less than the wall clock (threads / CPU time = fps if the cores were free;
            # spin-waiting worker threads add CPU time, so with 2 threads this errs low).
            case["rounds"].append({"fps": args.frames / (time.perf_counter() - start),
                                   "median_ms": float(np.median(times)),
                                   "cpu_ms_per_frame": (time.process_time() - cpu_start) * 1e3 / args.frames})
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{c['opt'].name} {c['rounds'][-1]['fps']:.2f}"
                                                            for c in cases), flush=True)
    out = []
    for case in cases:
        opt, est = case["opt"], case["est"]
        stages = {k: float(np.median([s[k] for s in case["stages"]])) for k in case["stages"][0]}
        fps = [r["fps"] for r in case["rounds"]]
        rec = est.cfg.input
        cpu = min(r["cpu_ms_per_frame"] for r in case["rounds"])
        entry = {**asdict(opt), "fps_best": max(fps), "fps_median": float(np.median(fps)), "fps_rounds": fps,
                 "cpu_ms_per_frame_min": cpu, "fps_if_cores_free": min(opt.threads, os.cpu_count() or 1) * 1e3 / cpu,
                 "frame_ms_median": stages["total"], "stages_ms_median": stages, "build_s": case["build_s"],
                 "input_limits": [rec.short_side, rec.long_side],
                 "network_input_hw": _network_hw(est, w, h), "persons_per_frame": float(np.mean(case["persons"]))}
        reports = getattr(est.backend, "int8_reports", None)
        if reports:
            entry["int8_check"] = next(iter(reports.values()))
        out.append(entry)
    return out


def _network_hw(est: Any, width: int, height: int) -> list[int]:
    from das_core.camera import ResizeRecord

    i = est.cfg.input
    r = ResizeRecord.for_image(width, height, i.long_side, i.short_side, i.size_divisor)
    return [r.padded_height, r.padded_width]


# ----------------------------------------------------------------------------------------------
# Accuracy
# ----------------------------------------------------------------------------------------------


def accuracy(options: list[Option], args: argparse.Namespace, report: dict[str, Any]) -> list[dict[str, Any]]:
    from das_core.data.annotations import read_annotations
    from das_core.evaluation.run import evaluate_estimator

    annotations = read_annotations(args.accuracy)
    seen: set[tuple[str, str, float]] = set()
    out = []
    for opt in options:
        if opt.numerics in seen:
            continue
        seen.add(opt.numerics)
        t0 = time.perf_counter()
        est = build(opt, args.checkpoint, args.cache_dir)
        metrics = evaluate_estimator(est, annotations, "synthetic", max_images=args.max_images)
        entry = {"option": opt.name, "backend": opt.backend, "precision": opt.precision,
                 "input_scale": opt.input_scale, "seconds": time.perf_counter() - t0, **metrics}
        out.append(entry)
        print(f"accuracy {opt.name:22s} " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()), flush=True)
        if args.json:  # partial results survive a killed run
            _write(args, {**report, "accuracy": out}, partial=True)
    return out


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    lines = []
    if report.get("speed"):
        w, h = report["frame_size"]
        lines += [f"Speed: {w}x{h} frames through das_ros.pipeline.FramePipeline, shipped checkpoint, "
                  f"{report['rounds']} rounds x {report['frames']} frames (round-robin); fps_best = best round",
                  "cpu ms = CPU time of all threads per frame (best round); fps@free = threads x 1000 / cpu ms, the "
                  "rate if the cores were free and perfectly used (for 1 thread an estimate; with more threads the "
                  "CPU time includes spin-waiting, so it can be lower than what free cores give)",
                  f"{'option':24s} {'net HxW':>9s} {'fps_best':>8s} {'fps_med':>8s} {'frame ms':>8s} {'pre':>6s} "
                  f"{'network':>8s} {'decode':>7s} {'rest':>6s} {'cpu ms':>7s} {'fps@free':>8s} {'build s':>7s}"]
        for r in report["speed"]:
            st = r["stages_ms_median"]
            rest = st["total"] - st["estimate"]
            lines.append(f"{r['name']:24s} {r['network_input_hw'][0]:>4d}x{r['network_input_hw'][1]:<4d} "
                         f"{r['fps_best']:8.2f} {r['fps_median']:8.2f} {st['total']:8.1f} {st['preprocess']:6.1f} "
                         f"{st['network']:8.1f} {st['decode']:7.1f} {rest:6.1f} {r['cpu_ms_per_frame_min']:7.1f} "
                         f"{r['fps_if_cores_free']:8.2f} {r['build_s']:7.1f}")
    if report.get("accuracy"):
        lines += ["", f"Accuracy: synthetic protocol on {report.get('accuracy_data')} "
                      f"(first {report.get('max_images') or 'all'} images)",
                  f"{'option':24s} {'MPJPE-rel':>9s} {'MPJPE-abs':>9s} {'PCK_abs':>7s} {'root err':>8s} "
                  f"{'precision':>9s} {'recall':>6s} {'images':>6s}"]
        for r in report["accuracy"]:
            lines.append(f"{r['option']:24s} {r['mpjpe_rel_mm']:9.1f} {r['mpjpe_abs_mm']:9.1f} {r['pck_abs']:7.4f} "
                         f"{r['root_depth_err_mm']:8.1f} {r['precision']:9.4f} {r['recall']:6.4f} "
                         f"{int(r['num_images']):6d}")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"torch": torch.__version__, "python": platform.python_version(),
                           "cpu_count": os.cpu_count(), "machine": platform.machine()}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            env["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        env["onnxruntime"] = None
    if hasattr(os, "getloadavg"):
        env["loadavg_at_start"] = list(os.getloadavg())
    return env


def _write(args: argparse.Namespace, report: dict[str, Any], partial: bool = False) -> None:
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {**report, "partial": True} if partial else report
    path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    return w, h


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog="\n\n".join(
                                     __doc__.split("\n\n")[1:]))
    ap.add_argument("--checkpoint", type=Path, default=None, help="NAME of NAME.safetensors (default: shipped)")
    ap.add_argument("--frame-size", type=parse_size, default=(640, 384), help="WxH of the frames (default 640x384)")
    ap.add_argument("--options", nargs="+", default=None, choices=list(OPTIONS), metavar="NAME",
                    help=f"speed options (default: all): {', '.join(OPTIONS)}")
    ap.add_argument("--accuracy-options", nargs="+", default=DEFAULT_ACCURACY, choices=list(OPTIONS),
                    metavar="NAME", help="options evaluated with --accuracy (default: %(default)s)")
    ap.add_argument("--frames", type=int, default=10, help="frames per option per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--no-speed", dest="speed", action="store_false")
    ap.add_argument("--accuracy", type=Path, default=None, metavar="TEST.json", help="synthetic test split")
    ap.add_argument("--max-images", type=int, default=None)
    ap.add_argument("--cache-dir", default=None, help="artefact cache (default $DAS_CACHE_DIR or ~/.cache/das)")
    ap.add_argument("--json", default=None, help="write the report here (.txt with the table next to it)")
    args = ap.parse_args(argv)
    if args.checkpoint is None:
        from das_ros.apps.infer import shipped_checkpoint

        args.checkpoint = shipped_checkpoint()
    report: dict[str, Any] = {
        "command": "python benchmarks/cpu_backends.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "checkpoint": str(args.checkpoint), "frame_size": list(args.frame_size), "frames": args.frames,
        "rounds": args.rounds, "environment": environment(),
    }
    if args.speed:
        report["speed"] = speed([OPTIONS[n] for n in (args.options or DEFAULT_SPEED)], args)
        if args.json:
            _write(args, report, partial=args.accuracy is not None)
    if args.accuracy is not None:
        report["accuracy_data"], report["max_images"] = str(args.accuracy), args.max_images
        report["accuracy"] = accuracy([OPTIONS[n] for n in args.accuracy_options], args, report)
    if hasattr(os, "getloadavg"):
        report["environment"]["loadavg_at_end"] = list(os.getloadavg())
    text = table(report)
    print(text)
    if args.json:
        _write(args, report)
        Path(args.json).with_suffix(".txt").write_text(report["command"] + "\n\n" + text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
