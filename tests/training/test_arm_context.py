"""training/arm_context.py: freed arms tell a network that reads arms off the body from one that looks at them."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from das_core.data.synthetic import SceneConfig, make_scene
from das_core.persons import Persons
from das_core.skeletons import get_skeleton

NAMES = list(get_skeleton("panoptic15").joint_names)
BASE = SceneConfig(min_size=320, max_size=384)
FREED = replace(BASE, free_arms_prob=1.0)


class StandIn:
    """A stand-in network: each scene's own 2D joints, the arms optionally replaced by arms hanging straight down
    (what a network that places arms from the body alone would draw)."""

    def __init__(self, hang_arms: bool) -> None:
        self.hang_arms, self.scenes = hang_arms, {}
        self.cfg = SimpleNamespace(skeleton="panoptic15")
        for cfg in (BASE, FREED):
            for i in range(6):
                s = make_scene(3, "val", i, cfg)
                self.scenes[s.image.tobytes()] = s.joints_2d

    def __call__(self, image: np.ndarray, camera: object) -> Persons:
        j2 = self.scenes[image.tobytes()].copy()
        if self.hang_arms:
            for person in j2:
                torso = float(np.linalg.norm(person[NAMES.index("neck")] - person[NAMES.index("mid_hip")]))
                for side in "lr":
                    s, e, w = (NAMES.index(f"{side}_{j}") for j in ("shoulder", "elbow", "wrist"))
                    person[e] = person[s] + [0.0, 0.6 * torso]
                    person[w] = person[e] + [0.0, 0.5 * torso]
        n, k = j2.shape[:2]
        return Persons(np.ones(n, np.float32), np.ones((n, k, 3), np.float32), j2.astype(np.float32),
                       np.ones((n, k), np.float32), np.full(n, -1, np.int64))


def test_a_network_that_places_every_joint_right_has_no_bone_error_with_or_without_freed_arms(training_script) -> None:
    mod = training_script("arm_context")
    truth = StandIn(hang_arms=False)
    for cfg in (BASE, FREED):
        r = mod.measure(truth, cfg, 6, 3)
        assert r["matched"] == r["people"] > 0
        for bone, v in r["bones"].items():
            assert v["n"] > 0, bone
            assert v["median_angle_deg"] == pytest.approx(0.0, abs=1e-3)
            assert v["median_length_ratio"] == pytest.approx(1.0, abs=1e-6)


def test_arms_read_off_the_body_are_far_worse_once_freed_and_the_legs_are_untouched(training_script) -> None:
    mod = training_script("arm_context")
    hanging = StandIn(hang_arms=True)
    trained, freed = mod.measure(hanging, BASE, 6, 3), mod.measure(hanging, FREED, 6, 3)
    for r in (trained, freed):
        for bone in ("thigh", "shin", "torso"):
            assert r["bones"][bone]["median_angle_deg"] == pytest.approx(0.0, abs=1e-3)
    assert freed["bones"]["upper_arm"]["median_angle_deg"] > trained["bones"]["upper_arm"]["median_angle_deg"] + 10
    assert freed["bones"]["forearm"]["median_angle_deg"] > 20


def test_a_bone_seen_end_on_or_with_an_unlabelled_end_has_no_angle(training_script) -> None:
    mod = training_script("arm_context")
    true = np.zeros((15, 2))
    true[NAMES.index("l_shoulder")] = [100, 100]
    true[NAMES.index("l_elbow")] = [101, 101]  # 1.4 px: seen end on
    true[NAMES.index("r_shoulder")] = [50, 100]
    true[NAMES.index("r_elbow")] = [50, 140]
    labelled = np.zeros(15, bool)
    labelled[[NAMES.index(n) for n in ("l_shoulder", "l_elbow", "r_shoulder", "r_elbow")]] = True
    pred = true.copy()
    pred[NAMES.index("r_elbow")] = [90, 100]  # 90° off, the same length
    errs = mod.bone_errors(pred, true, labelled, NAMES)
    assert errs["upper_arm"] == [pytest.approx((90.0, 1.0))]
    assert errs["forearm"] == [] and errs["thigh"] == []
