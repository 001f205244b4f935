"""FramePipeline: a bad frame is counted and skipped, never raises, never yields NaN; good frames give messages."""

from __future__ import annotations

import math
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
from ros_helpers import SKELETON, FakeEstimator, camera_info, header, image_msg

from das_core.persons import Persons
from das_ros.conversions import rgb_to_compressed_fields
from das_ros.factory import namespace_factory
from das_ros.pipeline import BAD_FRAME_REASONS, FramePipeline, PipelineSettings, skeleton_of
from das_ros.tracker import CONFIRMED, TrackerSettings
from das_ros.worker import LatestFrameWorker

IMG = np.zeros((48, 64, 3), np.uint8)


def pipeline(est=None, **settings) -> FramePipeline:
    p = FramePipeline(est or FakeEstimator(), SKELETON, namespace_factory(), PipelineSettings(**settings))
    p.set_camera_info(camera_info(64, 48))
    return p


def test_good_frame_gives_poses_and_markers_with_the_image_header() -> None:
    est = FakeEstimator([(0.0, 0.2, 3.0), (1.0, 0.2, 4.0)])
    p = pipeline(est)
    h = header(sec=3, nanosec=4)
    r = p.process(image_msg(IMG, hdr=h))
    assert r.ok and r.poses.header is h and r.markers.markers[0].header is h
    assert len(r.poses.persons) == 2 and r.image_size == (64, 48)
    assert est.calls[0][1].fx == 60.0  # intrinsics from the cached CameraInfo
    assert p.counters["frames_ok"] == 1 and set(r.timings_ms) >= {"convert", "estimate", "total"}


def test_ids_are_stable_and_confirmed_across_frames() -> None:
    p = pipeline(FakeEstimator([(0.0, 0.2, 3.0), (1.0, 0.2, 4.0)]))
    for i in range(3):
        r = p.process(image_msg(IMG, hdr=header(sec=1, nanosec=i * 33_000_000)))
    assert [q.id for q in r.poses.persons] == [1, 2]
    assert all(q.tracking_state == CONFIRMED for q in r.poses.persons)


def test_compressed_input() -> None:
    msg = SimpleNamespace(header=header(), **rgb_to_compressed_fields(IMG, "png"))
    assert pipeline().process(msg, compressed=True).ok


class Raises:
    skeleton = SKELETON

    def __call__(self, rgb, k):
        raise RuntimeError("CUDA out of memory")


class Returns:
    skeleton = SKELETON

    def __init__(self, value):
        self.value = value

    def __call__(self, rgb, k):
        return self.value


@pytest.mark.parametrize("make_case, reason", [
    (lambda: (pipeline(), image_msg(IMG, encoding="32FC1")), "bad_image"),
    (lambda: (FramePipeline(FakeEstimator(), SKELETON, namespace_factory()), image_msg(IMG)), "no_camera_info"),
    (lambda: (pipeline(), image_msg(np.zeros((10, 64, 3), np.uint8))), "bad_camera_info"),  # aspect mismatch
    (lambda: (pipeline(Raises()), image_msg(IMG)), "estimator_error"),
    (lambda: (pipeline(Returns("nope")), image_msg(IMG)), "bad_estimator_output"),
    (lambda: (pipeline(Returns(Persons.empty(21))), image_msg(IMG)), "bad_estimator_output"),
])
def test_bad_frames_are_counted_by_reason_and_skipped(make_case, reason: str) -> None:
    p, msg = make_case()
    r = p.process(msg)
    assert not r.ok and r.reason == reason and r.poses is None and r.markers is None
    assert p.counters[reason] == 1 and p.counters["frames_bad"] == 1 and reason in BAD_FRAME_REASONS
    assert r.error and p.last_error.startswith(reason)


def test_wrong_joint_count_with_people_is_a_bad_output() -> None:
    bad = FakeEstimator()(IMG, camera_info_intrinsics())
    bad = Persons(scores=bad.scores, joints_3d=bad.joints_3d[:, :5], joints_2d=bad.joints_2d[:, :5],
                  joint_confidence=bad.joint_confidence[:, :5], track_ids=bad.track_ids)
    r = pipeline(Returns(bad)).process(image_msg(IMG))
    assert r.reason == "bad_estimator_output" and "15 joints" in r.error


def camera_info_intrinsics():
    from das_ros.conversions import intrinsics_from_camera_info

    return intrinsics_from_camera_info(camera_info(64, 48), 64, 48)


def test_uncalibrated_camera_then_fallback_fov() -> None:
    p = pipeline()
    p.set_camera_info(camera_info(64, 48, f=0.0))
    assert p.process(image_msg(IMG)).reason == "bad_camera_info"
    p2 = FramePipeline(FakeEstimator(), SKELETON, namespace_factory(), PipelineSettings(fallback_hfov_deg=90.0))
    assert p2.process(image_msg(IMG)).ok


