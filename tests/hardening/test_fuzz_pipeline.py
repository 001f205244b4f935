"""Fuzzing the whole frame pipeline (conversion → real Estimator → decode → tracker → messages / markers)
and, separately and faster, ``decode`` on random dense outputs with NaN / inf / huge values.

Contract:

* ``FramePipeline.process`` never raises: a frame is either published (``ok``) or refused with a reason
  from ``BAD_FRAME_REASONS``;
* no published field (poses or markers) is ever NaN or inf, whatever the image, CameraInfo, stamps or
  the estimator's output;
* ``decode`` returns at most ``nms_post`` people per image, scores above ``score_thr``, correct shapes;
  its only error is ``DecodeError`` (inputs that do not fit together).
"""

from __future__ import annotations

import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from fuzz_helpers import (
    OUTCOMES,
    assert_all_finite,
    at_least,
    count,
    fuzz_settings,
    header,
    tiny_estimator,
    tiny_model_config,
)
from hypothesis import given
from hypothesis import strategies as st

from das_core.camera import Intrinsics, ResizeRecord
from das_core.engine.decode import DecodeError, decode, transfer
from das_core.engine.estimator import level_sizes
from das_core.model.dense import cell_centers
from das_core.model.outputs import DenseOutputs
from das_core.persons import Persons
from das_core.skeletons import get_skeleton
from das_ros.conversions import rgb_to_compressed_fields
from das_ros.factory import namespace_factory
from das_ros.pipeline import BAD_FRAME_REASONS, FramePipeline, PipelineSettings
from das_ros.tracker import TrackerSettings

CFG = tiny_model_config()
SKELETON = get_skeleton(CFG.skeleton)
K = SKELETON.num_joints


def _check_result(res: object, msg: SimpleNamespace) -> None:
    assert res.header is msg.header
    if not res.ok:
        assert res.reason in BAD_FRAME_REASONS and res.error and res.poses is None
        return
    assert res.poses is not None
    assert_all_finite(res.poses)
    if res.markers is not None:
        assert_all_finite(res.markers)
    for p in res.poses.persons:
        assert 0.0 <= p.score <= 1.0 and len(p.joints) == K
        assert all(0.0 <= j.confidence <= 1.0 for j in p.joints)


_extreme = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -600.0, 1e-30, 1e30, 1e300, 600.0, 50.0])


@st.composite
def camera_info(draw: st.DrawFn, width: int, height: int) -> SimpleNamespace | None:
    if draw(st.integers(0, 9)) == 0:
        return None
    f = draw(st.floats(20, 2000) | _extreme)
    k = [f, 0.0, (width - 1) / 2, 0.0, draw(st.just(f) | _extreme), (height - 1) / 2, 0.0, 0.0, 1.0]
    if draw(st.booleans()):
        k[draw(st.sampled_from([1, 2, 5]))] = draw(st.floats(-1e6, 1e6) | _extreme)
    scale = draw(st.sampled_from([1, 1, 1, 2, 3]))
    return SimpleNamespace(k=k, p=[0.0] * 12, width=width * scale, height=height * scale,
                           binning_x=0, binning_y=0, roi=None)


