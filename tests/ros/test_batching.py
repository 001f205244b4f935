"""``das_ros.batching.BatchingModel``: one model for several cameras' threads (no ROS needed)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from das_ros.batching import BatchingModel


class Model:
    """``model(image, k) -> ("one", image)``; ``batch`` -> ``("batch", image)`` each. The first single call blocks
    until ``release`` is set, so that other callers queue behind it. Images named "bad*" raise."""

    def __init__(self, with_batch: bool = True, batch_raises: bool = False) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.calls: list[tuple[str, list[Any]]] = []
        self.batch_raises = batch_raises
        if not with_batch:
            self.batch = None  # type: ignore[assignment]

    def __call__(self, image: Any, k: Any) -> Any:
        self.calls.append(("one", [image]))
        if len(self.calls) == 1:
            self.entered.set()
            assert self.release.wait(5.0)
        if str(image).startswith("bad"):
            raise ValueError(f"bad image {image}")
        return ("one", image, k)

    def batch(self, images: list[Any], ks: list[Any]) -> list[Any]:
        self.calls.append(("batch", list(images)))
        if self.batch_raises:
            raise ValueError("one image of the batch is bad")
        return [("batch", i, k) for i, k in zip(images, ks, strict=True)]


def call_in_threads(model: BatchingModel, items: list[tuple[Any, Any]], inner: Model) -> dict[Any, Any]:
    """First item alone (it blocks inside the model), then the rest while it is busy; then release."""
    out: dict[Any, Any] = {}

    def run(image: Any, k: Any) -> None:
        try:
            out[image] = model(image, k)
        except Exception as exc:  # noqa: BLE001 - the test checks it
            out[image] = exc

    threads = [threading.Thread(target=run, args=items[0])]
    threads[0].start()
    assert inner.entered.wait(5.0)
    for item in items[1:]:
        threads.append(threading.Thread(target=run, args=item))
        threads[-1].start()
    end = time.monotonic() + 5.0
    while len(model._queue) < len(items) - 1 and time.monotonic() < end:  # all queued behind the first
        time.sleep(0.005)
    inner.release.set()
    for t in threads:
        t.join(5.0)
    return out


def test_a_lone_frame_runs_at_once_as_a_single_call() -> None:
    inner = Model()
    inner.release.set()
    model = BatchingModel(inner)
    assert model("a", 1) == ("one", "a", 1)
    assert inner.calls == [("one", ["a"])] and (model.batches, model.largest_batch) == (1, 1)


def test_frames_that_wait_for_the_busy_model_run_as_one_batch_and_each_caller_gets_its_own_result() -> None:
    inner = Model()
    model = BatchingModel(inner)
    out = call_in_threads(model, [("a", 1), ("b", 2), ("c", 3)], inner)
    assert out == {"a": ("one", "a", 1), "b": ("batch", "b", 2), "c": ("batch", "c", 3)}
    assert inner.calls[0] == ("one", ["a"]) and inner.calls[1][0] == "batch"
    assert sorted(inner.calls[1][1]) == ["b", "c"] and len(inner.calls) == 2
    assert (model.frames, model.batches, model.largest_batch) == (3, 2, 2)


def test_a_failing_batch_is_rerun_one_by_one_so_only_the_bad_frame_gets_the_error() -> None:
    inner = Model(batch_raises=True)
    model = BatchingModel(inner)
    out = call_in_threads(model, [("a", 1), ("b", 2), ("bad", 3)], inner)
    assert out["a"] == ("one", "a", 1) and out["b"] == ("one", "b", 2)
    assert isinstance(out["bad"], ValueError) and "bad image bad" in str(out["bad"])


def test_an_estimator_without_batch_runs_queued_frames_one_after_another() -> None:
    inner = Model(with_batch=False)
    model = BatchingModel(inner)
    out = call_in_threads(model, [("a", 1), ("b", 2), ("c", 3)], inner)
    assert out == {"a": ("one", "a", 1), "b": ("one", "b", 2), "c": ("one", "c", 3)}
    assert [kind for kind, _ in inner.calls] == ["one"] * 3


def test_max_batch_caps_the_batch_size() -> None:
    inner = Model()
    model = BatchingModel(inner, max_batch=2)
    out = call_in_threads(model, [("a", 1), ("b", 2), ("c", 3), ("d", 4)], inner)
    assert set(out) == {"a", "b", "c", "d"} and not any(isinstance(v, Exception) for v in out.values())
    assert all(len(images) <= 2 for _, images in inner.calls) and model.largest_batch == 2
    with pytest.raises(ValueError, match="max_batch"):
        BatchingModel(inner, max_batch=0)


def test_two_cameras_calling_back_to_back_get_about_the_same_number_of_frames() -> None:
    class Slow:
        def __call__(self, image: Any, k: Any) -> Any:
            time.sleep(0.004)
            return image

        def batch(self, images: list[Any], ks: list[Any]) -> list[Any]:
            time.sleep(0.004 * len(images))  # a CPU: a batch costs what its single calls cost
            return list(images)

    model = BatchingModel(Slow(), max_batch=2)
    counts = [0, 0]
    stop = threading.Event()

    def run(i: int) -> None:
        while not stop.is_set():
            assert model(i, None) == i
            counts[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.8)
    stop.set()
    for t in threads:
        t.join(5.0)
    # Without the hand-over to the waiting caller this is about 2:1 (the caller that just got its result
    # starts a lone run before the other rejoins).
    assert min(counts) >= 0.75 * max(counts), counts


class GpuLike:
    """A batch costs what one image costs (a GPU below its throughput limit)."""

    def __init__(self, run_s: float) -> None:
        self.run_s = run_s

    def __call__(self, image: Any, k: Any) -> Any:
        time.sleep(self.run_s)
        return image

    def batch(self, images: list[Any], ks: list[Any]) -> list[Any]:
        time.sleep(self.run_s)
        return list(images)


def _back_to_back(model: BatchingModel, cameras: int, seconds: float, pause_s: float = 0.001) -> list[int]:
    """Each camera calls again ``pause_s`` after its result (the node publishes first), for ``seconds``."""
    counts = [0] * cameras
    stop = threading.Event()

    def run(i: int) -> None:
        while not stop.is_set():
            assert model(i, None) == i
            counts[i] += 1
            time.sleep(pause_s)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(cameras)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(5.0)
    return counts


def test_overloaded_cameras_keep_meeting_in_batches_instead_of_taking_turns_alone() -> None:
    model = BatchingModel(GpuLike(0.02), max_batch=4)
    counts = _back_to_back(model, 4, 1.0)
    # Without the bounded gather this settles near 1.3 images per run (the first caller back runs alone).
    assert model.frames / model.batches >= 3.0, (model.frames, model.batches)
    assert min(counts) >= 0.8 * max(counts), counts


def test_a_lone_camera_never_waits_for_peers() -> None:
    model = BatchingModel(GpuLike(0.01), max_batch=4, gather_max_s=1.0, gather_fraction=100.0)
    t0 = time.monotonic()
    for i in range(10):
        assert model(i, None) == i
    # ten 10 ms runs; a gather would add up to 1 s each
    assert time.monotonic() - t0 < 0.5 and model.batches == 10
