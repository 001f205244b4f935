"""Target assignment (DAS_SPEC §5) on tiny hand-made scenes with hand-computed expectations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from das_core.config import ModelConfig
from das_core.model.dense import cell_centers
from das_core.pose25d import Pose25D
from das_core.training.targets import Targets, assign_targets

K = 15  # panoptic15, the default skeleton
CFG = ModelConfig()  # strides 8..128, ranges (-1,48) (48,96) (96,192) (192,384) (384,1e8)
IMAGE = 128
SIZES = [(IMAGE // s, IMAGE // s) for s in CFG.strides]  # 16², 8², 4², 2², 1²
LEVEL_START = np.cumsum([0] + [h * w for h, w in SIZES])  # flat index of each level's first cell


def make_people(
    centers: list[tuple[float, float]],
    spread: list[float] | None = None,
    has_depth: list[bool] | None = None,
    visible: np.ndarray | None = None,
) -> Pose25D:
    """Persons whose joint 1 sits ``spread`` px right of the centre (so r_max = spread), others on a ring."""
    n = len(centers)
    spread = spread or [20.0] * n
    has_depth = has_depth if has_depth is not None else [True] * n
    c = np.asarray(centers, np.float32).reshape(n, 2)
    uv = np.zeros((n, K, 2), np.float32)
    for i in range(n):
        angles = np.linspace(0, 2 * np.pi, K, endpoint=False)
        ring = 0.5 * spread[i] * np.stack([np.cos(angles), np.sin(angles)], -1)
        uv[i] = c[i] + ring
        uv[i, 1] = c[i] + (spread[i], 0.0)
        uv[i, 2] = c[i]  # root joint at the centre
    dz = np.where(np.asarray(has_depth)[:, None], np.linspace(-0.3, 0.3, K, dtype=np.float32)[None], 0.0)
    dz[:, 2] = 0.0
    return Pose25D(
        centers=c,
        root_depth=np.where(has_depth, 0.002, 0.0).astype(np.float32),
        joints_uv=uv,
        joints_dz=dz.astype(np.float32),
        visible=np.ones((n, K), bool) if visible is None else visible,
        has_depth=np.asarray(has_depth, bool),
    )


def flat(level: int, i: int, j: int) -> int:
    return int(LEVEL_START[level] + i * SIZES[level][1] + j)


def assign(*images: Pose25D) -> Targets:
    return assign_targets(list(images), SIZES, CFG.strides, CFG)


def positive_cells(t: Targets, image: int = 0) -> set[int]:
    return set(t.positive[image].nonzero().squeeze(1).tolist())


def test_shapes_follow_the_dense_layout() -> None:
    t = assign(make_people([(60, 44)]), Pose25D.empty(K))
    p = int(LEVEL_START[-1])
    assert t.positive.shape == (2, p) and t.positive.dtype == torch.bool
    assert t.person_index.shape == (2, p) and t.person_index.dtype == torch.long
    assert t.centerness.shape == t.root_depth.shape == (2, p)
    assert t.offsets.shape == (2, p, K, 3)
    assert t.joint_weight.shape == (2, p, K)
    assert t.has_depth.shape == (2, p) and t.has_depth.dtype == torch.bool


def test_centre_on_a_cell_gives_the_3x3_block_on_the_level_of_r_max() -> None:
    # centre (60, 44) is the centre of level-0 cell (i=5, j=7); r_max = 20 px ∈ (-1, 48] → level 0.
    t = assign(make_people([(60, 44)], spread=[20.0]))
    expected = {flat(0, i, j) for i in (4, 5, 6) for j in (6, 7, 8)}
    assert positive_cells(t) == expected
    assert (t.person_index[0, sorted(expected)] == 0).all()
    assert (t.person_index[0][~t.positive[0]] == -1).all()


def test_centre_on_a_cell_corner_gives_2x2_because_the_window_is_strict() -> None:
    # |p − c| < 1.5·8 = 12 px: centre (56, 40) is exactly 12 px from the cells at x=44/68, y=28/52.
    t = assign(make_people([(56, 40)]))
    assert positive_cells(t) == {flat(0, i, j) for i in (4, 5) for j in (6, 7)}


@pytest.mark.parametrize(
    ("spread", "level"),
    [(10.0, 0), (47.9, 0), (50.0, 1), (100.0, 2), (300.0, 3), (500.0, 4)],
)
def test_person_lands_on_the_single_level_whose_range_holds_r_max(spread: float, level: int) -> None:
    t = assign(make_people([(64, 64)], spread=[spread]))
    cells = positive_cells(t)
    assert cells, "no positives"
    levels = {int(np.searchsorted(LEVEL_START, c, side="right") - 1) for c in cells}
    assert levels == {level}


def test_regress_ranges_are_inclusive_at_both_ends() -> None:
    # r_max = 48 exactly satisfies (-1, 48] and [48, 96): the official rule puts it on both levels.
    t = assign(make_people([(64, 64)], spread=[48.0]))
    levels = {int(np.searchsorted(LEVEL_START, c, side="right") - 1) for c in positive_cells(t)}
    assert levels == {0, 1}


def test_only_visible_joints_define_r_max() -> None:
    vis = np.ones((1, K), bool)
    vis[0, 1] = False  # hide the far joint (100 px away); the rest lie within 50 px
    t = assign(make_people([(64, 64)], spread=[100.0], visible=vis))
    levels = {int(np.searchsorted(LEVEL_START, c, side="right") - 1) for c in positive_cells(t)}
    assert levels == {1}


@pytest.mark.parametrize(("second_x", "winner"), [(77.0, 0), (75.0, 1)])
def test_shared_cell_goes_to_the_nearest_centre(second_x: float, winner: int) -> None:
    # Person 0 at x=60 owns columns j=6..8, person 1 at x≈76 owns j=8..10; column j=8 (x=68) is shared.
    t = assign(make_people([(60, 44), (second_x, 44)]))
    shared = [flat(0, i, 8) for i in (4, 5, 6)]
    assert t.positive[0, shared].all()
    assert (t.person_index[0, shared] == winner).all()
    assert (t.person_index[0, [flat(0, 5, 6)]] == 0).all()
    assert (t.person_index[0, [flat(0, 5, 10)]] == 1).all()


def test_centerness_decays_with_distance_to_the_centre() -> None:
    t = assign(make_people([(60, 44)]))
    s, r, alpha = 8.0, 1.5, 2.5
    centre = t.centerness[0, flat(0, 5, 7)].item()
    side = t.centerness[0, flat(0, 5, 8)].item()
    diagonal = t.centerness[0, flat(0, 4, 6)].item()
    assert centre == pytest.approx(1.0)
    assert side == pytest.approx(math.exp(-alpha * s / (1.414 * r * s)), rel=1e-6)
    assert diagonal == pytest.approx(math.exp(-alpha * s * math.sqrt(2) / (1.414 * r * s)), rel=1e-6)
    assert (t.centerness[0][~t.positive[0]] == 0).all()


def test_offsets_are_cell_relative_in_stride_units_and_depth_in_z_norm_units() -> None:
    people = make_people([(60, 44)])
    people.joints_uv[0, 5] = (70.0, 30.0)
    people.joints_dz[0, 5] = 0.25
    t = assign(people)
    side = flat(0, 5, 8)  # cell centre (68, 44)
    assert t.offsets[0, side, 5].tolist() == pytest.approx([(70 - 68) / 8, (30 - 44) / 8, 0.25 / CFG.z_norm])
    assert t.root_depth[0, side].item() == pytest.approx(0.002 * CFG.depth_factor)
    assert t.offsets[0, side, 2].tolist() == pytest.approx([(60 - 68) / 8, 0.0, 0.0])  # root joint
    assert t.has_depth[0, side]
    assert (t.joint_weight[0, side] == 1).all()


def test_two_d_only_person_is_positive_without_depth_targets() -> None:
    vis = np.ones((1, K), bool)
    vis[0, [0, 2]] = False  # COCO: neck and mid-hip absent although the centre is defined
    t = assign(make_people([(60, 44)], has_depth=[False], visible=vis))
    pos = t.positive[0]
    assert int(pos.sum()) == 9
    assert not t.has_depth[0].any()
    assert (t.root_depth[0] == 0).all()
    assert (t.offsets[0, pos, :, 2] == 0).all()
    assert (t.joint_weight[0, pos][:, [0, 2]] == 0).all()
    assert (t.joint_weight[0, pos][:, 1] == 1).all()


def test_invisible_joint_targets_are_zero_and_finite_even_if_coordinates_are_nan() -> None:
    people = make_people([(60, 44)])
    people.visible[0, 7] = False
    people.joints_uv[0, 7] = np.nan
    t = assign(people)
    assert torch.isfinite(t.offsets).all()
    assert (t.offsets[0, t.positive[0], 7] == 0).all()
    assert (t.joint_weight[0, t.positive[0], 7] == 0).all()


def test_person_without_visible_joints_or_centre_is_background() -> None:
    people = make_people([(60, 44), (30, 100)])
    people.visible[0] = False
    people.centers[1] = np.nan
    t = assign(people)
    assert not t.positive.any()


def test_empty_image_is_all_background() -> None:
    t = assign(Pose25D.empty(K), make_people([(60, 44)]))
    assert not t.positive[0].any()
    assert (t.person_index[0] == -1).all()
    assert (t.offsets[0] == 0).all() and (t.joint_weight[0] == 0).all()
    assert int(t.positive[1].sum()) == 9


def test_empty_batch_gives_zero_images() -> None:
    t = assign_targets([], SIZES, CFG.strides, CFG)
    assert t.positive.shape == (0, int(LEVEL_START[-1]))


def test_strides_must_match_the_config() -> None:
    with pytest.raises(ValueError, match="strides"):
        assign_targets([Pose25D.empty(K)], SIZES, (8, 16, 32, 64, 256), CFG)


def test_wrong_joint_count_is_rejected_with_the_field_name() -> None:
    with pytest.raises(ValueError, match="joints_uv"):
        assign(make_people([(60, 44)]), Pose25D.empty(K + 1))


def _reference_assignment(gt: Pose25D) -> tuple[np.ndarray, np.ndarray]:
    """Cell-by-cell loop straight from DAS_SPEC §5 (the vectorised code must agree)."""
    points, strides = (x.numpy().astype(np.float64) for x in cell_centers(SIZES, CFG.strides))
    level_size = [h * w for h, w in SIZES]
    levels = np.repeat(np.arange(len(SIZES)), level_size)
    r = CFG.targets.center_sample_radius
    positive = np.zeros(len(points), bool)
    owner = np.full(len(points), -1)
    for cell, (p, s) in enumerate(zip(points, strides, strict=True)):
        lo, hi = CFG.targets.regress_ranges[levels[cell]]
        best = math.inf
        for n in range(len(gt)):
            c = gt.centers[n].astype(np.float64)
            d = np.linalg.norm(gt.joints_uv[n].astype(np.float64) - c, axis=-1)
            r_max = max((d[k] for k in range(K) if gt.visible[n, k]), default=None)
            if r_max is None or not (lo <= r_max <= hi):
                continue
            if abs(p[0] - c[0]) < r * s and abs(p[1] - c[1]) < r * s:
                dist = float(np.linalg.norm(p - c))
                if dist < best:
                    best, owner[cell], positive[cell] = dist, n, True
    return positive, owner


def test_vectorised_assignment_matches_a_cell_by_cell_reference() -> None:
    rng = np.random.default_rng(0)
    for _ in range(4):
        n = 6
        centers = rng.uniform(0, IMAGE, (n, 2))
        gt = make_people([tuple(c) for c in centers], spread=list(rng.uniform(5, 150, n)))
        gt.visible[:] = rng.random((n, K)) > 0.3
        t = assign(gt)
        positive, owner = _reference_assignment(gt)
        np.testing.assert_array_equal(t.positive[0].numpy(), positive)
        np.testing.assert_array_equal(t.person_index[0].numpy(), owner)
