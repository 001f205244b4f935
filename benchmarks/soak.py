#!/usr/bin/env python3
"""Overload and soak test of the node's pipeline, and of ``das bag`` on a long bag (no ROS needed).

Live part: the node's threading (``das_ros.worker.LatestFrameWorker``: a keep-last-1 slot + one worker
thread running ``FramePipeline`` with the real ``Estimator``) is fed ``sensor_msgs/Image``-like messages
at ``--rate-factor`` times the rate it can process (measured first), for ``--frames`` frames. Reported:
latency (now − header stamp) percentiles, in ms and in processing periods; frames dropped by the slot;
resident memory (and CUDA memory) sampled every ``--sample-every`` frames, with the slope of a linear fit
after warm-up (MB per 1000 frames).

Bag part (``--bag-frames`` > 0): writes a bag of that many JPEG CompressedImages + a CameraInfo, runs
``das_ros.bag.process_bag`` (exactly what ``das bag`` runs) on it and reports throughput and the memory
slope over the run.

The model: ``--checkpoint`` (trained weights), else ``--config`` with random weights, else a tiny
ResNet-18 DAS with random weights (the CPU default). Images are ``--image-size`` (default: the config's
input long × short side, so the network sees the configured size).

examples:
  python benchmarks/soak.py --frames 10000 --bag-frames 10000 --json soak_cpu.json      # CPU, tiny model
  python benchmarks/soak.py --config config/model/das_r50_fpn.yaml --device cuda --frames 10000 \\
      --bag-frames 2000 --json soak_r50_cuda.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.frames import camera_info, rgb_msg, synthetic_rgb  # noqa: E402
from das_core.config import ModelConfig  # noqa: E402
from das_core.skeletons import get_skeleton  # noqa: E402
from das_ros.factory import namespace_factory  # noqa: E402
from das_ros.pipeline import FramePipeline, PipelineSettings  # noqa: E402
from das_ros.worker import LatestFrameWorker  # noqa: E402

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc; else the peak from ``resource``)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * _PAGE / 1e6
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def cuda_mb(device: Any) -> tuple[float, float]:
    """(allocated, reserved) CUDA memory in MB, or (0, 0) off CUDA."""
    import torch

    if getattr(device, "type", "cpu") != "cuda":
        return 0.0, 0.0
    return torch.cuda.memory_allocated(device) / 1e6, torch.cuda.memory_reserved(device) / 1e6


def slope_per_1000(frames: list[float], values: list[float], skip_fraction: float) -> float | None:
    """Linear-fit slope of ``values`` over ``frames`` after the first ``skip_fraction`` of samples, per 1000."""
    n0 = int(len(frames) * skip_fraction)
    x, y = np.asarray(frames[n0:], float), np.asarray(values[n0:], float)
    if len(x) < 3 or np.ptp(x) == 0:
        return None
    return float(np.polyfit(x, y, 1)[0] * 1000.0)


def tiny_config() -> ModelConfig:
    """ResNet-18, 32-channel FPN on 3 levels, 64 × 96 px input: fast on a CPU."""
    from das_core.config import (
        BackboneConfig,
        DecodeConfig,
        FPNConfig,
        HeadConfig,
        InputConfig,
        TargetConfig,
        UpdateConfig,
    )

    return ModelConfig(
        name="das_tiny", strides=(8, 16, 32), backbone=BackboneConfig(name="resnet18"),
        fpn=FPNConfig(out_channels=32, num_outs=3),
        head=HeadConfig(feat_channels=32, stacked_convs=1, num_groups=8, centerness_channels=16),
        update=UpdateConfig(num_points=2),
        targets=TargetConfig(regress_ranges=((-1.0, 16.0), (16.0, 32.0), (32.0, 1e8))),
        decode=DecodeConfig(score_thr=0.05, nms_pre=100, nms_post=20),
        input=InputConfig(short_side=64, long_side=96),
    )


def build_estimator(args: argparse.Namespace) -> Any:
    import torch

    from das_core.config import load_config
    from das_core.engine.estimator import Estimator
    from das_core.model.das import DAS

    if args.checkpoint:
        return Estimator.from_checkpoint(args.checkpoint, device=args.device, backend=args.backend,
                                         precision=args.precision)
    cfg = load_config(args.config) if args.config else tiny_config()
    torch.manual_seed(args.seed)
    model = DAS.from_config(cfg).eval()
    if not args.prior_bias:
        # Random weights with the 0.01 prior detect nobody; a 0 logit bias makes people appear everywhere,
        # so NMS, the tracker and the message builders work at their nms_post limit (the heavy case).
        with torch.no_grad():
            for m in model.modules():
                conv = getattr(m, "conv_cls", None)
                if conv is not None and conv.bias is not None:
                    conv.bias.fill_(args.cls_bias)
    return Estimator.from_model(model, cfg, device=args.device, backend=args.backend, precision=args.precision)


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, float)
    if a.size == 0:
        return {}
    return {"p50": float(np.percentile(a, 50)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "mean": float(a.mean())}


def live_soak(args: argparse.Namespace, est: Any, width: int, height: int) -> dict[str, Any]:
    skeleton = get_skeleton(est.cfg.skeleton)
    pipe = FramePipeline(est, skeleton, namespace_factory(), PipelineSettings())
    pipe.set_camera_info(camera_info(width, height))
    images = [synthetic_rgb(width, height, s) for s in range(8)]

    # 1. Processing period, measured synchronously after a warm-up.
    for i in range(args.warmup):
        pipe.process(rgb_msg(images[i % len(images)], time.time()))
    periods = []
    for i in range(args.calibrate):
        t0 = time.perf_counter()
        pipe.process(rgb_msg(images[i % len(images)], time.time()))
        periods.append(time.perf_counter() - t0)
    period = float(np.median(periods))
    interval = period / args.rate_factor

    # 2. Overload: the producer submits every `interval` s; the worker keeps only the newest frame.
    latencies: list[float] = []
    proc_times: list[float] = []
    lock = threading.Lock()

    bound_ok: list[bool] = []  # latency ≤ own processing + the previous frame's (the keep-last-1 bound)

    def process(msg: SimpleNamespace) -> None:
        t0 = time.perf_counter()
        res = pipe.process(msg)
        done = time.time()
        dt = time.perf_counter() - t0
        with lock:
            prev = proc_times[-1] if proc_times else dt
            proc_times.append(dt)
            if res.ok:
                st = msg.header.stamp
                latency = done - (st.sec + st.nanosec * 1e-9)
                latencies.append(latency)
                bound_ok.append(latency <= dt + prev + 2e-3)

    worker: LatestFrameWorker[SimpleNamespace] = LatestFrameWorker(process)
    gc.collect()
    mem_frames: list[float] = []
    mem_rss: list[float] = []
    mem_cuda: list[float] = []
    mem_cuda_reserved: list[float] = []

    def sample(i: int) -> None:
        mem_frames.append(i)
        mem_rss.append(rss_mb())
        alloc, reserved = cuda_mb(est.device)
        mem_cuda.append(alloc)
        mem_cuda_reserved.append(reserved)

    worker.start()
    start = time.perf_counter()
    next_t = start
    for i in range(args.frames):
        if i % args.sample_every == 0:
            sample(i)
        if i % 10 == 0 and len(proc_times) >= 5:
            # Follow the real processing rate (it drifts with load and with the number of people), so the
            # input stays at rate_factor × what the pipeline can do.
            with lock:
                interval = float(np.mean(proc_times[-50:])) / args.rate_factor
        now = time.perf_counter()
        if next_t > now:
            time.sleep(next_t - now)
        worker.submit(rgb_msg(images[i % len(images)], time.time()))
        next_t += interval
    submit_wall = time.perf_counter() - start
    worker.wait_idle(timeout=60.0)
    sample(args.frames)
    wall = time.perf_counter() - start
    worker.stop()

    lat_ms = [x * 1e3 for x in latencies]
    lat = percentiles(lat_ms)
    proc = percentiles([x * 1e3 for x in proc_times])
    run_period = proc["p50"]
    c = pipe.counters
    return {
        "image_size": [width, height],
        "processing_ms": {"calibration_median": period * 1e3, **proc},
        "input_rate_hz": worker.submitted / submit_wall,
        "processing_rate_hz": worker.processed / wall,
        "overload_factor": (worker.submitted / submit_wall) / (worker.processed / wall),
        "frames_submitted": worker.submitted,
        "frames_processed": worker.processed,
        "frames_dropped": worker.dropped,
        "worker_errors": worker.errors,
        "frames_published": int(c["frames_ok"]) - args.warmup - args.calibrate,
        "bad_frames": {k: int(v) for k, v in c.items() if k not in ("frames_in", "frames_ok", "persons_out")},
        "persons_out": int(c["persons_out"]),
        "latency_ms": lat,
        "latency_in_periods": {k: v / run_period for k, v in lat.items()},
        "latency_p99_within_two_periods": bool(lat and lat["p99"] <= 2.0 * run_period),
        "latency_p99_within_two_p99_periods": bool(lat and lat["p99"] <= 2.0 * proc["p99"]),
        "latency_within_own_plus_previous_processing": float(np.mean(bound_ok)) if bound_ok else None,
        "wall_s": wall,
        "memory": {
            "sample_every_frames": args.sample_every,
            "rss_mb_first": mem_rss[0], "rss_mb_last": mem_rss[-1],
            "rss_slope_mb_per_1000_frames": slope_per_1000(mem_frames, mem_rss, args.warmup_fraction),
            "cuda_allocated_mb_last": mem_cuda[-1], "cuda_reserved_mb_last": mem_cuda_reserved[-1],
            "cuda_allocated_slope_mb_per_1000_frames": slope_per_1000(mem_frames, mem_cuda, args.warmup_fraction),
            "cuda_reserved_slope_mb_per_1000_frames": slope_per_1000(mem_frames, mem_cuda_reserved,
                                                                     args.warmup_fraction),
            "samples": {"frames": mem_frames, "rss_mb": mem_rss, "cuda_allocated_mb": mem_cuda},
        },
    }


def bag_soak(args: argparse.Namespace, est: Any, width: int, height: int) -> dict[str, Any]:
    """Write a long bag, run process_bag on it, sample memory from inside the estimator call."""
    import cv2
    from rosbags.rosbag2 import StoragePlugin, Writer

    from das_ros.bag import process_bag
    from das_ros.interfaces import typestore

    ts = typestore("jazzy")
    t = ts.types
    tmp = Path(tempfile.mkdtemp(prefix="das_soak_bag_"))
    try:
        src = tmp / "in"
        jpegs = [cv2.imencode(".jpg", synthetic_rgb(width, height, s)[..., ::-1])[1].ravel() for s in range(8)]
        t_write = time.perf_counter()
        with Writer(src, version=9, storage_plugin=StoragePlugin.MCAP) as w:
            c_img = w.add_connection("/cam/image_raw/compressed", "sensor_msgs/msg/CompressedImage", typestore=ts)
            c_info = w.add_connection("/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=ts)
            ci = camera_info(width, height)
            hdr0 = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="cam")
            info = t["sensor_msgs/msg/CameraInfo"](
                header=hdr0, height=height, width=width, distortion_model="plumb_bob", d=np.zeros(5),
                k=np.array(ci.k), r=np.eye(3).ravel(), p=np.zeros(12), binning_x=0, binning_y=0,
                roi=t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            w.write(c_info, 1, ts.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            for i in range(args.bag_frames):
                ns = 10**9 + i * 33_333_333
                hdr = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=ns // 10**9,
                                                                                        nanosec=ns % 10**9),
                                               frame_id="cam")
                msg = t["sensor_msgs/msg/CompressedImage"](header=hdr, format="jpeg", data=jpegs[i % len(jpegs)])
                w.write(c_img, ns, ts.serialize_cdr(msg, "sensor_msgs/msg/CompressedImage"))
        write_s = time.perf_counter() - t_write
        bag_bytes = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())

        frames: list[float] = []
        rss: list[float] = []
        cuda: list[float] = []
        calls = {"n": 0}

        def sampled(rgb: np.ndarray, k: Any) -> Any:
            if calls["n"] % args.sample_every == 0:
                frames.append(calls["n"])
                rss.append(rss_mb())
                cuda.append(cuda_mb(est.device)[0])
            calls["n"] += 1
            return est(rgb, k)

        sampled.cfg = est.cfg  # type: ignore[attr-defined]
        gc.collect()
        t0 = time.perf_counter()
        summary = process_bag(src, tmp / "out", image_topic="/cam/image_raw/compressed",
                              camera_info_topic="/cam/camera_info", estimator=sampled,
                              skeleton=get_skeleton(est.cfg.skeleton), progress=False)
        run_s = time.perf_counter() - t0
        out_bytes = sum(p.stat().st_size for p in (tmp / "out").rglob("*") if p.is_file())
        return {
            "frames": args.bag_frames, "image_size": [width, height], "input_bag_mb": bag_bytes / 1e6,
            "output_bag_mb": out_bytes / 1e6, "write_input_s": write_s, "run_s": run_s,
            "frames_per_s": summary.images / run_s if run_s > 0 else None,
            "images": summary.images, "published": summary.published, "persons": summary.persons,
            "bad_frames": summary.bad_frames,
            "memory": {
                "rss_mb_first": rss[0] if rss else None, "rss_mb_last": rss[-1] if rss else None,
                "rss_slope_mb_per_1000_frames": slope_per_1000(frames, rss, args.warmup_fraction),
                "cuda_allocated_slope_mb_per_1000_frames": slope_per_1000(frames, cuda, args.warmup_fraction),
                "samples": {"frames": frames, "rss_mb": rss},
            },
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fmt(x: float | None) -> str:
    return "n/a (too few samples)" if x is None else f"{x:+.3f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=10_000, help="frames fed to the live pipeline")
    p.add_argument("--rate-factor", type=float, default=2.0, help="input rate / processing rate")
    p.add_argument("--bag-frames", type=int, default=2000,
                   help="frames in the das bag soak (0 = skip); offline, so every frame is processed")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, auto")
    p.add_argument("--backend", default="eager")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--checkpoint", default=None, help="checkpoint (NAME.safetensors + NAME.yaml)")
    p.add_argument("--config", default=None, help="model YAML, random weights (e.g. config/model/das_r50_fpn.yaml)")
    p.add_argument("--image-size", default=None, help="WxH of the input images (default: the config's input size)")
    p.add_argument("--warmup", type=int, default=10, help="synchronous warm-up frames (not counted)")
    p.add_argument("--calibrate", type=int, default=30, help="synchronous frames that measure the processing period")
    p.add_argument("--sample-every", type=int, default=250, help="memory sample interval in frames")
    p.add_argument("--warmup-fraction", type=float, default=0.2, help="memory samples left out of the slope fit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cls-bias", type=float, default=0.0, help="classification logit bias for random weights")
    p.add_argument("--prior-bias", action="store_true", help="keep the 0.01-prior bias (random model finds nobody)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", default=None, help="write the results to this JSON file")
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    est = build_estimator(args)
    if args.image_size:
        width, height = (int(v) for v in args.image_size.lower().split("x"))
    else:
        width, height = est.cfg.input.long_side, est.cfg.input.short_side

    result: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "model": args.checkpoint or args.config or "tiny (benchmarks/soak.py:tiny_config), random weights",
        "device": str(est.device),
        "gpu": torch.cuda.get_device_name(est.device) if est.device.type == "cuda" else None,
        "cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": torch.__version__,
    }
    result["live"] = live_soak(args, est, width, height)
    live = result["live"]
    print(f"live: {live['frames_submitted']} frames at {live['input_rate_hz']:.1f} Hz into a pipeline running at "
          f"{live['processing_rate_hz']:.1f} Hz (×{live['overload_factor']:.2f}): processed {live['frames_processed']}, "
          f"dropped {live['frames_dropped']}, errors {live['worker_errors']}, persons {live['persons_out']}")
    lat = live["latency_ms"]
    print(f"  latency ms p50 {lat['p50']:.1f} p90 {lat['p90']:.1f} p99 {lat['p99']:.1f} max {lat['max']:.1f} "
          f"(processing p50 {live['processing_ms']['p50']:.1f} p99 {live['processing_ms']['p99']:.1f} ms; "
          f"p99 ≤ 2 periods: {live['latency_p99_within_two_periods']}; ≤ own + previous processing: "
          f"{live['latency_within_own_plus_previous_processing']:.4f} of frames)")
    m = live["memory"]
    print(f"  RSS {m['rss_mb_first']:.0f} → {m['rss_mb_last']:.0f} MB, slope {_fmt(m['rss_slope_mb_per_1000_frames'])} "
          f"MB/1000 frames; CUDA allocated slope {_fmt(m['cuda_allocated_slope_mb_per_1000_frames'])}, reserved "
          f"{_fmt(m['cuda_reserved_slope_mb_per_1000_frames'])} MB/1000 frames")
    if args.bag_frames > 0:
        result["bag"] = bag_soak(args, est, width, height)
        b = result["bag"]
        print(f"bag: {b['images']} images → {b['published']} pose messages in {b['run_s']:.1f} s "
              f"({b['frames_per_s']:.1f} fps); RSS {b['memory']['rss_mb_first']} → {b['memory']['rss_mb_last']} MB, "
              f"slope {_fmt(b['memory']['rss_slope_mb_per_1000_frames'])} MB/1000 frames")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
