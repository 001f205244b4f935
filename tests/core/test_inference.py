"""The Estimator and the backend factory, with tiny models on the CPU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from das_core.camera import CameraError, Intrinsics
from das_core.checkpoint import CheckpointError, save_checkpoint
from das_core.config import FPNConfig, HeadConfig, InputConfig, ModelConfig, TargetConfig, UpdateConfig
from das_core.engine.backends import BACKEND_NAMES, BackendError, make_backend
from das_core.engine.backends.eager import EagerBackend
from das_core.engine.decode import decode, transfer
from das_core.engine.estimator import Estimator, level_sizes
from das_core.engine.preprocess import ImageError, preprocess
from das_core.model.dense import cell_centers
from das_core.model.outputs import DenseOutputs, HeadOutputs
from das_core.skeletons import get_skeleton

CFG = ModelConfig(
    strides=(8, 16),
    fpn=FPNConfig(num_outs=2),
    targets=TargetConfig(regress_ranges=((-1.0, 64.0), (64.0, 1e8))),
    input=InputConfig(short_side=64, long_side=96),
)
K = get_skeleton(CFG.skeleton).num_joints
CAMERA = Intrinsics(80.0, 85.0, 39.5, 29.5)


class TinyModel(nn.Module):
    """Average-pools the image to each level and predicts every head output with one 1×1 conv."""

    def __init__(self, strides: tuple[int, ...], num_joints: int) -> None:
        super().__init__()
        self.strides = strides
        self.k = num_joints
        self.conv = nn.Conv2d(3, 3 + 6 * num_joints, 1)
        torch.manual_seed(0)
        nn.init.normal_(self.conv.weight, std=0.5)
        nn.init.constant_(self.conv.bias, 0.5)

    def forward(self, images: torch.Tensor) -> HeadOutputs:
        maps = [self.conv(F.avg_pool2d(images, s, ceil_mode=True)) for s in self.strides]
        k3 = 3 * self.k
        return HeadOutputs(
            cls_logits=[m[:, :1] for m in maps],
            centerness_logits=[m[:, 1:2] for m in maps],
            root_depth=[F.softplus(m[:, 2:3]) * 100 for m in maps],
            offsets=[m[:, 3 : 3 + k3] for m in maps],
            sigma=[torch.sigmoid(m[:, 3 + k3 :]) for m in maps],
            offsets_init=None,
            strides=self.strides,
        )


def image(h: int = 60, w: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def estimator() -> Estimator:
    return Estimator.from_model(TinyModel(CFG.strides, K), CFG, device="cpu")


def test_estimator_returns_finite_persons_and_timings(estimator: Estimator) -> None:
    persons = estimator(image(), CAMERA)
    assert len(persons) >= 1  # the random head scores far above 0.07 everywhere
    assert persons.joints_3d.shape == (len(persons), K, 3) and persons.joints_2d.shape == (len(persons), K, 2)
    assert persons.is_finite()
    assert (np.diff(persons.scores) <= 0).all() and len(persons) <= CFG.decode.nms_post
    assert ((persons.joint_confidence >= 0) & (persons.joint_confidence <= 1)).all()
    t = estimator.timings
    assert t.batch_size == 1 and t.nms_fallbacks == 0
    assert all(math.isfinite(v) and v >= 0 for v in (t.preprocess_ms, t.forward_ms, t.decode_ms, t.total_ms))


def test_batch_equals_single_frames(estimator: Estimator) -> None:
    images = [image(seed=1), image(seed=2)]
    cams = [CAMERA, Intrinsics(70.0, 70.0, 40.0, 30.0)]
    together = estimator.batch(images, cams)
    assert estimator.timings.batch_size == 2
    for img, cam, got in zip(images, cams, together, strict=True):
        alone = estimator(img, cam)
        np.testing.assert_allclose(got.joints_3d, alone.joints_3d, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got.scores, alone.scores, rtol=1e-6)


def test_intrinsics_may_be_a_3x3_matrix(estimator: Estimator) -> None:
    a = estimator(image(), CAMERA)
    b = estimator(image(), CAMERA.matrix())
    np.testing.assert_array_equal(a.joints_3d, b.joints_3d)


def test_bad_frames_and_cameras_are_clear_errors(estimator: Estimator) -> None:
    with pytest.raises(ImageError, match="empty"):
        estimator.batch([], [])
    with pytest.raises(ValueError, match="2 images but 1 intrinsics"):
        estimator.batch([image(), image()], [CAMERA])
    with pytest.raises(ImageError, match="uint8"):
        estimator(image().astype(np.float32), CAMERA)
    with pytest.raises(ImageError, match="3 channels"):
        estimator(image()[..., :2], CAMERA)
    with pytest.raises(CameraError, match="finite"):
        estimator(image(), [[math.nan, 0, 40], [0, 80, 30], [0, 0, 1]])
    with pytest.raises(CameraError, match="positive"):
        estimator(image(), [[0.0, 0, 40], [0, 80, 30], [0, 0, 1]])
    with pytest.raises(CameraError, match="positive"):
        Intrinsics(-5.0, 80.0, 40.0, 30.0)
    with pytest.raises(CameraError, match="expected Intrinsics"):
        estimator(image(), "camera")  # type: ignore[arg-type]


def test_backend_factory_names_the_valid_backends() -> None:
    model = TinyModel(CFG.strides, K)
    assert isinstance(make_backend("eager", model, CFG, device="cpu"), EagerBackend)
    with pytest.raises(BackendError, match="unknown backend 'fast'.*eager"):
        make_backend("fast", model, CFG, device="cpu")
    with pytest.raises(BackendError, match="precision 'int4'"):
        make_backend("eager", model, CFG, device="cpu", precision="int4")
    assert "eager" in BACKEND_NAMES


def test_backend_rejects_a_model_whose_strides_differ_from_the_config() -> None:
    backend = EagerBackend(TinyModel((8, 32), K), CFG, device="cpu")
    x, _ = preprocess(image(), CFG.input)
    with pytest.raises(BackendError, match="strides"):
        backend.run(x)


def test_bf16_eager_backend_runs_and_returns_float32() -> None:
    backend = EagerBackend(TinyModel(CFG.strides, K), CFG, device="cpu", precision="bf16", channels_last=True)
    x, _ = preprocess(image(), CFG.input)
    dense = backend.run(x)
    assert all(t.dtype == torch.float32 for t in dense)
    sizes = level_sizes(x.shape[2], x.shape[3], CFG.strides)
    assert dense.scores.shape == (1, sum(h * w for h, w in sizes))


class ChainBackend:
    """Fixed outputs: every level-0 cell holds one pose shifted 8 px per cell — a long OKS-NMS chain."""

    name, device, precision = "chain", torch.device("cpu"), "fp32"

    def run(self, images: torch.Tensor) -> DenseOutputs:
        sizes = level_sizes(images.shape[2], images.shape[3], CFG.strides)
        p, n0 = sum(h * w for h, w in sizes), sizes[0][0] * sizes[0][1]
        scores = torch.full((1, p), 0.01)
        scores[0, :n0] = torch.linspace(0.9, 0.5, n0)
        offsets = torch.zeros(1, p, K, 3)
        offsets[..., 0] = torch.arange(K) % 3 * 10.0  # a 160 × 160 px pose (stride 8): OKS 0.96 8 px apart
        offsets[..., 1] = torch.arange(K) // 5 * 10.0
        return DenseOutputs(scores, torch.full((1, p), 0.02), offsets, torch.full((1, p, K, 3), 0.1))


def test_frames_needing_more_nms_steps_are_decoded_exactly() -> None:
    est = Estimator(CFG, ChainBackend(), nms_iters=2)  # type: ignore[arg-type]
    got = est(image(), CAMERA)
    assert est.timings.nms_fallbacks == 1
    x, rec = preprocess(image(), CFG.input)
    sizes = level_sizes(x.shape[2], x.shape[3], CFG.strides)
    pts, strd = cell_centers(sizes, CFG.strides)
    want = transfer(decode(ChainBackend().run(x), pts, strd, sizes, [rec], [CAMERA], CFG))[0][0]
    assert len(got) == len(want) > 1
    np.testing.assert_allclose(got.joints_3d, want.joints_3d)


# ----------------------------------------------------------------------------------------------
# A real (tiny) DAS through a checkpoint
# ----------------------------------------------------------------------------------------------

TINY_DAS = ModelConfig(
    strides=(8, 16, 32),
    fpn=FPNConfig(out_channels=32, num_outs=3),
    head=HeadConfig(feat_channels=32, stacked_convs=1, num_groups=8, centerness_channels=16),
    update=UpdateConfig(num_layers=1, num_points=2),
    targets=TargetConfig(regress_ranges=((-1.0, 64.0), (64.0, 128.0), (128.0, 1e8))),
    input=InputConfig(short_side=64, long_side=96),
)


def _tiny_das_config() -> ModelConfig:
    from dataclasses import replace

    from das_core.config import BackboneConfig

    return replace(TINY_DAS, backbone=BackboneConfig(name="resnet18", frozen_stages=0))


def test_estimator_from_checkpoint_runs_a_tiny_das(tmp_path) -> None:
    das = pytest.importorskip("das_core.model.das")
    cfg = _tiny_das_config()
    torch.manual_seed(0)
    model = das.DAS.from_config(cfg)
    save_checkpoint(tmp_path / "tiny", model.state_dict(), cfg)
    est = Estimator.from_checkpoint(tmp_path / "tiny", device="auto")
    assert est.device.type in ("cpu", "cuda") and est.backend.name == "eager"
    persons = est(image(), CAMERA)
    assert persons.is_finite() and persons.joints_3d.shape[1:] == (K, 3)

    state = model.state_dict()
    state.pop(next(iter(state)))
    save_checkpoint(tmp_path / "broken", state, cfg)
    with pytest.raises(CheckpointError, match="missing"):
        Estimator.from_checkpoint(tmp_path / "broken", device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_preprocess_forward_and_decode_never_wait_for_the_gpu() -> None:
    from das_core.engine.preprocess import preprocess_batch

    est = Estimator.from_model(TinyModel(CFG.strides, K), CFG, device="cuda")
    assert est.nms_iters is not None
    est(image(), CAMERA)  # warm-up: caches (normalisation constants, cell centres) are filled here
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        x, records = preprocess_batch([image(seed=3)], CFG.input, est.device)
        dense = est.backend.run(x)
        pts, strd, sizes = est._grid(x.shape[-2], x.shape[-1])
        decoded = decode(dense, pts, strd, sizes, records, [CAMERA], CFG, nms_iters=est.nms_iters)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    persons, converged = transfer(decoded)
    assert converged == [True] and persons[0].is_finite()


class FixedBackend:
    """Returns pre-built dense outputs, whatever the image (a 'perfect' network for one scene)."""

    name, device, precision = "fixed", torch.device("cpu"), "fp32"

    def __init__(self, dense: DenseOutputs) -> None:
        self.dense = dense

    def run(self, images: torch.Tensor) -> DenseOutputs:
        return self.dense


def test_estimator_recovers_3d_people_from_a_perfect_network() -> None:
    from test_decode import CAMERAS, encode, make_people

    from das_core.camera import ResizeRecord
    from das_core.model.dense import to_dense

    camera, w, h, long_side, short_side = CAMERAS[1]
    cfg = ModelConfig(input=InputConfig(short_side=short_side, long_side=long_side))
    record = ResizeRecord.for_image(w, h, long_side, short_side, cfg.input.size_divisor)
    people = make_people(3, seed=1)
    heads, _ = encode(people, camera, record, cfg, [0.9, 0.8, 0.7])
    dense = DenseOutputs(*(t.to(torch.float32) for t in to_dense(heads, cfg.depth_factor)))
    est = Estimator(cfg, FixedBackend(dense))  # type: ignore[arg-type]
    persons = est(np.zeros((h, w, 3), np.uint8), camera)
    np.testing.assert_allclose(persons.joints_3d, people, atol=1e-3)
    np.testing.assert_allclose(persons.scores, [0.9, 0.8, 0.7], atol=1e-5)
