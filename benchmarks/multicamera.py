"""Several cameras through one model: sequential single calls vs ``Estimator.batch``, and the node's inference
path (``das_ros.batching.BatchingModel`` with one thread per camera, as the node's per-camera workers).

For N = 1..--cameras: (a) median ms of N single ``est(image)`` calls vs one ``est.batch(N images)``;
(b) N threads calling one ``BatchingModel`` back to back for --seconds: frames/s per camera, mean and p90
per-frame latency, mean images per model run. Model: the shipped checkpoint (das_core/assets/das_demo) unless
--model. Synthetic --width × --height frames (fixed seed); compute does not depend on the content.

Usage::

    python benchmarks/multicamera.py [--cameras 2] [--device cpu] [--iters 10] [--seconds 10]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from das_core.camera import Intrinsics  # noqa: E402
from das_core.engine.estimator import Estimator  # noqa: E402
from das_ros.apps.infer import shipped_checkpoint  # noqa: E402
from das_ros.batching import BatchingModel  # noqa: E402


def median_ms(fn, iters: int) -> float:  # noqa: ANN001 - a callable
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def threaded(est: Estimator, images: list[np.ndarray], k: Intrinsics, seconds: float) -> tuple[list[float], float, float]:
    model = BatchingModel(est, max_batch=len(images))
    lat: list[list[float]] = [[] for _ in images]
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            model(images[i], k)
            lat[i].append((time.perf_counter() - t0) * 1e3)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(images))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    fps = [len(x) / wall for x in lat]
    allv = sorted(v for x in lat for v in x)
    print(f"  threaded N={len(images)}: fps per camera {', '.join(f'{f:.2f}' for f in fps)}; latency mean "
          f"{statistics.mean(allv):.1f} ms, p90 {allv[int(0.9 * (len(allv) - 1))]:.1f} ms; images per model run "
          f"{model.frames / max(model.batches, 1):.2f} (max {model.largest_batch}); {wall:.1f} s")
    return fps, statistics.mean(allv), model.frames / max(model.batches, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(shipped_checkpoint()))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cameras", type=int, default=2)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    print(f"python {platform.python_version()}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"torch threads {torch.get_num_threads()}, device {a.device}, model {a.model}, frames {a.width}x{a.height}")
    est = Estimator.from_checkpoint(a.model, device=a.device)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (a.height, a.width, 3), dtype=np.uint8) for _ in range(a.cameras)]
    k = Intrinsics.from_fov(a.width, a.height, 60.0)
    for _ in range(3):
        est.batch(images, [k] * len(images))  # warm-up
        est(images[0], k)
    for n in range(1, a.cameras + 1):
        seq = median_ms(lambda n=n: [est(images[i], k) for i in range(n)], a.iters)
        bat = median_ms(lambda n=n: est.batch(images[:n], [k] * n), a.iters)
        print(f"  N={n}: {n} single calls {seq:.1f} ms, one batch {bat:.1f} ms (median of {a.iters})")
    for n in range(1, a.cameras + 1):
        threaded(est, images[:n], k, a.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
