"""The whole label → output chain, end to end (issue 15.8).

A das annotation file is read by ``DASDataset`` (test pipeline: keep-ratio resize), its 2.5D labels go
through ``assign_targets``, the targets are turned into the dense outputs a perfect network would give,
and ``decode`` with the annotation's original intrinsics must give back the annotated 3D joints and their
projections. Every convention of the chain meets here: pixel centres, the resize (up and down, with
sx ≠ sy from rounding), ``Z / f_eff`` with ``f_eff = sqrt(fx·fy)`` of the network input, ``depth_factor``,
``z_norm``, stride units and the level-major cell order.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from das_core.camera import Intrinsics
from das_core.config import DecodeConfig, InputConfig, ModelConfig
from das_core.data.annotations import (
    AnnotationSet,
    ImageAnnotation,
    PersonAnnotation,
    read_annotations,
    write_annotations,
)
from das_core.data.dataset import DASDataset
from das_core.engine.decode import decode
from das_core.model.dense import cell_centers
from das_core.model.outputs import DenseOutputs
from das_core.skeletons import get_skeleton
from das_core.training.targets import assign_targets

SKELETON = get_skeleton("panoptic15")
CFG = ModelConfig(input=InputConfig(short_side=128, long_side=224),
                  decode=DecodeConfig(score_thr=0.05, nms_thr=0.5))


def _people(camera: Intrinsics, width: int, height: int, rng: np.random.Generator) -> list[PersonAnnotation]:
    """Three people at 2.5–7 m, spread across the image, every joint visible and inside it."""
    people = []
    for u_frac, z in ((0.25, 2.5), (0.55, 4.5), (0.8, 7.0)):
        root_uv = np.array([u_frac * width, 0.55 * height])
        root = camera.backproject(root_uv, np.array(z))
        body = np.stack([rng.uniform(-0.25, 0.25, 15), rng.uniform(-0.7, 0.9, 15), rng.uniform(-0.2, 0.2, 15)], 1)
        body[SKELETON.root] = 0.0
        # small people for a small image: at most 40 % of its height and 15 % of its width
        body *= min(1.0, 0.4 * height * z / (camera.fy * 1.6), 0.15 * width * z / (camera.fx * 0.5))
        joints = root + body
        uv = camera.project(joints)
        assert ((uv >= 0) & (uv <= [width - 1, height - 1])).all(), "fixture: a joint left the image"
        people.append(PersonAnnotation(visible=np.ones(15, bool), joints_3d=joints))
    return people


def _annotation_file(folder: Path, width: int, height: int, camera: Intrinsics) -> Path:
    rng = np.random.default_rng(width)
    cv2.imwrite(str(folder / "frame.png"), np.full((height, width, 3), 90, np.uint8))
    image = ImageAnnotation(id="frame", file="frame.png", width=width, height=height, camera=camera,
                            persons=_people(camera, width, height, rng))
    path = folder / "annotations.json"
    write_annotations(path, AnnotationSet(skeleton=SKELETON.name, images=[image]))
    return path


def _perfect_outputs(targets, depth_factor: float) -> DenseOutputs:  # noqa: ANN001 - Targets
    """What a perfect network gives: a confident centre on every positive cell (its centerness target),
    the targets' root depth (÷ depth_factor, as ``to_dense`` does), offsets and a small sigma."""
    scores = torch.where(targets.positive, 0.5 + 0.5 * targets.centerness, torch.zeros_like(targets.centerness))
    sigma = torch.full_like(targets.offsets, 0.05)
    return DenseOutputs(scores, targets.root_depth / depth_factor, targets.offsets, sigma)


@pytest.mark.parametrize(
    ("width", "height", "camera"),
    [
        # down-scaled ×0.427 (401×301 → 171×128: sx ≠ sy by rounding), fx ≠ fy, principal point off-centre
        (401, 301, Intrinsics(fx=420.0, fy=445.0, cx=185.3, cy=162.7)),
        # up-scaled ×1.7 (100×75 → 171×128), strongly non-square pixels and the principal point near a corner
        (100, 75, Intrinsics(fx=95.0, fy=120.0, cx=41.2, cy=30.9)),
        # portrait, up-scaled ×1.4 to the long side's limit (90×160 → 126×224, sx = sy)
        (90, 160, Intrinsics(fx=150.0, fy=140.0, cx=47.5, cy=83.0)),
    ],
)
def test_annotation_through_targets_and_perfect_outputs_decodes_to_the_3d_ground_truth(
    tmp_path: Path, width: int, height: int, camera: Intrinsics
) -> None:
    path = _annotation_file(tmp_path, width, height, camera)
    truth = read_annotations(path).images[0]
    sample = DASDataset([path], CFG)[0]
    record = sample["record"]
    assert (record.width, record.height) == (width, height)
    assert record.sx != 1.0 and record.sy != 1.0  # the labels really were resized

    sizes = [(math.ceil(record.padded_height / s), math.ceil(record.padded_width / s)) for s in CFG.strides]
    targets = assign_targets([sample["gt"]], sizes, CFG.strides, CFG)
    assert set(targets.person_index[targets.positive].tolist()) == {0, 1, 2}  # everyone has positive cells
    dense = _perfect_outputs(targets, CFG.depth_factor)
    points, point_strides = cell_centers(sizes, CFG.strides, "cpu")
    persons = decode(dense, points, point_strides, sizes, [record], [sample["camera"]], CFG)[0].to_persons()

    assert len(persons.scores) == 3  # one per person: its 3×3 block collapses in OKS-NMS
    want_3d = np.stack([p.joints_3d for p in truth.persons])
    order = [int(np.argmin(np.abs(want_3d[:, SKELETON.root, 2] - z))) for z in persons.joints_3d[:, SKELETON.root, 2]]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(persons.joints_3d, want_3d[order], atol=5e-4)  # metres (float32 chain)
    np.testing.assert_allclose(persons.joints_2d, camera.project(want_3d[order]), atol=5e-3)  # original pixels
