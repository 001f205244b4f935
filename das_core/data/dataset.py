"""``DASDataset``: das annotation files → uint8 image tensors + :class:`Pose25D` in network pixels.

Also the batch ``collate`` (pad to the batch maximum, rounded up to the size divisor, DAS_SPEC §3.1) and
``normalise_batch``, which the consumer runs on its device; the aspect-ratio batch sampler is
:mod:`das_core.training.batching`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from das_core.config import AugmentConfig, InputConfig, ModelConfig
from das_core.data.annotations import AnnotationError, AnnotationSet, ImageAnnotation, read_annotations
from das_core.data.transforms import augment, resize_for_test
from das_core.pose25d import Pose25D, pose25d_from_3d
from das_core.skeletons import Skeleton, get_skeleton

__all__ = ["DASDataset", "collate", "load_image", "normalise_batch", "pose25d_from_annotation"]

log = logging.getLogger(__name__)


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB. Raises FileNotFoundError / ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode image {path} (not a JPEG/PNG/... file?)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def pose25d_from_annotation(img: ImageAnnotation, skeleton: Skeleton) -> Pose25D:
    """The people of one image as 2.5D labels in its *original* pixels.

    3D people: pinhole projection of ``joints_3d`` (or the stored ``joints_2d``, e.g. lens-distorted
    Panoptic projections); centre = root joint; ``root_depth = Z_root / sqrt(fx·fy)``; a 3D person whose
    root is not visible is dropped (it is background for the head, DAS_SPEC §11.20). 2D-only people:
    centre = the stored ``center`` (COCO hip midpoint), else the root joint if labelled, else the person
    is dropped. Joints outside the image are invisible.
    """
    k, root = skeleton.num_joints, skeleton.root
    out = []
    for p in img.persons:
        if p.joints_3d is not None:
            if not p.visible[root]:
                # DAS_SPEC §2.3 / §11.20: a 3D person whose root is not labelled is plain background
                continue
            g = pose25d_from_3d(p.joints_3d[None], p.visible[None], img.camera, root, img.width, img.height)
            if p.joints_2d is not None:
                uv = np.asarray(p.joints_2d, np.float32)[None]
                inside = ((uv[..., 0] >= -0.5) & (uv[..., 0] <= img.width - 0.5)
                          & (uv[..., 1] >= -0.5) & (uv[..., 1] <= img.height - 0.5))
                g.joints_uv = uv
                g.centers = uv[:, root].copy()
                g.visible = p.visible[None] & inside & (p.joints_3d[None, :, 2] > 1e-6)
        else:
            assert p.joints_2d is not None
            uv = np.asarray(p.joints_2d, np.float32)
            if p.center is not None:
                center = np.asarray(p.center, np.float32)
            elif p.visible[root]:
                center = uv[root]
            else:
                continue
            inside = (uv[:, 0] >= -0.5) & (uv[:, 0] <= img.width - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= img.height - 0.5)
            g = Pose25D(centers=center[None].astype(np.float32), root_depth=np.zeros((1,), np.float32),
                        joints_uv=uv[None], joints_dz=np.zeros((1, k), np.float32),
                        visible=(p.visible & inside)[None], has_depth=np.zeros((1,), bool))
        out.append(g)
    if not out:
        return Pose25D.empty(k)
    return Pose25D(*(np.concatenate([getattr(g, f) for g in out]) for f in
                     ("centers", "root_depth", "joints_uv", "joints_dz", "visible", "has_depth")))


class DASDataset(Dataset):
    """Samples of one or more das annotation files (same skeleton as the model).

    Each item is a dict:
        image: (3, H, W) uint8 RGB tensor, unpadded and not normalised: the consumer normalises on its
            device (:func:`normalise_batch`), so workers and shared memory move a quarter of float32's bytes.
        gt: :class:`Pose25D` in network-input pixels (root_depth = Z / f_eff).
        record: :class:`~das_core.camera.ResizeRecord` of the keep-ratio resize (original ↔ network pixels
            for the test pipeline; in training the affine/flip of ``transform`` come on top).
        transform: (3, 3) float64, original pixels → network pixels (all geometric steps).
        flipped: bool. camera: original :class:`Intrinsics`.
        joints_3d: (M, K, 3) original 3D joints of the image's 3D people (metres, camera frame).
        joints_3d_visible: (M, K) bool. image_id: str.

    In training (``train=True`` with an ``augment_cfg``), a sample with fewer than
    ``augment_cfg.min_persons`` people left after augmentation is rejected and another image of the same
    aspect group is drawn (DAS_SPEC §3.5).
    """

    def __init__(self, annotation_files: Sequence[str | os.PathLike[str]] | AnnotationSet | Sequence[AnnotationSet],
                 model_cfg: ModelConfig, augment_cfg: AugmentConfig | None = None, train: bool = False,
                 seed: int = 0) -> None:
        self.cfg = model_cfg
        self.augment_cfg = augment_cfg
        self.train = train
        self.seed = seed
        self.skeleton = get_skeleton(model_cfg.skeleton)
        if isinstance(annotation_files, AnnotationSet):
            annotation_files = [annotation_files]
        sets = [a if isinstance(a, AnnotationSet) else read_annotations(a) for a in annotation_files]
        for s in sets:
            if s.skeleton != self.skeleton.name:
                raise AnnotationError(
                    f"{s.root}: annotations use skeleton {s.skeleton!r}, the model is built for {self.skeleton.name!r}")
        self.sets = sets
        self.items: list[tuple[int, int]] = [(si, ii) for si, s in enumerate(sets) for ii in range(len(s.images))]
        if not self.items:
            raise ValueError("the dataset is empty (no images in the annotation files)")
        # 0 landscape (w >= h), 1 portrait: batches never mix them (DAS_SPEC §3.1)
        self.group_flags = np.array(
            [0 if sets[si].images[ii].width >= sets[si].images[ii].height else 1 for si, ii in self.items], np.uint8)

    def __len__(self) -> int:
        return len(self.items)

    def _generator(self) -> np.random.Generator:
        """A fresh stream per item, drawn from torch's RNG: DataLoader workers get distinct torch seeds, and a
        wrapper that calls ``torch.manual_seed`` before each item (the trainer's ``SeededDataset``) makes the
        augmentation a pure function of that seed (exact resume)."""
        item_seed = int(torch.randint(0, 2**62, (1,)).item())
        return np.random.default_rng([self.seed, item_seed])

    def annotation(self, index: int) -> tuple[AnnotationSet, ImageAnnotation]:
        si, ii = self.items[index]
        return self.sets[si], self.sets[si].images[ii]

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not (self.train and self.augment_cfg is not None):
            return self._make(index, None)
        rng = self._generator()
        same_group = None
        for _ in range(100):
            sample = self._make(index, rng)
            if len(sample["gt"]) >= self.augment_cfg.min_persons:
                return sample
            if same_group is None:
                same_group = np.flatnonzero(self.group_flags == self.group_flags[index])
            index = int(rng.choice(same_group))
        raise RuntimeError(
            f"could not draw a training sample with >= {self.augment_cfg.min_persons} people in 100 tries; "
            "check augment.min_persons and the annotations")

    def _make(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        ann, img = self.annotation(index)
        image = load_image(ann.image_path(img))
        if image.shape[:2] != (img.height, img.width):
            raise AnnotationError(f"{ann.image_path(img)}: image is {image.shape[1]}×{image.shape[0]}, "
                                  f"annotation says {img.width}×{img.height}")
        gt = pose25d_from_annotation(img, self.skeleton)
        inp = self.cfg.input
        if rng is not None and self.augment_cfg is not None:
            out = augment(image, gt, self.augment_cfg, self.skeleton, rng, inp.size_divisor, border=inp.mean)
        else:
            out = resize_for_test(image, gt, inp.long_side, inp.short_side, inp.size_divisor)
        tensor = torch.from_numpy(np.ascontiguousarray(out.image.transpose(2, 0, 1)))
        three_d = [p.joints_3d for p in img.persons if p.joints_3d is not None]
        vis_3d = [p.visible for p in img.persons if p.joints_3d is not None]
        k = self.skeleton.num_joints
        return {
            "image": tensor,
            "gt": out.gt,
            "record": out.record,
            "transform": out.transform,
            "flipped": out.flipped,
            "camera": img.camera,
            "joints_3d": np.stack(three_d) if three_d else np.zeros((0, k, 3)),
            "joints_3d_visible": np.stack(vis_3d) if vis_3d else np.zeros((0, k), bool),
            "image_id": img.id,
        }


def collate(samples: Sequence[dict[str, Any]], size_divisor: int = 32) -> dict[str, Any]:
    """Stack a batch: zero-pad images bottom/right to the batch max rounded up to ``size_divisor``.

    Returns ``images`` (B, 3, H, W) uint8 (normalise with :func:`normalise_batch`, which also zeroes the
    padding in normalised units), ``image_sizes`` [(h, w)] before padding, and lists
    ``gts``, ``records``, ``transforms``, ``flipped``, ``cameras``, ``joints_3d``, ``joints_3d_visible``,
    ``image_ids``.
    """
    if not samples:
        raise ValueError("collate needs at least one sample")
    sizes = [tuple(s["image"].shape[1:]) for s in samples]
    hmax = -(-max(h for h, _ in sizes) // size_divisor) * size_divisor
    wmax = -(-max(w for _, w in sizes) // size_divisor) * size_divisor
    images = samples[0]["image"].new_zeros((len(samples), 3, hmax, wmax))
    for i, s in enumerate(samples):
        h, w = sizes[i]
        images[i, :, :h, :w] = s["image"]
    return {
        "images": images,
        "image_sizes": sizes,
        "gts": [s["gt"] for s in samples],
        "records": [s["record"] for s in samples],
        "transforms": [s["transform"] for s in samples],
        "flipped": [s["flipped"] for s in samples],
        "cameras": [s["camera"] for s in samples],
        "joints_3d": [s["joints_3d"] for s in samples],
        "joints_3d_visible": [s["joints_3d_visible"] for s in samples],
        "image_ids": [s["image_id"] for s in samples],
    }


def normalise_batch(images: torch.Tensor, image_sizes: Sequence[tuple[int, int]], cfg: InputConfig) -> torch.Tensor:
    """(B, 3, H, W) uint8 collated batch → float32 normalised with ``cfg.mean``/``cfg.std`` (0..255 RGB), on the
    batch's device, with the inference preprocessing's cached mean and 1/std; the padding is 0 after
    normalisation (= the mean colour), as mmdet pads (§3.1)."""
    from das_core.engine.preprocess import normalisation_tensors

    mean, inv_std = normalisation_tensors(cfg, images.device)
    return zero_padding((images.to(torch.float32) - mean) * inv_std, image_sizes)


def zero_padding(x: torch.Tensor, image_sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
    """(B, C, H, W) → the same tensor, 0 beyond each image's (h, w) (in place)."""
    hp, wp = x.shape[-2:]
    for i, (h, w) in enumerate(image_sizes):
        if h < hp:
            x[i, :, h:, :] = 0
        if w < wp:
            x[i, :, :, w:] = 0
    return x
