"""Decoding (DAS_SPEC §7): encode→decode round trip, OKS-NMS, compat pixel mapping, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from das_core.camera import Intrinsics, ResizeRecord
from das_core.config import DecodeConfig, ModelConfig
from das_core.engine.decode import (
    DecodeError,
    decode,
    oks_nms,
    pairwise_oks,
    pixel_mapping,
    to_persons_batch,
    transfer,
)
from das_core.engine.estimator import level_sizes
from das_core.model.dense import cell_centers, to_dense
from das_core.model.outputs import HeadOutputs
from das_core.skeletons import get_skeleton

SKELETON = get_skeleton("panoptic15")
K, ROOT = SKELETON.num_joints, SKELETON.root


# ----------------------------------------------------------------------------------------------
# A perfect head: encode ground-truth 3D people the way the targets are defined (DAS_SPEC §4.4, §5)
# ----------------------------------------------------------------------------------------------


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def make_people(n: int, seed: int) -> np.ndarray:
    """(N, K, 3) metres: roots spread left to right at 2.5–7 m, limbs within about a metre."""
    rng = np.random.default_rng(seed)
    roots = np.stack(
        [np.linspace(-1.6, 1.6, n), rng.uniform(-0.2, 0.3, n), rng.uniform(2.5, 7.0, n)], axis=1
    )
    limbs = rng.uniform([-0.5, -0.9, -0.3], [0.5, 0.9, 0.3], size=(n, K, 3))
    limbs[:, ROOT] = 0.0
    return roots[:, None, :] + limbs


def encode(
    people: np.ndarray,
    camera: Intrinsics,
    record: ResizeRecord,
    cfg: ModelConfig,
    scores: list[float],
    sigma: float = 0.2,
) -> tuple[HeadOutputs, list[tuple[int, int]]]:
    """Per-level head maps whose only confident cells are the people's root cells.

    Person n goes to level n % L, on the cell containing its root (network pixels); offsets are relative
    to that cell in stride units, d = (Z_k − Z_root) / z_norm, root depth = Z_root / f_eff × depth_factor.
    """
    s = np.array([record.sx, record.sy])
    if cfg.compat == "official":
        uv_net = camera.project(people) * s  # the released code: x_net = x_orig · s
        f_eff = camera.focal * math.sqrt(record.sx * record.sy)
    else:
        net_cam = camera.scaled(record.sx, record.sy)
        uv_net = net_cam.project(people)
        f_eff = net_cam.focal
    sizes = level_sizes(record.padded_height, record.padded_width, cfg.strides)
    n_lvl = len(sizes)
    cls = [torch.full((1, 1, h, w), -8.0, dtype=torch.float64) for h, w in sizes]
    ctr = [torch.full((1, 1, h, w), -8.0, dtype=torch.float64) for h, w in sizes]
    depth = [torch.zeros((1, 1, h, w), dtype=torch.float64) for h, w in sizes]
    off = [torch.zeros((1, 3 * K, h, w), dtype=torch.float64) for h, w in sizes]
    sig = [torch.full((1, 3 * K, h, w), sigma, dtype=torch.float64) for h, w in sizes]
    used = set()
    for i, person in enumerate(people):
        lvl = i % n_lvl
        stride = cfg.strides[lvl]
        root_uv = uv_net[i, ROOT]
        col, row = int(root_uv[0] // stride), int(root_uv[1] // stride)
        assert 0 <= row < sizes[lvl][0] and 0 <= col < sizes[lvl][1], "root outside the network input"
        assert (lvl, row, col) not in used, "two people on one cell: change the scene"
        used.add((lvl, row, col))
        p = stride * (np.array([col, row]) + 0.5)
        uv = (uv_net[i] - p) / stride  # (K, 2) stride units, relative to the cell
        d = (person[:, 2] - person[ROOT, 2]) / cfg.z_norm
        off[lvl][0, :, row, col] = torch.from_numpy(np.concatenate([uv, d[:, None]], axis=1).reshape(-1))
        depth[lvl][0, 0, row, col] = person[ROOT, 2] / f_eff * cfg.depth_factor
        # score = sigmoid(cls)·sigmoid(ctr); put everything in cls, centerness ~ 1
        cls[lvl][0, 0, row, col] = _logit(scores[i])
        ctr[lvl][0, 0, row, col] = 30.0
    heads = HeadOutputs(cls, ctr, depth, off, sig, None, tuple(cfg.strides))
    return heads, sizes


def run_decode(heads: HeadOutputs, sizes, records, cameras, cfg: ModelConfig, nms_iters=None):
    dense = to_dense(heads, cfg.depth_factor)
    dense = type(dense)(*(t.to(torch.float32) for t in dense))
    pts, strd = cell_centers(sizes, tuple(cfg.strides))
    return decode(dense, pts, strd, sizes, records, cameras, cfg, nms_iters=nms_iters)


CAMERAS = [
    # (camera, image width, height, long side, short side)
    (Intrinsics(1000.0, 1000.0, 959.5, 539.5), 1920, 1080, 1333, 640),  # downscale 0.593
    (Intrinsics(600.0, 650.0, 300.0, 260.0), 640, 480, 1333, 640),  # fx ≠ fy, off-centre, upscale 1.333
    (Intrinsics(1500.0, 1400.0, 1000.0, 500.0, skew=3.0), 2048, 1024, 1280, 768),  # skew, scale 0.625
    (Intrinsics(300.0, 300.0, 170.0, 110.0), 320, 240, 800, 480),  # wide angle, upscale 2
]


@pytest.mark.parametrize("compat", ["native", "official"])
@pytest.mark.parametrize("case", range(len(CAMERAS)))
def test_encode_decode_round_trip_recovers_3d_joints_to_a_millimetre(case: int, compat: str) -> None:
    camera, w, h, long_side, short_side = CAMERAS[case]
    cfg = ModelConfig(compat=compat)
    cfg = ModelConfig(compat=compat, input=type(cfg.input)(short_side=short_side, long_side=long_side))
    record = ResizeRecord.for_image(w, h, long_side, short_side, cfg.input.size_divisor)
    people = make_people(4, seed=case)
    # keep people whose root is in view; they are spread widely, so OKS between them is ~0
    uv = camera.project(people[:, ROOT])
    people = people[(uv[:, 0] > 2) & (uv[:, 0] < w - 3) & (uv[:, 1] > 2) & (uv[:, 1] < h - 3)]
    assert len(people) >= 2
    scores = [0.9 - 0.1 * i for i in range(len(people))]
    heads, sizes = encode(people, camera, record, cfg, scores)

    (decoded,) = run_decode(heads, sizes, [record], [camera], cfg)
    persons = decoded.to_persons()

    assert len(persons) == len(people)
    np.testing.assert_allclose(persons.scores, np.array(scores) * (1 / (1 + math.exp(-30.0))), atol=1e-5)
    np.testing.assert_allclose(persons.joints_3d, people, atol=1e-3)  # 1 mm
    np.testing.assert_allclose(persons.joints_2d, camera.project(people), atol=1e-2)
    np.testing.assert_allclose(persons.joint_confidence, 0.8, atol=1e-6)  # 1 − sigma
    assert (persons.track_ids == -1).all()


def test_round_trip_with_several_cameras_in_one_batch() -> None:
    cfg = ModelConfig()
    cams = [CAMERAS[0][0], Intrinsics(900.0, 950.0, 900.0, 560.0)]
    record = ResizeRecord.for_image(1920, 1080, 1333, 640, 32)
    people = [make_people(3, seed=10), make_people(2, seed=11)]
    heads = [encode(p, c, record, cfg, [0.8, 0.7, 0.6][: len(p)])[0] for p, c in zip(people, cams, strict=True)]
    sizes = level_sizes(record.padded_height, record.padded_width, cfg.strides)
    batched = HeadOutputs(*(
        [torch.cat([h[f][lvl] for h in heads]) for lvl in range(len(sizes))] for f in range(5)
    ), None, tuple(cfg.strides))
    decoded = run_decode(batched, sizes, [record, record], cams, cfg)
    for got, want in zip(to_persons_batch(decoded), people, strict=True):
        np.testing.assert_allclose(got.joints_3d, want, atol=1e-3)


def test_low_scores_are_dropped_and_nms_post_keeps_the_best_in_score_order() -> None:
    cfg = ModelConfig(decode=DecodeConfig(nms_post=3, score_thr=0.07))
    camera, w, h = CAMERAS[0][:3]
    record = ResizeRecord.for_image(w, h, 1333, 640, 32)
    people = make_people(6, seed=3)
    scores = [0.3, 0.9, 0.05, 0.6, 0.8, 0.06]  # two below the 0.07 threshold
    heads, sizes = encode(people, camera, record, cfg, scores)
    (persons,) = to_persons_batch(run_decode(heads, sizes, [record], [camera], cfg))
    np.testing.assert_allclose(persons.scores, [0.9, 0.8, 0.6], atol=1e-5)
    np.testing.assert_allclose(persons.joints_3d, people[[1, 4, 3]], atol=1e-3)


def test_nothing_above_threshold_gives_no_persons() -> None:
    cfg = ModelConfig()
    camera, w, h = CAMERAS[1][:3]
    record = ResizeRecord.for_image(w, h, 1333, 640, 32)
    heads, sizes = encode(make_people(2, seed=4), camera, record, cfg, [0.05, 0.02])
    (persons,) = to_persons_batch(run_decode(heads, sizes, [record], [camera], cfg))
    assert len(persons) == 0 and persons.joints_3d.shape == (0, K, 3)


def test_duplicate_detections_of_one_person_are_suppressed() -> None:
    cfg = ModelConfig()
    camera, w, h = CAMERAS[0][:3]
    record = ResizeRecord.for_image(w, h, 1333, 640, 32)
    person = make_people(1, seed=5)
    # the same person at 0.9 on level 0 and, 1 mm to the side, at 0.5 on level 1
    twins = np.concatenate([person, person + np.array([0.001, 0.0, 0.0])])
    heads, sizes = encode(twins, camera, record, cfg, [0.9, 0.5])
    (persons,) = to_persons_batch(run_decode(heads, sizes, [record], [camera], cfg))
    assert len(persons) == 1
    np.testing.assert_allclose(persons.scores, [0.9], atol=1e-5)


# ----------------------------------------------------------------------------------------------
# OKS-NMS on hand-computed cases
# ----------------------------------------------------------------------------------------------

BOX_POSE = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 200.0], [100.0, 200.0]])  # area 20 000 px²


def poses(*shifts: tuple[float, float]) -> torch.Tensor:
    """(1, C, 4, 2) copies of BOX_POSE shifted by whole-pose offsets."""
    return torch.stack([BOX_POSE + torch.tensor(s) for s in shifts])[None]


def greedy_reference(joints: torch.Tensor, valid: torch.Tensor, thr: float, sigma: float) -> torch.Tensor:
    """Plain sequential greedy NMS (the definition)."""
    oks = pairwise_oks(joints, sigma)[0]
    keep = []
    for j in range(joints.shape[1]):
        if valid[0, j] and all(oks[i, j] <= thr for i in keep):
            keep.append(j)
    out = torch.zeros_like(valid)
    out[0, keep] = True
    return out


def test_pairwise_oks_matches_the_formula_by_hand() -> None:
    # shift 8 px, both boxes 100 × 200: OKS = exp(−64 / (2 · 20000 · 0.16²)) = exp(−0.0625)
    oks = pairwise_oks(poses((0, 0), (8, 0)), sigma=0.08)
    assert oks.shape == (1, 2, 2)
    assert oks[0, 0, 1].item() == pytest.approx(math.exp(-64 / 1024), rel=1e-6)
    assert oks[0, 0, 0].item() == pytest.approx(1.0)


def test_oks_nms_keeps_distinct_people_and_drops_duplicates() -> None:
    joints = poses((0, 0), (1, 1), (500, 0))
    keep, converged = oks_nms(joints, torch.ones(1, 3, dtype=torch.bool), 0.9, 0.08)
    assert keep.tolist() == [[True, False, True]] and converged.all()


def test_oks_nms_is_greedy_in_score_order_through_a_chain() -> None:
    # a–b and b–c overlap (OKS 0.94), a–c does not (0.78): greedy keeps a, drops b, so c survives.
    joints = poses((0, 0), (8, 0), (16, 0))
    valid = torch.ones(1, 3, dtype=torch.bool)
    keep, converged = oks_nms(joints, valid, 0.9, 0.08, iters=1)
    assert not converged.item()  # one step is not enough to see that b is gone
    keep, converged = oks_nms(joints, valid, 0.9, 0.08, iters=4)
    assert keep.tolist() == [[True, False, True]] and converged.item()


def test_invalid_candidates_neither_survive_nor_suppress() -> None:
    joints = poses((0, 0), (8, 0), (16, 0))
    valid = torch.tensor([[False, True, True]])
    keep, _ = oks_nms(joints, valid, 0.9, 0.08)
    assert keep.tolist() == [[False, True, False]]


def test_exact_mode_resolves_a_long_chain() -> None:
    shifts = [(8.0 * i, 0.0) for i in range(40)]  # needs ~40 Jacobi steps
    joints = poses(*shifts)
    valid = torch.ones(1, 40, dtype=torch.bool)
    _, converged = oks_nms(joints, valid, 0.9, 0.08, iters=16)
    assert not converged.item()
    keep, converged = oks_nms(joints, valid, 0.9, 0.08, iters=None)
    assert converged.item()
    assert keep.tolist() == greedy_reference(joints, valid, 0.9, 0.08).tolist()
    assert keep[0].nonzero().flatten().tolist() == list(range(0, 40, 2))


@pytest.mark.parametrize("seed", range(5))
def test_oks_nms_equals_sequential_greedy_on_random_clusters(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(4, 2, generator=g) * 300
    joints = torch.cat([c + BOX_POSE + torch.randn(15, 4, 2, generator=g) * 6 for c in centres])[None]
    joints = joints[:, torch.randperm(60, generator=g)]
    valid = torch.rand(1, 60, generator=g) > 0.1
    keep, converged = oks_nms(joints, valid, 0.9, 0.08, iters=None)
    assert converged.item()
    assert keep.tolist() == greedy_reference(joints, valid, 0.9, 0.08).tolist()


# ----------------------------------------------------------------------------------------------
# Compat pixel mapping (DAS_SPEC §3.2, §7)
# ----------------------------------------------------------------------------------------------


def test_native_mapping_uses_pixel_centres_and_official_mapping_divides_by_scale() -> None:
    uv = torch.tensor([[100.0, 50.0]])
    s = torch.tensor([0.5, 0.25])
    native = pixel_mapping("native").to_original(uv, s)
    official = pixel_mapping("official").to_original(uv, s)
    assert native.tolist() == [[200.5, 201.5]]  # (x + 0.5) / s − 0.5
    assert official.tolist() == [[200.0, 200.0]]  # x / s
    for compat in ("native", "official"):
        m = pixel_mapping(compat)
        torch.testing.assert_close(m.to_network(m.to_original(uv, s), s), uv)


def test_native_mapping_agrees_with_the_resize_record() -> None:
    record = ResizeRecord.for_image(1920, 1080, 1333, 640, 32)
    uv = np.array([[0.0, 0.0], [1137.0, 639.0], [333.3, 12.5]])
    s = torch.tensor([record.sx, record.sy], dtype=torch.float64)
    got = pixel_mapping("native").to_original(torch.from_numpy(uv), s).numpy()
    np.testing.assert_allclose(got, record.to_original(uv), atol=1e-9)


def test_unknown_compat_is_an_error() -> None:
    with pytest.raises(DecodeError, match="compat"):
        pixel_mapping("mmdet")


# ----------------------------------------------------------------------------------------------
# Bad input and the no-sync contract
# ----------------------------------------------------------------------------------------------


def _tiny_setup():
    cfg = ModelConfig(decode=DecodeConfig(nms_pre=64))
    camera, w, h = CAMERAS[3][:3]
    record = ResizeRecord.for_image(w, h, 800, 480, 32)
    heads, sizes = encode(make_people(2, seed=7), camera, record, cfg, [0.9, 0.8])
    dense = to_dense(heads, cfg.depth_factor)
    dense = type(dense)(*(t.to(torch.float32) for t in dense))
    pts, strd = cell_centers(sizes, tuple(cfg.strides))
    return cfg, camera, record, dense, pts, strd, sizes


def test_mismatched_cameras_records_or_cells_are_clear_errors() -> None:
    cfg, camera, record, dense, pts, strd, sizes = _tiny_setup()
    with pytest.raises(DecodeError, match="records and cameras"):
        decode(dense, pts, strd, sizes, [record], [camera, camera], cfg)
    with pytest.raises(DecodeError, match="cells"):
        decode(dense, pts, strd, sizes[:-1], [record], [camera], cfg)
    with pytest.raises(DecodeError, match="Intrinsics"):
        decode(dense, pts, strd, sizes, [record], [np.eye(3)], cfg)


def test_unfinished_nms_is_reported_not_hidden() -> None:
    cfg, camera, record, dense, pts, strd, sizes = _tiny_setup()
    # a long chain of near-duplicates: every cell of the first level holds the same person, shifted
    scores = dense.scores.clone()
    n0 = sizes[0][0] * sizes[0][1]
    scores[0, :n0] = torch.linspace(0.9, 0.5, n0)
    offsets = dense.offsets.clone()
    offsets[0, :n0] = torch.tensor([[0.0, 0.0, 0.0], [12.0, 0.0, 0.0], [0.0, 25.0, 0.0], [12.0, 25.0, 0.0]]).repeat(
        K // 4 + 1, 1
    )[:K]
    # cells are 8 px apart along a row, so the poses drift by 8 px per cell: a chain
    dense = dense._replace(scores=scores, offsets=offsets)
    decoded = decode(dense, pts, strd, sizes, [record], [camera], cfg, nms_iters=1)
    persons, converged = transfer(decoded)
    assert converged == [False]
    with pytest.raises(DecodeError, match="nms_iters=None"):
        decoded[0].to_persons()
    exact = decode(dense, pts, strd, sizes, [record], [camera], cfg)[0].to_persons()
    assert len(exact) > 1 and (np.diff(exact.scores) <= 0).all()
