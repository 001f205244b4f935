"""``BatchingModel``: several cameras' workers share one estimator, and frames that wait for it together go
through it as one batch (``Estimator.batch``). No rclpy import.

Opportunistic batching: a frame that finds the model idle runs at once (one camera costs what it did before);
frames that arrive while the model is busy queue, and when it finishes, the next caller takes the whole queue as
one batch. One bounded wait keeps batches from falling apart under overload: the callers of a batch all get
their results at once, and the first to come back with its next frame would find the model idle and run alone,
the others queueing behind it, so that N cameras settle into N lone runs in turn (measured: 1.2 images per run
with 2 cameras, docs/ROS.md). So when the previous batch had several images, the caller about to run waits up
to ``gather_fraction`` of that batch's run time (at most ``gather_max_s``) for as many requests to queue; after a
lone run it never waits, so a single camera, and cameras that do not meet, run with no added latency.

A batch that raises (e.g. one camera's bad image) is re-run one image at a time, so that the error reaches only
the frame that caused it and the other cameras get their results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["BatchingModel"]


class _Request:
    __slots__ = ("done", "error", "image", "intrinsics", "result")

    def __init__(self, image: Any, intrinsics: Any) -> None:
        self.image, self.intrinsics = image, intrinsics
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None


class BatchingModel:
    """``model(image, intrinsics) -> Persons``, callable from several threads at once.

    ``estimator`` is ``est(image, intrinsics)``; when it also has ``batch(images, intrinsics_list)`` (the das_core
    ``Estimator``) queued frames run as one batch, else one after another. Counters: ``frames``, ``batches``,
    ``largest_batch`` (updated under the lock).
    """

    def __init__(self, estimator: Any, max_batch: int = 16, gather_fraction: float = 0.5,
                 gather_max_s: float = 0.02) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if gather_fraction < 0 or gather_max_s < 0:
            raise ValueError(f"gather_fraction and gather_max_s must be >= 0, got {gather_fraction}, {gather_max_s}")
        self.gather_fraction, self.gather_max_s = gather_fraction, gather_max_s
        self._last_size, self._last_run_s = 1, 0.0
        self.estimator = estimator
        self.max_batch = max_batch
        self._batch: Callable[[list[Any], list[Any]], list[Any]] | None = getattr(estimator, "batch", None)
        self._cond = threading.Condition()
        self._queue: list[_Request] = []
        self._running = False
        self._next: _Request | None = None  # the waiting request whose caller runs the next batch
        self.frames = 0
        self.batches = 0
        self.largest_batch = 0

    def __call__(self, image: Any, intrinsics: Any) -> Any:
        req = _Request(image, intrinsics)
        with self._cond:
            self._queue.append(req)
            self._cond.notify_all()  # a caller gathering a batch counts the arrivals
            # Wait while another caller runs the model; it may take this request into its batch.
            while self._running and not req.done and self._next is not req:
                self._cond.wait()
            if req.done:
                return self._answer(req)
            self._next = None
            self._running = True
            self._gather()
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
        t0 = time.monotonic()
        try:
            self._run(batch)
        finally:
            run_s = time.monotonic() - t0
            with self._cond:
                for r in batch:
                    if not r.done:  # only after a BaseException escaped _run
                        r.error, r.done = RuntimeError("the batch was interrupted"), True
                # Hand the model to the oldest waiting caller rather than to whoever calls first: the caller
                # that just got its result would otherwise start a lone run before the woken ones rejoin, and
                # one camera would get twice the frames of the other.
                self._next = self._queue[0] if self._queue else None
                self._running = self._next is not None
                self.frames += len(batch)
                self.batches += 1
                self.largest_batch = max(self.largest_batch, len(batch))
                self._last_size, self._last_run_s = len(batch), run_s
                self._cond.notify_all()
        return self._answer(req)

    def _gather(self) -> None:
        """With the lock held and the model reserved: wait (bounded) for the previous batch's callers to queue."""
        want = min(self._last_size, self.max_batch)
        if want <= len(self._queue):
            return
        deadline = time.monotonic() + min(self.gather_max_s, self.gather_fraction * self._last_run_s)
        while len(self._queue) < want:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._cond.wait(left)

    @staticmethod
    def _answer(req: _Request) -> Any:
        if req.error is not None:
            raise req.error
        return req.result

    def _run(self, batch: list[_Request]) -> None:
        if len(batch) > 1 and self._batch is not None:
            try:
                results = list(self._batch([r.image for r in batch], [r.intrinsics for r in batch]))
                if len(results) != len(batch):
                    raise ValueError(f"batch returned {len(results)} results for {len(batch)} images")
            except Exception:  # noqa: BLE001 - re-run one by one below, so the error reaches only its frame
                pass
            else:
                for r, res in zip(batch, results, strict=True):
                    r.result, r.done = res, True
                return
        for r in batch:
            try:
                r.result = self.estimator(r.image, r.intrinsics)
            except Exception as exc:  # noqa: BLE001 - handed to that frame's caller (the pipeline counts it)
                r.error = exc
            r.done = True
