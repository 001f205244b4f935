"""Tracker: stable ids, 3D gating, Hungarian assignment, states, ageing, One-Euro smoothing."""

from __future__ import annotations

import numpy as np
from ros_helpers import SKELETON, template_pose

from das_core.persons import Persons
from das_ros.tracker import CONFIRMED, TENTATIVE, OneEuroFilter, Tracker, TrackerSettings

ROOT = SKELETON.root


def people(roots: list[tuple[float, float, float]]) -> Persons:
    n = len(roots)
    k = SKELETON.num_joints
    j3 = np.stack([template_pose(r) for r in roots]).astype(np.float32) if n else np.zeros((0, k, 3), np.float32)
    return Persons(scores=np.ones(n, np.float32), joints_3d=j3, joints_2d=np.zeros((n, k, 2), np.float32),
                   joint_confidence=np.ones((n, k), np.float32), track_ids=np.full(n, -1))


def test_ids_stay_with_people_when_the_detection_order_changes() -> None:
    tr = Tracker(TrackerSettings(max_distance=0.5, min_hits=2))
    a, b = (0.0, 0.0, 3.0), (1.0, 0.0, 5.0)
    p1, s1 = tr.update(people([a, b]), 0.0, ROOT)
    p2, s2 = tr.update(people([(1.05, 0.0, 5.0), (0.05, 0.0, 3.0)]), 0.1, ROOT)
    assert list(p1.track_ids) == [1, 2] and list(p2.track_ids) == [2, 1]
    assert list(s1) == [TENTATIVE, TENTATIVE] and list(s2) == [CONFIRMED, CONFIRMED]


def test_gating_on_3d_root_distance_separates_people_overlapping_in_the_image() -> None:
    tr = Tracker(TrackerSettings(max_distance=0.5))
    tr.update(people([(0.0, 0.0, 3.0)]), 0.0, ROOT)
    # Same image position but 2 m deeper: a different person, not a jump of the first one.
    p, s = tr.update(people([(0.0, 0.0, 5.0)]), 0.1, ROOT)
    assert list(p.track_ids) == [2] and list(s) == [TENTATIVE]


def test_hungarian_prefers_the_globally_best_assignment() -> None:
    tr = Tracker(TrackerSettings(max_distance=1.0))
    tr.update(people([(0.0, 0.0, 3.0), (0.6, 0.0, 3.0)]), 0.0, ROOT)
    # Greedy would give detection 0.5 to track 2 (0.1 m) and leave 0.0→? Hungarian: 1↔-0.2, 2↔0.5.
    p, _ = tr.update(people([(0.5, 0.0, 3.0), (-0.2, 0.0, 3.0)]), 0.1, ROOT)
    assert list(p.track_ids) == [2, 1]


def test_tracks_expire_after_max_age_and_ids_are_not_reused() -> None:
    tr = Tracker(TrackerSettings(max_age=0.3))
    tr.update(people([(0.0, 0.0, 3.0)]), 0.0, ROOT)
    p, _ = tr.update(people([]), 0.2, ROOT)
    assert len(p) == 0 and tr.num_tracks == 1
    p, _ = tr.update(people([(0.0, 0.0, 3.0)]), 0.6, ROOT)
    assert list(p.track_ids) == [2]


def test_time_going_backwards_resets_the_tracks() -> None:
    tr = Tracker()
    tr.update(people([(0.0, 0.0, 3.0)]), 10.0, ROOT)
    p, s = tr.update(people([(0.0, 0.0, 3.0)]), 1.0, ROOT)
    assert list(p.track_ids) == [2] and list(s) == [TENTATIVE]


def test_constant_velocity_prediction_keeps_a_walking_person() -> None:
    tr = Tracker(TrackerSettings(max_distance=0.1))
    # Steps of 0.16 m exceed the 0.1 m gate; only the constant-velocity prediction keeps the id.
    xs = [0.0, 0.08, 0.24, 0.40, 0.56, 0.72]
    ids = [int(tr.update(people([(x, 0.0, 4.0)]), 0.1 * i, ROOT)[0].track_ids[0]) for i, x in enumerate(xs)]
    assert ids == [1] * len(xs)


def test_one_euro_filter_smooths_jitter_and_follows_steps() -> None:
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    noisy = 1.0 + 0.05 * rng.standard_normal(60)
    out = np.array([f(np.array([x]), 0.033 * i)[0] for i, x in enumerate(noisy)])
    assert np.std(out[20:]) < 0.5 * np.std(noisy[20:])
    f = OneEuroFilter(min_cutoff=1.0, beta=50.0, d_cutoff=1.0)
    vals = [f(np.array([0.0 if i < 10 else 1.0]), 0.033 * i)[0] for i in range(20)]
    assert vals[-1] > 0.9  # a high beta follows a step quickly


def test_smoothing_changes_joints_but_not_ids() -> None:
    tr = Tracker(TrackerSettings(smoothing=True, min_cutoff=0.5, beta=0.0))
    tr.update(people([(0.0, 0.0, 3.0)]), 0.0, ROOT)
    p, _ = tr.update(people([(0.1, 0.0, 3.0)]), 0.033, ROOT)
    x = float(p.joints_3d[0, ROOT, 0])
    assert 0.0 < x < 0.1 and list(p.track_ids) == [1]
