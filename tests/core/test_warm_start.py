"""WarmStartEstimator: the quick estimator answers from the first frame while the slow one is built; the slow one
is warmed on a copy of the first real frame and answers every frame after the switch; a failed build leaves the
quick one answering; answered frames and CUDA-graph captures never overlap."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from das_core.camera import Intrinsics
from das_core.checkpoint import save_checkpoint
from das_core.config import ModelConfig, config_from_dict
from das_core.engine.capture_lock import CAPTURE_LOCK
from das_core.engine.estimator import Estimator
from das_core.engine.warm_start import WarmStartEstimator
from das_core.model.das import DAS
from das_core.persons import Persons

ROOT = Path(__file__).resolve().parents[2]
PLAIN = {**yaml.safe_load((ROOT / "config/model/das_tiny.yaml").read_text())}
PLAIN["head"] = {**PLAIN["head"], "use_dcn": False}
PLAIN["update"] = {"mode": "none"}
CAMERA = Intrinsics(60.0, 60.0, 47.5, 31.5)


def frame(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(64, 96, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    cfg = config_from_dict(ModelConfig, PLAIN)
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(path, DAS.from_config(cfg).eval().state_dict(), cfg)
    return path


class Slow:
    """Stands in for the compiled estimator: records the frames it was warmed with and what it answered."""

    def __init__(self, real: Estimator) -> None:
        self.real, self.cfg, self.backend, self.device = real, real.cfg, real.backend, real.device
        self.timings = real.timings
        self.calls: list[list[np.ndarray]] = []

    def batch(self, images, intrinsics):
        self.calls.append([np.array(im) for im in images])
        return self.real.batch(images, intrinsics)


def test_the_quick_estimator_answers_until_the_slow_one_is_warm_then_the_slow_one_answers(checkpoint) -> None:
    quick = Estimator.from_checkpoint(checkpoint, device="cpu")
    slow = Slow(Estimator.from_checkpoint(checkpoint, device="cpu"))
    release = threading.Event()

    def build() -> Slow:
        release.wait(30)
        return slow

    said: list[tuple[str, str]] = []
    est = WarmStartEstimator(quick, build, name="slow", warm_frames=3,  # type: ignore[arg-type]
                             notify=lambda level, msg: said.append((level, msg)))
    first = frame(0)
    want = Estimator.from_checkpoint(checkpoint, device="cpu")(first, CAMERA)
    got = est(first, CAMERA)  # answered at once, while build() is still blocked
    assert est.active is quick and est.quick_frames == 1 and est.switched_after_s is None
    np.testing.assert_allclose(got.joints_3d, want.joints_3d, rtol=1e-5, atol=1e-5)
    first[:] = 0  # the caller reuses its buffer: the warm-up has its own copy
    est(frame(1), CAMERA)
    assert est.quick_frames == 2 and not slow.calls

    release.set()
    assert est.wait(30)
    # warmed warm_frames times on the first real frame, not on a zeroed one
    assert len(slow.calls) == 3 and all(np.array_equal(c[0], frame(0)) for c in slow.calls)
    assert len(est.warm_frame_ms) == 3 and all(ms > 0 for ms in est.warm_frame_ms)
    assert est.active is slow and est.switched_after_s is not None and est.build_s is not None
    assert len(said) == 1 and said[0][0] == "info" and "slow answers from now on" in said[0][1]
    assert "2 frames answered before" in said[0][1]
    est(frame(2), CAMERA)
    assert len(slow.calls) == 4 and est.quick_frames == 2  # after the switch every frame goes to the slow one
    assert est._quick is None  # the quick one's weights are let go


def test_a_failed_build_leaves_the_quick_estimator_answering_and_says_why(checkpoint) -> None:
    quick = Estimator.from_checkpoint(checkpoint, device="cpu")
    said: list[tuple[str, str]] = []

    def build() -> Estimator:
        raise RuntimeError("no compiler here")

    est = WarmStartEstimator(quick, build, notify=lambda level, msg: said.append((level, msg)),
                             build_after_idle_s=0.0)
    assert not est.wait(30)
    assert est.error == "RuntimeError: no compiler here"
    assert said == [("warning", "warm start: compile failed (RuntimeError: no compiler here); eager fp32 keeps "
                                "answering")]
    persons = est(frame(0), CAMERA)
    assert est.active is quick and est.quick_frames == 1 and isinstance(persons, Persons)


def test_the_build_waits_for_the_first_answered_frame_so_the_first_pose_has_the_cpu_to_itself(checkpoint) -> None:
    quick = Estimator.from_checkpoint(checkpoint, device="cpu")
    frames_when_built: list[int] = []
    est: WarmStartEstimator

    def build() -> Estimator:
        frames_when_built.append(est.quick_frames)
        return Estimator.from_checkpoint(checkpoint, device="cpu")

    est = WarmStartEstimator(quick, build, build_after_idle_s=30.0)
    assert not est._thread.join(0.3) and frames_when_built == []  # no frame yet: nothing is built
    est(frame(0), CAMERA)
    assert est.wait(30) and frames_when_built == [1]  # built after the first pose was answered


def test_a_process_that_gets_no_frame_builds_after_the_idle_delay(checkpoint) -> None:
    quick = Estimator.from_checkpoint(checkpoint, device="cpu")
    built = threading.Event()

    def build() -> Estimator:
        built.set()
        return Estimator.from_checkpoint(checkpoint, device="cpu")

    WarmStartEstimator(quick, build, build_after_idle_s=0.2)
    assert built.wait(30)  # no frame came, the build started anyway


def test_a_failed_warm_up_frame_also_leaves_the_quick_estimator(checkpoint) -> None:
    quick = Estimator.from_checkpoint(checkpoint, device="cpu")

    class Broken(Slow):
        def batch(self, images, intrinsics):
            raise ValueError("capture failed")

    est = WarmStartEstimator(quick, lambda: Broken(quick))  # type: ignore[arg-type,return-value]
    est(frame(0), CAMERA)
    assert not est.wait(30) and est.error == "ValueError: capture failed" and est.active is quick


def test_answered_frames_hold_the_capture_lock_so_no_capture_can_start_meanwhile(checkpoint) -> None:
    seen: list[bool] = []
    quick = Estimator.from_checkpoint(checkpoint, device="cpu")
    real_batch = quick.batch

    def try_lock(probe: list[bool]) -> None:
        got = CAPTURE_LOCK.acquire(blocking=False)
        if got:
            CAPTURE_LOCK.release()
        probe.append(got)

    def batch(images, intrinsics):
        probe: list[bool] = []
        t = threading.Thread(target=try_lock, args=(probe,))
        t.start()
        t.join()
        seen.append(probe[0])
        return real_batch(images, intrinsics)

    quick.batch = batch  # type: ignore[method-assign]

    def never_built() -> Estimator:
        raise RuntimeError("not in this test")

    est = WarmStartEstimator(quick, never_built, build_after_idle_s=0.0)
    est(frame(0), CAMERA)
    assert seen == [False]  # another thread (a capture) could not take the lock during the frame
    est.wait(30)
    probe: list[bool] = []
    try_lock(probe)
    assert probe == [True]  # and it is free again after the frame


def test_from_checkpoint_builds_eager_fp32_at_once_and_the_requested_backend_behind_it(checkpoint) -> None:
    est = WarmStartEstimator.from_checkpoint(checkpoint, device="cpu", backend="eager", precision="bf16")
    assert est.active.backend.name == "eager" and est.active.backend.precision == "fp32"
    est(frame(0), CAMERA)
    assert est.wait(60) and est.error is None
    assert est.active.backend.precision == "bf16" and est.name == "eager bf16"


def test_the_nodes_loader_warm_starts_only_the_backends_that_build(checkpoint, monkeypatch) -> None:
    from das_ros.pipeline import load_estimator

    asked: list[dict] = []

    def fake(path, **kwargs):
        asked.append({"path": str(path), **kwargs})
        return "warm-start estimator"

    monkeypatch.setattr(WarmStartEstimator, "from_checkpoint", staticmethod(fake))
    def say(level: str, message: str) -> None:
        pass

    assert load_estimator(str(checkpoint), "cpu", "compile", "fp32", input_scale=0.5, warm_start=True,
                          notify=say) == "warm-start estimator"
    assert asked == [{"path": str(checkpoint), "device": "cpu", "backend": "compile", "precision": "fp32",
                      "input_scale": 0.5, "notify": say}]
    assert isinstance(load_estimator(str(checkpoint), "cpu", "eager", "fp32", warm_start=True), Estimator)
    assert isinstance(load_estimator(str(checkpoint), "cpu", "eager", "fp32"), Estimator) and len(asked) == 1


@pytest.mark.parametrize("release", [True, False])
def test_inductors_compile_workers_are_ended_after_the_warm_up_and_before_the_switch(checkpoint, monkeypatch,
                                                                                    release) -> None:
    import torch._inductor.async_compile as async_compile

    quick = Estimator.from_checkpoint(checkpoint, device="cpu")
    slow = Slow(Estimator.from_checkpoint(checkpoint, device="cpu"))
    seen: list[tuple[int, bool]] = []  # (warm-up frames run, switched) when the workers were ended
    est: WarmStartEstimator | None = None

    def shutdown() -> None:
        assert est is not None
        seen.append((len(slow.calls), est._switched.is_set()))

    monkeypatch.setattr(async_compile, "shutdown_compile_workers", shutdown)
    est = WarmStartEstimator(quick, lambda: slow, warm_frames=2,  # type: ignore[arg-type, return-value]
                             release_compile_workers=release)
    est(frame(0), CAMERA)
    assert est.wait(30) and len(slow.calls) == 2
    assert seen == ([(2, False)] if release else [])


def test_warm_frames_below_one_is_an_error_naming_it(checkpoint) -> None:
    with pytest.raises(ValueError, match="warm_frames"):
        WarmStartEstimator(Estimator.from_checkpoint(checkpoint, device="cpu"), lambda: None,  # type: ignore[arg-type, return-value]
                           warm_frames=0)
