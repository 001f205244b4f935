"""``LatestFrameWorker``: a keep-last-1 slot and one worker thread (no rclpy import).

The node's threading, as a pure module so that it can be soak-tested without ROS
(``benchmarks/soak.py``): callbacks ``submit`` frames at the camera rate; one thread processes the newest
one. A frame that arrives while another is still waiting replaces it and is counted in ``dropped``, so the
output never lags behind the camera by more than one frame plus one processing period (Azure Kinect
driver issue #109 is the classic example of a queue that does). An exception in ``process`` is counted
and logged, never kills the thread. A worker never has two threads in ``process``: a ``stop`` that times out
keeps the thread until it really ends, and ``start`` waits for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["LatestFrameWorker"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class LatestFrameWorker(Generic[T]):
    """One slot (the newest item) and one thread that calls ``process(item)`` for each item it takes.

    Counters (read them any time; ints are updated under the lock): ``submitted``, ``processed``,
    ``dropped`` (replaced in the slot before the worker took them, or discarded by ``stop``), ``errors``.
    """

    def __init__(self, process: Callable[[T], object], name: str = "das_worker") -> None:
        self._process = process
        self._name = name
        self._cond = threading.Condition()
        self._slot: tuple[T] | None = None  # a 1-tuple, so that None can be a valid item
        self._stop = True
        self._busy = False
        self._thread: threading.Thread | None = None
        self._life = threading.Lock()  # start/stop, so that two concurrent starts cannot make two threads
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self.errors = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float | None = 10.0) -> None:
        """Start the worker thread (no-op when it runs).

        After a ``stop`` whose join timed out, the old thread may still be inside ``process``: this waits up
        to ``timeout`` s for it to end, and raises ``RuntimeError`` if it has not, so that two threads never
        run ``process`` at once (the pipeline behind it is not thread-safe).
        """
        with self._life:
            with self._cond:
                old = self._thread
                if old is not None and old.is_alive() and not self._stop:
                    return
            if old is not None and old.is_alive():
                old.join(timeout=timeout)
                if old.is_alive():
                    raise RuntimeError(f"{self._name}: the previous worker thread is still processing a frame "
                                       f"after {timeout} s; not starting a second one")
            with self._cond:
                self._stop = False
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()

    def submit(self, item: T) -> bool:
        """Put ``item`` in the slot; returns True when it replaced (dropped) a waiting one. Never blocks long."""
        with self._cond:
            self.submitted += 1
            replaced = self._slot is not None
            if replaced:
                self.dropped += 1
            self._slot = (item,)
            self._cond.notify()
        return replaced

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._slot is not None or self._stop)
                if self._stop:
                    return
                assert self._slot is not None
                (item,) = self._slot
                self._slot = None
                self._busy = True
            try:
                self._process(item)
            except Exception:  # noqa: BLE001 - one bad frame must not stop the stream; it is counted
                log.exception("frame processing failed")
                with self._cond:
                    self.errors += 1
            finally:
                with self._cond:
                    self.processed += 1
                    self._busy = False
                    self._cond.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until the slot is empty and nothing is being processed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._slot is None and not self._busy, timeout=timeout)

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the thread after the frame in progress; a frame still waiting in the slot is dropped.

        Returns True when the thread has ended. False when the join timed out (a frame is still being
        processed): the worker keeps the thread, ``running`` stays True until it ends, and ``start`` waits
        for it instead of starting a second one.
        """
        with self._life:
            with self._cond:
                self._stop = True
                if self._slot is not None:
                    self.dropped += 1
                    self._slot = None
                self._cond.notify_all()
                thread = self._thread
            if thread is None:
                return True
            if thread is not threading.current_thread():
                thread.join(timeout=timeout)
            if thread.is_alive():
                log.warning("%s: the frame in progress did not finish within %.1f s; the thread ends after it",
                            self._name, timeout)
                return False
            with self._cond:
                self._thread = None
            return True
