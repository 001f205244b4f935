"""CPU options of the engine: the network input scale (``Estimator(input_scale=…)``) and the onnx backend's int8
graph (quantised, calibrated, checked against fp32 and refused when it disagrees)."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from das_core.camera import Intrinsics, ResizeRecord
from das_core.config import InputConfig, ModelConfig, config_from_dict
from das_core.engine.backends import BackendError, make_backend
from das_core.engine.backends.onnx_int8 import calibration_frames, int8_agreement
from das_core.engine.bench import ForcedPeople, ForcedPeopleBackend, synthetic_frame
from das_core.engine.estimator import Estimator
from das_core.engine.export import AGREEMENT, compare_dense, example_input
from das_core.engine.preprocess import scaled_input
from das_core.model.das import DAS
from das_core.model.dense import level_sizes
from das_core.model.outputs import DenseOutputs

sys.path.insert(0, str(Path(__file__).parent))
from test_export import PLAIN  # noqa: E402

# ----------------------------------------------------------------------------------------------
# Input scale
# ----------------------------------------------------------------------------------------------


def test_scaled_input_multiplies_both_limits_and_refuses_nonsense() -> None:
    base = InputConfig(short_side=384, long_side=704)
    assert scaled_input(base, 1.0) is base
    half = scaled_input(base, 0.8)
    assert (half.short_side, half.long_side) == (307, 563) and half.size_divisor == base.size_divisor
    # a 640×384 frame: 640×384 at scale 1, 512×307 (padded 512×320) at 0.8
    r1 = ResizeRecord.for_image(640, 384, base.long_side, base.short_side, 32)
    r8 = ResizeRecord.for_image(640, 384, half.long_side, half.short_side, 32)
    assert (r1.padded_width, r1.padded_height) == (640, 384)
    assert (r8.resized_width, r8.resized_height, r8.padded_width, r8.padded_height) == (512, 307, 512, 320)
    for bad in (0.0, -0.5, 4.5, math.nan):
        with pytest.raises(ValueError, match="input scale must be in"):
            scaled_input(base, bad)


class _ZeroBackend:
    """Dense outputs of zeros (no one in view): with ForcedPeople on top, the decoder sees exactly those people."""

    name, precision = "zero", "fp32"

    def __init__(self, cfg: ModelConfig, k: int) -> None:
        self.cfg, self.k, self.device = cfg, k, torch.device("cpu")
        self.shapes: list[tuple[int, ...]] = []

    def run(self, images: torch.Tensor) -> DenseOutputs:
        self.shapes.append(tuple(images.shape))
        p = sum(h * w for h, w in level_sizes(images.shape[-2], images.shape[-1], self.cfg.strides))
        b = images.shape[0]
        return DenseOutputs(torch.zeros(b, p), torch.zeros(b, p), torch.zeros(b, p, self.k, 3),
                            torch.full((b, p, self.k, 3), 0.5))


@pytest.mark.parametrize("scale", [1.0, 0.75, 0.5])
def test_input_scale_shrinks_the_network_input_and_keeps_people_where_they_are(scale: float) -> None:
    cfg = config_from_dict(ModelConfig, {**PLAIN, "input": {"short_side": 192, "long_side": 320}})
    torch.manual_seed(0)
    est = Estimator.from_model(DAS.from_config(cfg), cfg, device="cpu", input_scale=scale)
    assert est.cfg.input.short_side == int(192 * scale + 0.5)
    w, h = 320, 192
    frame, cam = synthetic_frame(w, h, seed=1), Intrinsics(fx=250.0, fy=240.0, cx=161.0, cy=95.0)
    i = est.cfg.input
    record = ResizeRecord.for_image(w, h, i.long_side, i.short_side, i.size_divisor)
    hw = (record.padded_height, record.padded_width)
    zero = _ZeroBackend(cfg, 15)
    forced = ForcedPeople(cfg, 15, hw, record, cam, 2, "cpu")
    est.backend = ForcedPeopleBackend(zero, forced)  # type: ignore[assignment]
    people = est(frame, cam)
    assert zero.shapes == [(1, 3, *hw)]
    assert hw[1] == 32 * math.ceil(round(320 * scale) / 32)  # the network really ran smaller
    # Roots come back in metres of the original camera at every scale: the resize is undone in the pixels and
    # in the focal length the depth is lifted with (f_eff = sqrt(fx·sx · fy·sy)).
    assert len(people) == 2
    got = np.asarray(people.roots(2))
    order = np.argsort(got[:, 2])
    np.testing.assert_allclose(got[order], forced.expected_roots_m, atol=2e-3)


# ----------------------------------------------------------------------------------------------
# int8 agreement check
# ----------------------------------------------------------------------------------------------


def _dense_case() -> tuple[ModelConfig, tuple[int, int, int, int], ResizeRecord, DenseOutputs]:
    cfg = config_from_dict(ModelConfig, PLAIN)
    shape = (1, 3, 64, 96)
    record = ResizeRecord(96, 64, 96, 64, 96, 64)
    p = sum(a * b for a, b in level_sizes(64, 96, cfg.strides))
    g = torch.Generator().manual_seed(0)
    scores = torch.zeros(1, p)
    scores[0, :6] = 0.9  # six detected cells
    dense = DenseOutputs(scores, torch.full((1, p), 4.0 / 80.0), torch.randn(1, p, 15, 3, generator=g) * 0.3,
                         torch.full((1, p, 15, 3), 0.3))
    return cfg, shape, record, dense


def test_int8_check_accepts_agreeing_outputs_and_refuses_a_depth_error() -> None:
    cfg, shape, record, ref = _dense_case()
    same = int8_agreement([ref], [ref], cfg, shape, [record], max_joint_mm=50.0)
    assert same["pass"] and same["joint_mm_median"] == 0.0 and same["detection_jaccard"] == 1.0
    assert same["cells_compared"] == 6 and not same["top_cells_fallback"]
    # 2 % more root depth at ~4–5 m ≈ 90 mm further away: refused at 50 mm, accepted at 150 mm
    deeper = DenseOutputs(ref.scores, ref.root_depth * 1.02, ref.offsets, ref.sigma)
    far = int8_agreement([ref], [deeper], cfg, shape, [record], max_joint_mm=50.0)
    assert not far["pass"] and 50.0 < far["joint_mm_median"] < 150.0
    assert int8_agreement([ref], [deeper], cfg, shape, [record], max_joint_mm=150.0)["pass"]
    # the same joints but the int8 graph loses most detections: refused by the Jaccard index
    lost = ref.scores.clone()
    lost[0, 1:6] = 0.0
    missed = int8_agreement([ref], [DenseOutputs(lost, ref.root_depth, ref.offsets, ref.sigma)], cfg, shape,
                            [record], max_joint_mm=50.0)
    assert not missed["pass"] and missed["detection_jaccard"] == pytest.approx(1 / 6)


def test_int8_check_compares_the_best_cells_when_nobody_is_detected() -> None:
    cfg, shape, record, ref = _dense_case()
    empty = DenseOutputs(ref.scores * 0.01, ref.root_depth, ref.offsets, ref.sigma)  # all below score_thr
    r = int8_agreement([empty], [empty], cfg, shape, [record], max_joint_mm=50.0)
    assert r["top_cells_fallback"] and r["cells_compared"] == 20 and r["pass"]


# ----------------------------------------------------------------------------------------------
# onnx int8 backend on a tiny model
# ----------------------------------------------------------------------------------------------


def _calibration_folder(tmp_path: Path, n: int = 20) -> Path:
    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), synthetic_frame(96, 64, seed=i)[..., ::-1])
    return folder


def test_onnx_int8_backend_is_calibrated_checked_cached_and_close_to_fp32(tmp_path, caplog) -> None:
    pytest.importorskip("onnxruntime")
    cfg = config_from_dict(ModelConfig, PLAIN)
    torch.manual_seed(0)
    model = DAS.from_config(cfg)
    folder = _calibration_folder(tmp_path)
    x = example_input((1, 3, 64, 96), seed=5)
    ref = make_backend("onnx", model, cfg, device="cpu", cache_dir=tmp_path / "cache").run(x)
    backend = make_backend("onnx", model, cfg, device="cpu", precision="int8", cache_dir=tmp_path / "cache",
                           calibration=folder)
    got = backend.run(x)
    assert backend.precision == "int8" and got.offsets.dtype == torch.float32
    report = backend.int8_reports[(1, 3, 64, 96)]
    assert report["pass"] and report["frames"] == 4 and report["max_joint_mm"] == AGREEMENT["int8"]["joints_mm"]
    # int8, not fp32 by another name: the outputs differ, but within the int8 agreement tolerances
    cmp = compare_dense(got, ref, AGREEMENT["int8"]["dense"])
    assert cmp.ok, cmp.summary()
    assert max(cmp.max_abs.values()) > 1e-5
    slot = next(p for p in (tmp_path / "cache" / "onnx").iterdir() if "-int8-" in p.name)
    key = json.loads((slot / "key.json").read_text())
    assert key["precision"] == "int8" and key["calibration"].startswith(f"folder {folder.resolve()} x20")
    assert json.loads((slot / "int8_check.json").read_text())["pass"]

    with caplog.at_level(logging.INFO):
        again = make_backend("onnx", model, cfg, device="cpu", precision="int8", cache_dir=tmp_path / "cache",
                             calibration=folder)
        torch.testing.assert_close(again.run(x).scores, got.scores)
    assert "reusing cached" in caplog.text and "quantising" not in caplog.text

    # a changed calibration image is a different calibration: rebuilt
    cv2.imwrite(str(folder / "000.png"), synthetic_frame(96, 64, seed=99)[..., ::-1])
    with caplog.at_level(logging.INFO):
        caplog.clear()
        make_backend("onnx", model, cfg, device="cpu", precision="int8", cache_dir=tmp_path / "cache",
                     calibration=folder).run(x)
    assert "quantising" in caplog.text


def test_onnx_int8_backend_refuses_a_graph_that_fails_the_check(tmp_path) -> None:
    pytest.importorskip("onnxruntime")
    cfg = config_from_dict(ModelConfig, PLAIN)
    torch.manual_seed(0)
    model = DAS.from_config(cfg)
    backend = make_backend("onnx", model, cfg, device="cpu", precision="int8", cache_dir=tmp_path / "cache",
                           calibration=_calibration_folder(tmp_path), int8_max_joint_mm=0.0)
    with pytest.raises(BackendError, match=r"int8: the quantised graph disagrees with fp32.*limit 0 mm.*refused"):
        backend.run(example_input((1, 3, 64, 96), seed=5))
    slot = next(p for p in (tmp_path / "cache" / "onnx").iterdir() if "-int8-" in p.name)
    assert not (slot / "model.onnx").exists() and not (slot / "key.json").exists()  # nothing left to reuse


def test_onnx_int8_errors_name_the_problem(tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    cfg = config_from_dict(ModelConfig, PLAIN)
    model = DAS.from_config(cfg)
    few = tmp_path / "few"
    few.mkdir()
    cv2.imwrite(str(few / "a.png"), synthetic_frame(96, 64)[..., ::-1])
    backend = make_backend("onnx", model, cfg, device="cpu", precision="int8", cache_dir=tmp_path / "c",
                           calibration=few)
    with pytest.raises(BackendError, match=r"few has 1 images.*need 20"):
        backend.run(example_input((1, 3, 64, 96)))
    with pytest.raises(BackendError, match=r"fp32 only, or int8 on the CPU \(got 'bf16'\)"):
        make_backend("onnx", model, cfg, device="cpu", precision="bf16")
    with pytest.raises(BackendError, match="precision 'int8' not supported"):
        make_backend("eager", model, cfg, device="cpu", precision="int8")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(BackendError, match="needs onnxruntime: pip install onnxruntime"):
        make_backend("onnx", model, cfg, device="cpu", precision="int8")


def test_default_calibration_frames_are_rendered_synthetic_scenes() -> None:
    frames = calibration_frames(None, 2)
    assert len(frames) == 2 and all(f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3 for f in frames)
    assert not np.array_equal(frames[0], frames[1])
    np.testing.assert_array_equal(calibration_frames(None, 1)[0], frames[0])  # fixed seed: the same scenes


# ----------------------------------------------------------------------------------------------
# The node's loader
# ----------------------------------------------------------------------------------------------


def test_load_estimator_passes_input_scale_and_threads(tmp_path) -> None:
    from das_core.checkpoint import save_checkpoint
    from das_ros.pipeline import load_estimator

    cfg = config_from_dict(ModelConfig, PLAIN)
    save_checkpoint(tmp_path / "tiny", DAS.from_config(cfg).state_dict(), cfg, {})
    before = torch.get_num_threads()
    try:
        est = load_estimator(str(tmp_path / "tiny"), "cpu", "eager", "fp32", input_scale=0.5, threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert (est.cfg.input.short_side, est.cfg.input.long_side) == (32, 48)
    with pytest.raises(ValueError, match="input scale must be in"):
        load_estimator(str(tmp_path / "tiny"), "cpu", "eager", "fp32", input_scale=0.0)
