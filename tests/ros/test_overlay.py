"""Debug overlay draws on a copy, in the track colour, only where joints are valid."""

from __future__ import annotations

import numpy as np
from ros_helpers import SKELETON, persons

from das_core.overlay import draw_persons


def test_overlay_draws_on_a_copy_and_skips_invalid_people() -> None:
    img = np.zeros((48, 64, 3), np.uint8)
    p = persons(2)
    p.joint_confidence[1] = 0.0
    out = draw_persons(img, p, SKELETON)
    assert img.max() == 0 and out.shape == img.shape and out.dtype == np.uint8
    assert out.max() > 0
    p.joint_confidence[0] = 0.0
    assert draw_persons(img, p, SKELETON).max() == 0
