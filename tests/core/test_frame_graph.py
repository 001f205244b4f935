"""Whole-frame graphs (das_core/engine/frame_graph.py): the same people as the step-by-step Estimator path.

On the CPU the frame program runs eagerly (that is what CI checks); the captured CUDA path has its own
test, run on the GPU machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_inference import CAMERA, CFG, ChainBackend, K, TinyModel, image

from das_core.engine.backends.eager import EagerBackend
from das_core.engine.estimator import Estimator
from das_core.engine.frame_graph import FrameGraph


class GraphableEager(EagerBackend):
    """The eager backend offering whole-frame graphs, as the ``compile`` backend does."""

    frame_graphs = True

    def capturable(self, images: torch.Tensor):
        return self.run(images)


class GraphableChain(ChainBackend):
    frame_graphs = True

    def capturable(self, images: torch.Tensor):
        return self.run(images)


def _same(a, b) -> None:
    assert len(a) == len(b)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)
    np.testing.assert_allclose(a.joints_3d, b.joints_3d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.joints_2d, b.joints_2d, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(a.joint_confidence, b.joint_confidence, rtol=1e-6)


def test_frame_graph_program_finds_the_same_people_as_the_estimator():
    backend = EagerBackend(TinyModel(CFG.strides, K), CFG, device="cpu")
    reference = Estimator(CFG, backend, nms_iters=16)
    graph = FrameGraph(backend.run, CFG, 2, (60, 80), torch.device("cpu"))
    frames = [image(seed=1), image(seed=2)]
    cams = [CAMERA, CAMERA.scaled(1.5, 1.5)]  # a second camera with other intrinsics
    got, converged = graph(frames, cams)
    want = reference.batch(frames, cams)
    assert converged == [True, True] and len(got) == 2 and len(got[0]) > 0
    for g, w in zip(got, want, strict=True):
        _same(g, w)


def test_estimator_routes_same_size_host_frames_through_the_frame_graph():
    est = Estimator(CFG, GraphableEager(TinyModel(CFG.strides, K), CFG, device="cpu"), nms_iters=16)
    plain = Estimator(CFG, EagerBackend(TinyModel(CFG.strides, K), CFG, device="cpu"), nms_iters=16)
    assert est.uses_frame_graphs and not plain.uses_frame_graphs
    for seed in (3, 4):  # the second call reuses the bucket with a new frame
        got = est(image(seed=seed), CAMERA)
        assert est.timings.frame_graph
        _same(got, plain(image(seed=seed), CAMERA))
    assert list(est._frame_graphs) == [(1, 60, 80)]
    # Mixed sizes and device tensors take the step-by-step path.
    est.batch([image(), image(h=64, w=80)], [CAMERA, CAMERA])
    assert not est.timings.frame_graph
    est(torch.from_numpy(image()), CAMERA)  # a CPU tensor is a host frame
    assert est.timings.frame_graph


def test_frame_graph_frames_needing_more_nms_steps_are_decoded_exactly():
    est = Estimator(CFG, GraphableChain(), nms_iters=2)  # type: ignore[arg-type]
    got = est(image(), CAMERA)
    assert est.timings.frame_graph and est.timings.nms_fallbacks == 1
    want = Estimator(CFG, ChainBackend(), nms_iters=None)(image(), CAMERA)  # type: ignore[arg-type]
    assert len(got) == len(want) > 1
    np.testing.assert_allclose(got.joints_3d, want.joints_3d)


def test_bad_frames_are_refused_before_the_frame_graph():
    from das_core.engine.preprocess import ImageError

    est = Estimator(CFG, GraphableEager(TinyModel(CFG.strides, K), CFG, device="cpu"), nms_iters=16)
    with pytest.raises(ImageError, match="uint8"):
        est(image().astype(np.float32), CAMERA)
    with pytest.raises(ImageError, match="3 channels"):
        est(image()[..., :2], CAMERA)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_captured_frame_graph_equals_the_uncaptured_program_and_never_goes_stale():
    model = TinyModel(CFG.strides, K)
    backend = GraphableEager(model, CFG, device="cuda")
    est = Estimator(CFG, backend)
    plain = Estimator(CFG, EagerBackend(model, CFG, device="cuda"))
    for seed in (5, 6, 7):
        got = est(image(seed=seed), CAMERA)
        assert est.timings.frame_graph and est.frame_graph_error is None
        _same(got, plain(image(seed=seed), CAMERA))
    assert est._frame_graphs[(1, 60, 80)].graph is not None
