"""training/waistline_sensitivity.py: its paired change is the hips' shift between the two renderings."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from das_core.data.synthetic import SceneConfig, make_scene
from das_core.persons import Persons
from das_core.skeletons import get_skeleton

SK = get_skeleton("panoptic15")


class ShiftedTruth:
    """A stand-in network: the scene's own 2D joints, with both hips raised by ``hip_up`` box heights."""

    def __init__(self, scenes: dict[bytes, np.ndarray], hip_up: float) -> None:
        self.scenes, self.hip_up = scenes, hip_up
        self.cfg = SimpleNamespace(skeleton="panoptic15")

    def __call__(self, image: np.ndarray, camera: object) -> Persons:
        j2 = self.scenes[image.tobytes()].copy()
        names = list(SK.joint_names)
        for i in range(len(j2)):
            height = np.nanmax(j2[i, :, 1]) - np.nanmin(j2[i, :, 1])
            for name in ("l_hip", "r_hip"):
                j2[i, names.index(name), 1] -= self.hip_up * height
        n, k = j2.shape[:2]
        return Persons(np.ones(n, np.float32), np.ones((n, k, 3), np.float32), j2.astype(np.float32),
                       np.ones((n, k), np.float32), np.full(n, -1, np.int64))


def test_the_paired_change_is_the_hip_shift_between_the_renderings_and_nothing_else(training_script) -> None:
    mod = training_script("waistline_sensitivity")
    base = SceneConfig(min_size=320, max_size=384)
    waist = replace(base, waistline_prob=1.0)
    scenes = {}
    for cfg in (base, waist):
        for i in range(3):
            s = make_scene(7, "val", i, cfg)
            scenes[s.image.tobytes()] = s.joints_2d
    plain = mod.offsets(ShiftedTruth(scenes, 0.0), base, 3, 7)
    raised = mod.offsets(ShiftedTruth(scenes, 0.02), waist, 3, 7)
    assert plain["matched"] > 0 and plain["matched"] == raised["matched"]
    change = mod.paired(plain, raised, list(SK.joint_names))
    assert change["people"] == plain["matched"]
    # box heights of the visible joints differ a little from the full skeleton's extent used for the shift
    assert change["l_hip"]["mean_change_down"] == pytest.approx(-0.02, rel=0.25)
    assert change["r_hip"]["mean_change_down"] == pytest.approx(-0.02, rel=0.25)
    for name in ("l_shoulder", "r_shoulder", "l_knee", "r_knee", "l_wrist", "r_wrist"):
        assert change[name]["mean_change_down"] == pytest.approx(0.0, abs=1e-6)