@st.composite
def frames(draw: st.DrawFn) -> tuple[SimpleNamespace, bool, SimpleNamespace | None]:
    """One image message (raw or compressed, sometimes broken) + the CameraInfo in force."""
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**16))
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    if draw(st.booleans()):  # blobs instead of noise: a little structure for the network
        rgb[: h // 2] = draw(st.integers(0, 255))
    stamp = header(sec=draw(st.integers(0, 5) | st.integers(0, 2**31 - 1)), nanosec=draw(st.integers(0, 999_999_999)),
                   frame_id=draw(st.sampled_from(["cam_optical", "", "ü/ñ"])))
    compressed = draw(st.integers(0, 3)) == 0
    if compressed:
        fields = rgb_to_compressed_fields(rgb, draw(st.sampled_from(["jpeg", "png"])))
        data = fields["data"]
        if draw(st.integers(0, 4)) == 0:
            data = data[: draw(st.integers(0, len(data)))]
        msg = SimpleNamespace(header=stamp, format=fields["format"], data=data)
    else:
        enc = draw(st.sampled_from(["rgb8", "rgb8", "bgr8", "mono8", "rgba8", "16UC1", "yuv422", "bayer_rggb8", "bad"]))
        ch = {"mono8": 1, "16UC1": 2, "rgba8": 4, "yuv422": 2, "bayer_rggb8": 1}.get(enc, 3)
        raw = np.random.default_rng(seed).integers(0, 256, h * w * ch, dtype=np.uint8).tobytes()
        step = w * ch
        if draw(st.integers(0, 5)) == 0:
            raw = raw[: draw(st.integers(0, len(raw)))]
        msg = SimpleNamespace(header=stamp, height=h, width=w, encoding=enc, is_bigendian=0, step=step, data=raw)
    return msg, compressed, draw(camera_info(w, h))


@pytest.fixture(scope="module")
def estimator() -> object:
    return tiny_estimator(seed=0, finds_people=True)


def test_the_fuzzed_estimator_finds_people_that_reach_the_tracker_and_the_messages(estimator: object) -> None:
    """Guards the fuzz target below against being vacuous past the network (issue 15.3)."""
    pipe = FramePipeline(estimator, SKELETON, namespace_factory(), PipelineSettings(publish_markers=True))
    rgb = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    pipe.set_camera_info(SimpleNamespace(k=[55.0, 0, 29.5, 0, 55.0, 19.5, 0, 0, 1], p=[0.0] * 12, width=60,
                                         height=40, binning_x=0, binning_y=0, roi=None))
    for sec in (10, 11):
        msg = SimpleNamespace(header=header(sec=sec), height=40, width=60, encoding="rgb8", is_bigendian=0,
                              step=180, data=rgb.tobytes())
        res = pipe.process(msg)
        assert res.ok and len(res.persons) > 0
    assert len(res.poses.persons) == len(res.persons) and (res.persons.track_ids >= 0).all()
    assert len(res.markers.markers) > 0
    assert pipe.counters.get("persons_non_finite", 0) == 0


@at_least("pipeline (real estimator)", 150)
def test_fuzz_pipeline_with_the_real_estimator_publishes_people_and_never_nan(estimator: object) -> None:
    seen: Counter[str] = Counter()

    @fuzz_settings(max_examples=80)
    @given(seq=st.lists(frames(), min_size=1, max_size=4), tracking=st.booleans(), smoothing=st.booleans(),
           markers=st.booleans(), hfov=st.sampled_from([0.0, 0.0, 60.0]),
           min_score=st.sampled_from([0.0, 0.1, 0.5]))
    def run(seq: list, tracking: bool, smoothing: bool, markers: bool, hfov: float, min_score: float) -> None:
        settings = PipelineSettings(min_score=min_score, tracking=tracking, publish_markers=markers,
                                    fallback_hfov_deg=hfov, tracker=TrackerSettings(smoothing=smoothing))
        pipe = FramePipeline(estimator, SKELETON, namespace_factory(), settings)
        for msg, compressed, info in seq:
            count("pipeline (real estimator)")
            pipe.set_camera_info(info)
            res = pipe.process(msg, compressed=compressed)
            _check_result(res, msg)
            if res.ok:
                seen["frames published"] += 1
                seen["persons published"] += len(res.poses.persons)
                seen["persons tracked"] += int((res.persons.track_ids >= 0).sum()) if tracking else 0
        assert pipe.counters["frames_in"] == len(seq)
        assert pipe.counters["frames_ok"] + pipe.counters["frames_bad"] == len(seq)

    run()
    OUTCOMES.update(seen)
    # people got through decode → tracker → messages in a good share of the fuzzed frames
    assert seen["frames published"] >= 30 and seen["persons published"] >= 200, seen
    assert seen["persons tracked"] >= 100, seen


_wild = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.sampled_from(
    [math.nan, math.inf, -math.inf, 0.0, -1.0, 1e38, -1e38, 1e-38, 3.0])


@st.composite
def wild_persons(draw: st.DrawFn) -> object:
    """Whatever an estimator might return: NaN / inf / huge / negative values, wrong shapes, wrong types."""
    kind = draw(st.sampled_from(["persons", "persons", "persons", "wrong_k", "none", "dict"]))
    if kind == "none":
        return None
    if kind == "dict":
        return {"scores": []}
    n = draw(st.integers(0, 4))
    k = K if kind == "persons" else draw(st.sampled_from([1, K + 1]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    j3 = rng.normal(0, 1, (n, k, 3)).astype(np.float32) + np.float32([0, 0, 3])
    j2 = rng.uniform(0, 64, (n, k, 2)).astype(np.float32)
    conf = rng.uniform(0, 1, (n, k)).astype(np.float32)
    scores = rng.uniform(0, 1, n).astype(np.float32)
    for arr in (j3, j2, conf, scores):
        if arr.size and draw(st.booleans()):
            flat = arr.reshape(-1)
            for _ in range(draw(st.integers(1, 6))):
                flat[draw(st.integers(0, flat.size - 1))] = draw(_wild)
    return Persons(scores=scores, joints_3d=j3, joints_2d=j2, joint_confidence=conf,
                   track_ids=np.full(n, draw(st.sampled_from([-1, 0, 7, 2**40])), np.int64))


@at_least("pipeline (wild estimator output)", 2000)
@fuzz_settings(max_examples=1000)
@given(outputs=st.lists(wild_persons(), min_size=1, max_size=5), tracking=st.booleans(), smoothing=st.booleans(),
       stamps=st.lists(st.floats(-1e9, 1e9) | st.just(0.0), min_size=5, max_size=5))
def test_fuzz_pipeline_with_wild_estimator_output_never_publishes_nan(
    outputs: list, tracking: bool, smoothing: bool, stamps: list[float]
) -> None:
    it = iter(outputs)
    pipe = FramePipeline(lambda rgb, k: next(it), SKELETON, namespace_factory(),
                         PipelineSettings(min_score=0.0, tracking=tracking, joint_confidence_threshold=0.0,
                                          tracker=TrackerSettings(smoothing=smoothing), fallback_hfov_deg=60.0))
    rgb = np.zeros((8, 8, 3), np.uint8)
    for t in stamps[: len(outputs)]:
        count("pipeline (wild estimator output)")
        sec = int(math.floor(t))
        msg = SimpleNamespace(header=header(sec=sec, nanosec=int((t - sec) * 1e9) % 1_000_000_000), height=8,
                              width=8, encoding="rgb8", is_bigendian=0, step=24, data=rgb.tobytes())
        _check_result(pipe.process(msg), msg)


# --- decode alone ---------------------------------------------------------------------------------

_values = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.sampled_from(
    [math.nan, math.inf, -math.inf, 0.0, 1.0, 1e30, -1e30, 3e38])


@st.composite
def dense_batches(draw: st.DrawFn) -> tuple:
    b = draw(st.integers(1, 2))
    sizes = [(draw(st.integers(1, 200)), draw(st.integers(1, 200))) for _ in range(b)]
    records = [ResizeRecord.for_image(w, h, CFG.input.long_side, CFG.input.short_side, CFG.input.size_divisor)
               for w, h in sizes]
    hp = max(r.padded_height for r in records)
    wp = max(r.padded_width for r in records)
    lv = level_sizes(hp, wp, CFG.strides)
    p = sum(h * w for h, w in lv)
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    scale = draw(st.sampled_from([1.0, 1.0, 10.0, 1e6, 1e30]))
    scores = torch.rand((b, p), generator=gen)
    root = torch.rand((b, p), generator=gen) * 0.02 * scale
    offsets = torch.randn((b, p, K, 3), generator=gen) * scale
    sigma = torch.rand((b, p, K, 3), generator=gen)
    for t in (scores, root, offsets, sigma):
        flat = t.view(-1)
        for _ in range(draw(st.integers(0, 6))):
            flat[draw(st.integers(0, flat.numel() - 1))] = draw(_values)
        if draw(st.integers(0, 9)) == 0:
            flat.fill_(draw(_values))
    focal = st.floats(1e-3, 1e6) | st.sampled_from([1e-30, 1e30, 600.0])
    cams = [Intrinsics(draw(focal), draw(focal), draw(st.floats(-1e4, 1e4)), draw(st.floats(-1e4, 1e4)),
                       draw(st.just(0.0) | st.floats(-10, 10))) for _ in range(b)]
    return DenseOutputs(scores, root, offsets, sigma), lv, records, cams


@at_least("decode (random dense)", 300)
@fuzz_settings(max_examples=300)
@given(batch=dense_batches(), nms_iters=st.sampled_from([None, 1, 16]))
def test_fuzz_decode_random_dense_outputs(batch: tuple, nms_iters: int | None) -> None:
    count("decode (random dense)")
    dense, lv, records, cams = batch
    pts, strides = cell_centers(lv, CFG.strides, device=torch.device("cpu"))
    decoded = decode(dense, pts, strides, lv, records, cams, CFG, nms_iters=nms_iters)
    persons, converged = transfer(decoded)
    assert len(persons) == len(records)
    for p in persons:
        assert len(p) <= CFG.decode.nms_post
        assert p.joints_3d.shape == (len(p), K, 3) and p.joints_2d.shape == (len(p), K, 2)
        assert (p.scores > CFG.decode.score_thr).all()  # NaN scores are never kept
        # every confidence that is a number lies in [0, 1]; NaN only where the network's sigma had NaN
        conf = p.joint_confidence
        assert ((conf[~np.isnan(conf)] >= 0) & (conf[~np.isnan(conf)] <= 1)).all()
        assert not np.isnan(conf).any() or bool(torch.isnan(dense.sigma).any())
    if nms_iters is None:
        assert all(converged)
    # whatever decode produced, the pipeline's sanitising makes it publishable
    for p, rec in zip(persons, records, strict=True):
        pipe = FramePipeline(lambda rgb, k, p=p: p, SKELETON, namespace_factory(),
                             PipelineSettings(min_score=0.0, fallback_hfov_deg=60.0))
        msg = SimpleNamespace(header=header(), height=rec.height, width=rec.width, encoding="mono8",
                              is_bigendian=0, step=rec.width, data=bytes(rec.height * rec.width))
        _check_result(pipe.process(msg), msg)


def test_decode_refuses_inputs_that_do_not_fit() -> None:
    lv = [(1, 2), (1, 1)]
    pts, strides = cell_centers(lv, (8, 16), device=torch.device("cpu"))
    dense = DenseOutputs(torch.rand(1, 3), torch.rand(1, 3), torch.rand(1, 3, K, 3), torch.rand(1, 3, K, 3))
    rec = ResizeRecord.for_image(16, 8, 64, 32, 32)
    with pytest.raises(DecodeError, match="records and cameras"):
        decode(dense, pts, strides, lv, [], [], CFG)
    with pytest.raises(DecodeError, match="cells"):
        decode(dense, pts, strides, [(2, 2)], [rec], [Intrinsics(1, 1, 0, 0)], CFG)
