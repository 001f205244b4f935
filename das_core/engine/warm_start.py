"""``WarmStartEstimator``: answer at once with a quick estimator while a slow-to-build one gets ready, then switch.

A ``compile`` backend is the fast path on a GPU, but a restarted process waits for it (Dynamo, Inductor's cache,
the CUDA-graph captures: ~30 s on the H200 with every cache warm, minutes the first time), while ``eager`` fp32
answers within seconds. Here the eager estimator answers every frame until the compiled one has been built and
has run once on a real frame (the first one that came, so the capture has the camera's size), in a background
thread; from the next frame on the compiled one answers. A build or warm-up that fails is logged and the quick
estimator keeps answering, so a robot is never left blind by it.

Frames answered while the other thread captures CUDA graphs would break the capture (see
:mod:`das_core.engine.capture_lock`), so answered frames and captures take turns on ``CAPTURE_LOCK``; compiling,
which is most of the wait, runs beside the answered frames. Both estimators hold their own copy of the weights
until the switch, after which the quick one is dropped.

The build starts once the quick estimator has answered its first frame, not at construction: Dynamo's tracing and
cache loading hold the GIL and the CPU, and on the H200 a first eager frame that shared them took 5-6 s instead of
about one (``docs/PERFORMANCE.md``, "Warm start"). A process that gets no frame builds anyway after
``build_after_idle_s``, so a node waiting for its camera is not idle.

Before the switch the background thread runs ``warm_frames`` frames (each one timed, ``warm_frame_ms``) and then
shuts Inductor's compile-worker processes down (``release_compile_workers``): the build is over, and a node has no
use for a pool of idle subprocesses. A later compilation (a new frame size) starts the pool again by itself. On the
H200 neither changes the first frames after the switch, which can take ~8 ms for up to seven frames either way
(``docs/PERFORMANCE.md``, "Warm start").
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from das_core.camera import Intrinsics
from das_core.engine.capture_lock import CAPTURE_LOCK
from das_core.engine.estimator import Estimator, Timings
from das_core.engine.preprocess import ImageLike
from das_core.persons import Persons

__all__ = ["WarmStartEstimator"]

log = logging.getLogger(__name__)


class WarmStartEstimator:
    """``Estimator``'s call interface over two estimators: ``quick`` until ``build()``'s result is warm.

    Attributes:
        switched_after_s: seconds from construction to the switch, None before (or when it never happens).
        build_s / warm_s: how long ``build()`` and the warm-up frames took in the background thread.
        warm_frame_ms: each warm-up frame's time (the first compiles and captures; the others show how the
            backend settles).
        quick_frames: frames answered by the quick estimator.
        error: why the switch will not happen (the exception of the build or warm-up), else None.
    """

    def __init__(self, quick: Estimator, build: Callable[[], Estimator], name: str = "compile",
                 notify: Callable[[str, str], None] | None = None, build_after_idle_s: float = 10.0,
                 warm_frames: int = 1, release_compile_workers: bool = True) -> None:
        """``notify(level, message)`` ("info" or "warning") also gets the switch and failure messages, e.g. a ROS
        node's logger; they always go to this module's logger. ``build()`` runs after the first answered frame,
        or after ``build_after_idle_s`` seconds without one; the switch follows ``warm_frames`` warm-up runs
        on a copy of the first frame and, with ``release_compile_workers``, the end of Inductor's compile
        workers."""
        if warm_frames < 1:
            raise ValueError(f"warm_frames must be >= 1 (the first compiles and captures), got {warm_frames}")
        self.cfg = quick.cfg
        self._notify = notify
        self.name = name
        self._quick: Estimator | None = quick
        self._slow: Estimator | None = None
        self._build = build
        self._sample: tuple[list[ImageLike], list[Intrinsics]] | None = None
        self._have_sample = threading.Event()
        self._answered = threading.Event()
        self._build_after_idle_s = build_after_idle_s
        self._warm_frames = warm_frames
        self._release_compile_workers = release_compile_workers
        self.warm_frame_ms: list[float] = []
        self._switched = threading.Event()
        self._t0 = time.perf_counter()
        self.switched_after_s: float | None = None
        self.build_s: float | None = None
        self.warm_s: float | None = None
        self.quick_frames = 0
        self.error: str | None = None
        log.info("warm start: answering with %s %s while %s is built", quick.backend.name,
                 quick.backend.precision, name)
        self._thread = threading.Thread(target=self._prepare, name="das_warm_start", daemon=True)
        self._thread.start()

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: Any = "auto", backend: str = "compile",
                        precision: str = "fp16", input_scale: float = 1.0,
                        notify: Callable[[str, str], None] | None = None,
                        **backend_options: Any) -> WarmStartEstimator:
        """``eager`` fp32 at once, ``Estimator.from_checkpoint(path, …, backend, precision, …)`` once it is warm
        (each loads its own weights from ``path``, so neither backend's conversions reach the other)."""
        quick = Estimator.from_checkpoint(path, device=device, backend="eager", precision="fp32",
                                          input_scale=input_scale)
        return cls(quick, lambda: Estimator.from_checkpoint(path, device=device, backend=backend, precision=precision,
                                                            input_scale=input_scale, **backend_options),
                   name=f"{backend} {precision}", notify=notify)

    # -- the estimator interface ------------------------------------------------------------------

    @property
    def active(self) -> Estimator:
        """The estimator that answers the next frame."""
        if self._switched.is_set():
            assert self._slow is not None  # set before the event
            return self._slow
        quick = self._quick
        if quick is None:  # switched since the check above
            assert self._slow is not None
            return self._slow
        return quick

    @property
    def backend(self) -> Any:
        return self.active.backend

    @property
    def device(self) -> Any:
        return self.active.device

    @property
    def timings(self) -> Timings:
        return self.active.timings

    def __call__(self, image: ImageLike, intrinsics: Intrinsics) -> Persons:
        return self.batch([image], [intrinsics])[0]

    def batch(self, images: Sequence[ImageLike], intrinsics_list: Sequence[Intrinsics]) -> list[Persons]:
        """``Estimator.batch`` of whichever estimator is active (the first call also hands its frames to the
        background thread as the warm-up frames)."""
        if self._switched.is_set():
            return self.active.batch(images, intrinsics_list)
        if not self._have_sample.is_set():
            self._sample = ([_copy(im) for im in images], list(intrinsics_list))
            self._have_sample.set()
        with CAPTURE_LOCK:
            est = self.active
            persons = est.batch(images, intrinsics_list)
        if est is not self._slow:
            self.quick_frames += len(images)
        self._answered.set()
        return persons

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the switch happened or failed (or ``timeout`` s); True if the slow estimator answers now."""
        self._thread.join(timeout)
        return self._switched.is_set()

    # -- background -------------------------------------------------------------------------------

    def _prepare(self) -> None:
        self._answered.wait(self._build_after_idle_s)
        try:
            t = time.perf_counter()
            slow = self._build()
            self.build_s = time.perf_counter() - t
            self._have_sample.wait()
            assert self._sample is not None
            t = time.perf_counter()
            for _ in range(self._warm_frames):  # the first compiles this size and captures (under CAPTURE_LOCK)
                f = time.perf_counter()
                slow.batch(*self._sample)
                self.warm_frame_ms.append(round((time.perf_counter() - f) * 1e3, 3))
            self.warm_s = time.perf_counter() - t
            if self._release_compile_workers:
                _shutdown_compile_workers()
        except Exception as exc:  # noqa: BLE001 - whatever broke, the quick estimator keeps answering
            self.error = f"{type(exc).__name__}: {exc}"
            self._say("warning", f"warm start: {self.name} failed ({self.error}); "
                                 f"{self.active.backend.name} {self.active.backend.precision} keeps answering")
            return
        self._slow = slow
        self.switched_after_s = time.perf_counter() - self._t0
        self._switched.set()
        self._quick = None  # its weights and buffers go; nothing answers with it any more
        self._say("info", f"warm start: {self.name} answers from now on ({self.switched_after_s:.1f} s after start: "
                          f"built in {self.build_s:.1f} s, warmed in {self.warm_s:.1f} s; "
                          f"{self.quick_frames} frames answered before)")

    def _say(self, level: str, message: str) -> None:
        getattr(log, level)(message)
        if self._notify is not None:
            try:
                self._notify(level, message)
            except Exception:  # noqa: BLE001 - a broken logger callback must not hide the switch
                log.debug("warm start: notify failed", exc_info=True)


def _shutdown_compile_workers() -> None:
    """End Inductor's compile-worker subprocesses if Inductor was used (it restarts them when it compiles again)."""
    if "torch._inductor.async_compile" not in sys.modules:  # nothing compiled here: nothing to end
        return
    try:
        from torch._inductor.async_compile import shutdown_compile_workers

        shutdown_compile_workers()
    except Exception:  # noqa: BLE001 - a private API; failing to end idle workers must not stop the switch
        log.debug("warm start: could not shut the compile workers down", exc_info=True)


def _copy(image: ImageLike) -> ImageLike:
    """The caller may reuse its frame buffer: the warm-up keeps its own copy."""
    if isinstance(image, Tensor):
        return image.clone()
    return np.array(image, copy=True)
