"""``CAPTURE_LOCK``: CUDA-graph captures and the frames that must not overlap them take turns.

A capture in torch's default ``global`` error mode fails when any thread of the process makes a CUDA call that
is not allowed while a stream captures (an allocation, a synchronisation). The warm start
(:mod:`das_core.engine.warm_start`) answers frames with one estimator while another is built and warmed in a
background thread, so both hold this lock: a capture for its warm-up runs and the capture itself, an answered
frame for its call. The lock is process-wide because CUDA's capture state is; held by one thread only (every
other use) it costs a few hundred nanoseconds.
"""

from __future__ import annotations

import threading

__all__ = ["CAPTURE_LOCK"]

CAPTURE_LOCK = threading.RLock()