def test_non_finite_estimates_never_reach_the_messages() -> None:
    good = FakeEstimator([(0.0, 0.2, 3.0), (1.0, 0.2, 4.0), (2.0, 0.2, 5.0)])(IMG, camera_info_intrinsics())
    good.scores[1] = np.nan  # whole person dropped
    good.joints_3d[2, SKELETON.root] = np.inf  # root non-finite: dropped
    good.joints_3d[0, 4] = np.nan  # one joint: invalid
    p = pipeline(Returns(good), tracking=True, tracker=PipelineSettings().tracker.__class__(smoothing=True))
    for i in range(3):  # smoothing filters must not be poisoned by the NaN joint
        r = p.process(image_msg(IMG, hdr=header(sec=1, nanosec=i * 10**7)))
    assert r.ok and len(r.poses.persons) == 1
    nums = [v for q in r.poses.persons for j in q.joints for v in (j.position.x, j.position.y, j.position.z, j.u, j.v)]
    assert all(math.isfinite(v) for v in nums)
    assert not r.poses.persons[0].joints[4].valid and r.poses.persons[0].joints[3].valid
    assert p.counters["persons_non_finite"] == 6 and p.counters["joints_non_finite"] == 3


def test_min_score_and_max_persons_filter_by_score() -> None:
    out = FakeEstimator([(0.0, 0.2, 3.0), (1.0, 0.2, 4.0), (2.0, 0.2, 5.0)])(IMG, camera_info_intrinsics())
    out.scores[:] = [0.05, 0.9, 0.5]
    r = pipeline(Returns(out), min_score=0.1, max_persons=1).process(image_msg(IMG))
    assert [round(q.score, 2) for q in r.poses.persons] == [0.9]


def test_markers_can_be_turned_off_and_tracking_disabled() -> None:
    r = pipeline(FakeEstimator([(0, 0.2, 3.0), (1, 0.2, 4.0)]), publish_markers=False, tracking=False).process(
        image_msg(IMG))
    assert r.markers is None and [q.id for q in r.poses.persons] == [0, 1]
    assert all(q.tracking_state == 0 for q in r.poses.persons)


def test_skeleton_of_reads_the_estimator() -> None:
    assert skeleton_of(FakeEstimator()) is SKELETON
    assert skeleton_of(SimpleNamespace(config=SimpleNamespace(skeleton="muco21"))).name == "muco21"
    assert skeleton_of(object()).name == "panoptic15"


def test_repeated_stamps_still_age_out_tracks() -> None:
    est = FakeEstimator([(0.0, 0.2, 3.0)])
    p = pipeline(est, tracker=PipelineSettings().tracker.__class__(max_age=0.1))
    assert [q.id for q in p.process(image_msg(IMG, hdr=header(0, 0))).poses.persons] == [1]
    est.roots = []
    for _ in range(5):  # a driver stamping every frame with 0: 5 frames ≈ 0.17 s > max_age
        p.process(image_msg(IMG, hdr=header(0, 0)))
    est.roots = [(0.0, 0.2, 3.0)]
    assert [q.id for q in p.process(image_msg(IMG, hdr=header(0, 0))).poses.persons] == [2]
    assert p.counters["stamps_repeated"] == 6


class SlowEstimator(FakeEstimator):
    """Records how many frames are inside it at once; ``gate`` (when set) holds each call until released."""

    def __init__(self, gate: threading.Event | None = None, seconds: float = 0.05) -> None:
        super().__init__()
        self.gate, self.seconds = gate, seconds
        self.inside = self.most_inside = 0
        self.entered = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, rgb: np.ndarray, intrinsics) -> Persons:
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.set()
        try:
            if self.gate is not None:
                assert self.gate.wait(10)
            else:
                time.sleep(self.seconds)
            return super().__call__(rgb, intrinsics)
        finally:
            with self._lock:
                self.inside -= 1


def test_two_workers_on_one_pipeline_never_run_two_frames_at_once() -> None:
    # What deactivate → activate did when the old worker's stop timed out: a second worker on the pipeline.
    est = SlowEstimator()
    p = pipeline(est)
    workers = [LatestFrameWorker(lambda m: p.process(m)) for _ in range(2)]
    for w in workers:
        w.start()
    for i in range(4):
        for w in workers:
            w.submit(image_msg(IMG, hdr=header(sec=1, nanosec=i * 10**7)))
        time.sleep(0.02)
    for w in workers:
        assert w.wait_idle(10)
        w.stop()
    assert est.most_inside == 1 and p.counters["frames_ok"] == sum(w.processed for w in workers) >= 2


