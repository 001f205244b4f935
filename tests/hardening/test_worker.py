"""das_ros.worker.LatestFrameWorker: the node's keep-last-1 slot + one worker thread."""

from __future__ import annotations

import threading

import pytest

from das_ros.worker import LatestFrameWorker


def test_frames_arriving_while_busy_replace_each_other_and_are_counted_as_dropped() -> None:
    started, release = threading.Event(), threading.Event()
    seen: list[int] = []

    def process(i: int) -> None:
        seen.append(i)
        if i == 0:
            started.set()
            assert release.wait(10)

    w: LatestFrameWorker[int] = LatestFrameWorker(process)
    w.start()
    w.submit(0)
    assert started.wait(10)
    assert [w.submit(i) for i in (1, 2, 3)] == [False, True, True]  # 1 and 2 were replaced
    release.set()
    assert w.wait_idle(10)
    w.stop()
    assert seen == [0, 3]
    assert (w.submitted, w.processed, w.dropped, w.errors) == (4, 2, 2, 0)


def test_an_exception_is_counted_and_the_worker_keeps_going() -> None:
    seen: list[int] = []

    def process(i: int) -> None:
        if i == 0:
            raise RuntimeError("bad frame")
        seen.append(i)

    w: LatestFrameWorker[int] = LatestFrameWorker(process)
    w.start()
    w.submit(0)
    assert w.wait_idle(10)
    w.submit(1)
    assert w.wait_idle(10)
    w.stop()
    assert seen == [1] and w.errors == 1 and w.processed == 2 and not w.running


def test_stop_drops_the_waiting_frame_and_start_again_works() -> None:
    gate = threading.Event()
    started = threading.Event()
    seen: list[int] = []

    def process(i: int) -> None:
        started.set()
        gate.wait(10)
        seen.append(i)

    w: LatestFrameWorker[int] = LatestFrameWorker(process)
    w.start()
    w.submit(0)
    assert started.wait(10)
    w.submit(1)  # waits in the slot
    stopper = threading.Thread(target=w.stop)
    stopper.start()  # drops frame 1 at once, then waits for frame 0 to finish
    for _ in range(10_000):
        if w.dropped:
            break
        threading.Event().wait(0.001)
    gate.set()
    stopper.join(10)
    assert seen == [0] and w.dropped == 1
    w.start()
    w.submit(2)
    assert w.wait_idle(10)
    w.stop()
    assert seen == [0, 2]


def test_a_stop_that_times_out_keeps_the_thread_and_start_waits_for_it() -> None:
    release = threading.Event()
    started = threading.Event()
    lock = threading.Lock()
    inside = [0, 0]  # now, most ever
    seen: list[int] = []

    def process(i: int) -> None:
        with lock:
            inside[0] += 1
            inside[1] = max(inside[1], inside[0])
        started.set()
        release.wait(10)
        seen.append(i)
        with lock:
            inside[0] -= 1

    w: LatestFrameWorker[int] = LatestFrameWorker(process)
    w.start()
    w.submit(0)
    assert started.wait(10)
    assert w.stop(timeout=0.05) is False  # frame 0 still running
    assert w.running  # the worker has not forgotten its thread
    with pytest.raises(RuntimeError, match="still processing"):
        w.start(timeout=0.05)
    w.submit(1)  # arrives while the old thread finishes frame 0: the new thread takes it
    threading.Timer(0.1, release.set).start()
    w.start()  # waits for the old thread to end, then starts one new thread
    assert w.wait_idle(10)
    assert w.stop() is True and not w.running
    assert seen == [0, 1] and inside[1] == 1
