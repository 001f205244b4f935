"""Skeleton tables are self-consistent; Persons filters all fields together."""

from __future__ import annotations

import numpy as np
import pytest

from das_core.persons import Persons
from das_core.skeletons import SKELETONS, get_skeleton


@pytest.mark.parametrize("name", sorted(SKELETONS))
def test_flip_permutation_is_an_involution_and_bones_form_a_tree(name: str) -> None:
    sk = get_skeleton(name)
    perm = sk.flip_permutation()
    assert [perm[p] for p in perm] == list(range(sk.num_joints))
    assert len(sk.bones) == sk.num_joints - 1
    reached = {sk.root}
    for _ in sk.bones:
        for a, b in sk.bones:
            if a in reached or b in reached:
                reached |= {a, b}
    assert reached == set(range(sk.num_joints)), "every joint is connected to the root"


def test_roots_are_found_by_name() -> None:
    assert get_skeleton("panoptic15").root == 2
    assert get_skeleton("muco21").root == 14
    with pytest.raises(KeyError, match="unknown skeleton"):
        get_skeleton("h36m")


def test_persons_mask_filters_every_field() -> None:
    p = Persons(
        scores=np.array([0.9, 0.2, 0.5], np.float32),
        joints_3d=np.random.rand(3, 15, 3).astype(np.float32),
        joints_2d=np.random.rand(3, 15, 2).astype(np.float32),
        joint_confidence=np.ones((3, 15), np.float32),
        track_ids=np.array([4, 5, 6]),
    )
    kept = p[p.scores > 0.4]
    assert len(kept) == 2 and kept.track_ids.tolist() == [4, 6]
    assert kept.boxes_2d().shape == (2, 4) and kept.is_finite()
    assert len(Persons.empty(15)) == 0
    with pytest.raises(ValueError, match="joints_3d has 2 rows"):
        Persons(p.scores, p.joints_3d[:2], p.joints_2d, p.joint_confidence, p.track_ids)