def test_settings_changed_during_a_frame_apply_from_the_next_frame() -> None:
    gate = threading.Event()
    est = SlowEstimator(gate)
    p = pipeline(est, min_score=0.1)
    tracker_before = p.tracker
    results: list = []
    t = threading.Thread(target=lambda: results.append(p.process(image_msg(IMG))))
    t.start()
    assert est.entered.wait(10)
    # The parameter callback's thread, mid-frame: must neither wait for the frame nor change it.
    p.update_settings(PipelineSettings(min_score=0.95, tracker=TrackerSettings(max_age=2.0)))
    assert p.settings.min_score == 0.1 and p.tracker is tracker_before
    gate.set()
    t.join(10)
    assert results[0].ok and len(results[0].poses.persons) == 1  # the fake's score 0.9 passed the old 0.1
    r = p.process(image_msg(IMG))
    assert r.ok and len(r.poses.persons) == 0  # 0.9 < 0.95
    assert p.settings.min_score == 0.95 and p.tracker is not tracker_before


def test_covariance_reaches_messages_and_the_uncertainty_parameter_draws_root_ellipsoids() -> None:
    out = FakeEstimator([(0.0, 0.2, 3.0), (1.0, 0.2, 4.0)])(IMG, camera_info_intrinsics())
    cov = np.zeros((2, SKELETON.num_joints, 3, 3), np.float32)
    cov[:] = np.diag([1e-4, 4e-4, 0.09]).astype(np.float32)
    cov[1] *= 2
    out.joint_covariance = cov
    out.joints_3d[0, 4] = np.nan  # a non-finite joint: invalid, its covariance all zero
    settings = PipelineSettings.from_params({"markers.uncertainty": True, "tracking.enabled": True})
    p = FramePipeline(Returns(out), SKELETON, namespace_factory(), settings)
    p.set_camera_info(camera_info(64, 48))
    r = p.process(image_msg(IMG))
    assert r.ok and settings.markers.uncertainty and not PipelineSettings.from_params({}).markers.uncertainty
    got = {round(q.root.z, 3): q for q in r.poses.persons}
    np.testing.assert_allclose(got[3.0].root_covariance, cov[0, SKELETON.root].reshape(9))
    np.testing.assert_allclose(got[4.0].joints[0].position_covariance, cov[1, 0].reshape(9))
    assert list(got[3.0].joints[4].position_covariance) == [0.0] * 9
    ellipsoids = [m for m in r.markers.markers if getattr(m, "type", None) == 2]
    assert len(ellipsoids) == 2 and sorted(round(m.scale.z, 3) for m in ellipsoids) == [0.6, round(0.6 * 2**0.5, 3)]


def test_uncalibrated_camera_info_uses_the_fallback_field_of_view_when_set() -> None:
    from das_core.camera import Intrinsics

    est = FakeEstimator()
    p = pipeline(est, fallback_hfov_deg=70.0)
    p.set_camera_info(camera_info(64, 48, f=0.0))
    r = p.process(image_msg(IMG))
    assert r.ok and est.calls[-1][1].fx == pytest.approx(Intrinsics.from_fov(64, 48, 70.0).fx)
    assert p.counters["camera_info_uncalibrated_fallback"] == 1
    p.set_camera_info(camera_info(64, 48, f=0.0, k=[float("nan")] * 9))  # broken, not uncalibrated: refused
    assert p.process(image_msg(IMG)).reason == "bad_camera_info"
    off = pipeline(fallback_hfov_deg=0.0)
    off.set_camera_info(camera_info(64, 48, f=0.0))
    assert off.process(image_msg(IMG)).reason == "bad_camera_info"


def test_time_to_first_pose_is_measured_from_start_clock_and_only_once(caplog) -> None:
    class Slow(FakeEstimator):  # the first frame builds the backend (minutes for a cold compile): here 50 ms
        def __call__(self, rgb, k):
            if not self.calls:
                time.sleep(0.05)
            return super().__call__(rgb, k)

    p = pipeline(Slow())
    assert p.first_pose_s is None
    p.process(image_msg(IMG))
    assert p.first_pose_s is None  # not started: nothing to measure from
    p.start_clock()
    with caplog.at_level("INFO", logger="das_ros.pipeline"):
        assert p.process(image_msg(IMG)).ok
    first = p.first_pose_s
    assert first is not None and 0.0 <= first < 5.0
    assert any("first pose" in r.getMessage() for r in caplog.records)
    p.process(image_msg(IMG))
    assert p.first_pose_s == first  # later frames do not move it


def test_first_pose_includes_the_first_frames_build() -> None:
    class Slow(FakeEstimator):
        def __call__(self, rgb, k):
            if not self.calls:
                time.sleep(0.2)
            return super().__call__(rgb, k)

    p = pipeline(Slow())
    p.start_clock()
    p.process(image_msg(IMG))
    assert p.first_pose_s is not None and p.first_pose_s >= 0.2
