"""Training augmentation and the test-time resize on :class:`~das_core.pose25d.Pose25D` labels (DAS_SPEC §3).

Every geometric step updates a 3×3 matrix ``transform`` mapping *original* image pixels to the current
image's pixels (pixel-centre convention of :mod:`das_core.camera`). Depth bookkeeping: ``root_depth`` is
always ``Z_root / f_eff`` where ``f_eff = f_orig · sqrt|det transform[:2, :2]|``; so a keep-ratio resize
divides it by ``sqrt(sx·sy)`` (§3.2) and a zoom that shows a window ``s`` times the canvas multiplies it by
``s`` (§3.5, the *intended* rule, for every person). ``dz`` (metres) is never rescaled (abs_dz).
Flip mirrors the scene (x ↦ W − 1 − x) and swaps left/right joints (§3.3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from das_core.camera import ResizeRecord
from das_core.config import AugmentConfig
from das_core.pose25d import Pose25D
from das_core.skeletons import Skeleton

__all__ = [
    "AugmentedSample",
    "affine_zoom",
    "augment",
    "drop_outside",
    "horizontal_flip",
    "photometric_distortion",
    "resize_keep_ratio",
    "resize_for_test",
]


@dataclass
class AugmentedSample:
    """An image and its labels after some transforms.

    image: (H, W, 3) uint8 RGB (as a camera delivers it: the loader ships uint8, a quarter of float32's
    bytes, and the trainer normalises on the device). gt: labels in pixels of ``image``.
    transform: (3, 3) original pixels → current pixels. record: the keep-ratio resize that was applied
    (size of the original image and of the resized one; padding is the collate function's business).
    flipped: the image was mirrored (lifting its labels gives the mirrored scene).
    """

    image: np.ndarray
    gt: Pose25D
    transform: np.ndarray
    record: ResizeRecord
    flipped: bool = False


def _apply(m: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(…, 2) pixels through a 3×3 affine matrix."""
    return uv @ m[:2, :2].T + m[:2, 2]


def _map_pose(gt: Pose25D, m: np.ndarray) -> Pose25D:
    return replace(gt, centers=_apply(m, gt.centers).astype(np.float32),
                   joints_uv=_apply(m, gt.joints_uv).astype(np.float32))


def resize_keep_ratio(sample: AugmentedSample, long_side: int, short_side: int, size_divisor: int = 32) -> AugmentedSample:
    """mmdet "range" keep-ratio resize (§3.2): 2D × (sx, sy) about pixel centres, root depth ÷ sqrt(sx·sy)."""
    h, w = sample.image.shape[:2]
    record = ResizeRecord.for_image(w, h, long_side, short_side, size_divisor)
    sx, sy = record.sx, record.sy
    if (record.resized_width, record.resized_height) != (w, h):
        image = cv2.resize(sample.image, (record.resized_width, record.resized_height), interpolation=cv2.INTER_LINEAR)
    else:
        image = sample.image
    m = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    gt = _map_pose(sample.gt, m)
    gt.root_depth = (sample.gt.root_depth / math.sqrt(sx * sy)).astype(np.float32)
    return AugmentedSample(image, gt, m @ sample.transform, record, sample.flipped)


def horizontal_flip(sample: AugmentedSample, skeleton: Skeleton) -> AugmentedSample:
    """x ↦ W − 1 − x, swap left/right joints and their visibility/depths (§3.3)."""
    w = sample.image.shape[1]
    m = np.array([[-1.0, 0.0, w - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    perm = skeleton.flip_permutation()
    gt = _map_pose(sample.gt, m)
    gt = replace(gt, joints_uv=gt.joints_uv[:, perm], joints_dz=gt.joints_dz[:, perm], visible=gt.visible[:, perm])
    return AugmentedSample(np.ascontiguousarray(sample.image[:, ::-1]), gt, m @ sample.transform, sample.record,
                           not sample.flipped)


def photometric_distortion(image: np.ndarray, rng: np.random.Generator, contrast_range: tuple[float, float],
                           saturation_range: tuple[float, float], hue_delta: float) -> np.ndarray:
    """mmdet PhotoMetricDistortion semantics (§3.4) on a uint8 RGB image; returns a new uint8 image.

    The arithmetic is float32 as in mmdet; the result is clipped to 0..255 and rounded (mmdet keeps the
    float values beyond that range: a real sensor saturates, so we do too).
    """
    img: np.ndarray = image.astype(np.float32, copy=True)
    if rng.random() < 0.5:
        img += float(rng.uniform(-32, 32))
    contrast_first = rng.random() < 0.5

    def contrast(x: np.ndarray) -> np.ndarray:
        if rng.random() < 0.5:
            x *= float(rng.uniform(*contrast_range))
        return x

    if contrast_first:
        img = contrast(img)
    do_sat, do_hue = rng.random() < 0.5, rng.random() < 0.5
    sat = float(rng.uniform(*saturation_range)) if do_sat else 1.0
    hue = float(rng.uniform(-hue_delta, hue_delta)) if do_hue else 0.0
    if do_sat or do_hue:
        # float32 HSV: H in degrees [0, 360), S in [0, 1], V in the input's range
        hsv = cv2.cvtColor(np.minimum(np.maximum(img, 0, out=img), 255, out=img), cv2.COLOR_RGB2HSV)
        hsv[..., 1] = np.clip(hsv[..., 1] * sat, 0, 1)
        hsv[..., 0] = np.mod(hsv[..., 0] + hue, 360.0)  # mmdet works on float HSV too: delta in degrees
        img = np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), np.float32)
    if not contrast_first:
        img = contrast(img)
    if rng.random() < 0.5:
        img = img[..., rng.permutation(3)]
    img += 0.5  # round half up; the clip keeps a sensor's saturation instead of uint8 wrap-around
    return np.ascontiguousarray(np.minimum(np.maximum(img, 0, out=img), 255, out=img).astype(np.uint8))


def affine_zoom(sample: AugmentedSample, angle: float, scale: float, shift: tuple[float, float],
                border: tuple[float, float, float], official_depth_bug: bool = False) -> AugmentedSample:
    """Global rot-scale-trans warp onto the same canvas (§3.5).

    A source window ``scale`` times the canvas, centred at the canvas centre + ``shift · (W/2, H/2)`` and
    rotated by ``angle`` (radians), fills the output; ``scale > 1`` zooms out (people look farther).
    Intended depth rule: every person's ``root_depth × scale``, dz unchanged. ``official_depth_bug``
    reproduces DAS_SPEC §11.13: only person 0 is scaled, root depth *and* its dz.
    """
    h, w = sample.image.shape[:2]
    c_out = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    c_src = c_out + np.array([shift[0] * w / 2.0, shift[1] * h / 2.0])
    ca, sa = math.cos(angle), math.sin(angle)
    # forward map: p_out = c_out + R(−angle) (p_src − c_src) / scale
    lin = np.array([[ca, sa], [-sa, ca]]) / scale
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = c_out - lin @ c_src
    # A uint8 image takes the border colour rounded: within 0.005 of 0 after normalisation.
    image = cv2.warpAffine(sample.image, m[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=tuple(float(round(b)) for b in border))
    gt = _map_pose(sample.gt, m)
    rd = gt.root_depth.copy()
    dz = gt.joints_dz.copy()
    if official_depth_bug:
        if len(rd):
            rd[0] *= scale
            dz[0] *= scale
    else:
        rd *= scale
    gt = replace(gt, root_depth=rd.astype(np.float32), joints_dz=dz.astype(np.float32))
    return AugmentedSample(image, gt, m @ sample.transform, sample.record, sample.flipped)


def drop_outside(gt: Pose25D, width: int, height: int) -> Pose25D:
    """Joints outside ``[-0.5, W-0.5] × [-0.5, H-0.5]`` become invisible; persons whose centre is outside go."""

    def inside(uv: np.ndarray) -> np.ndarray:
        return (uv[..., 0] >= -0.5) & (uv[..., 0] <= width - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= height - 0.5)

    gt = replace(gt, visible=gt.visible & inside(gt.joints_uv))
    return gt[inside(gt.centers)]


def _uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    return np.clip(np.asarray(image, np.float32) + 0.5, 0, 255).astype(np.uint8)


def resize_for_test(image: np.ndarray, gt: Pose25D, long_side: int, short_side: int, size_divisor: int) -> AugmentedSample:
    """Test pipeline (§3.6): keep-ratio resize only."""
    h, w = image.shape[:2]
    start = AugmentedSample(_uint8(image), gt, np.eye(3), ResizeRecord(w, h, w, h, w, h))
    out = resize_keep_ratio(start, long_side, short_side, size_divisor)
    out.gt = drop_outside(out.gt, out.image.shape[1], out.image.shape[0])
    return out


def augment(image: np.ndarray, gt: Pose25D, cfg: AugmentConfig, skeleton: Skeleton, rng: np.random.Generator,
            size_divisor: int = 32, border: tuple[float, float, float] = (123.675, 116.28, 103.53)) -> AugmentedSample:
    """The training pipeline: resize (random short side) → flip → photometric → affine → drop outside.

    ``image`` (H, W, 3) uint8 RGB (float 0..255 is rounded) and ``gt`` in its pixels. ``border`` is the fill colour of the
    affine warp (the normalisation mean, so it becomes 0 after normalisation).
    """
    h, w = image.shape[:2]
    sample = AugmentedSample(_uint8(image), gt, np.eye(3), ResizeRecord(w, h, w, h, w, h))
    lo, hi = cfg.short_side_range
    short = int(rng.integers(lo, hi + 1))
    sample = resize_keep_ratio(sample, cfg.long_side, short, size_divisor)
    if rng.random() < cfg.flip_prob:
        sample = horizontal_flip(sample, skeleton)
    if cfg.photometric:
        sample.image = photometric_distortion(sample.image, rng, cfg.contrast_range, cfg.saturation_range,
                                              cfg.hue_delta)
    if rng.random() < cfg.affine_prob:
        angle = float(rng.uniform(-cfg.rot_range, cfg.rot_range)) if cfg.rot_range > 0 else 0.0
        scale = float(rng.uniform(*cfg.scale_range))
        shift = (float(rng.normal(0.0, cfg.trans_std)), float(rng.normal(0.0, cfg.trans_std)))
        sample = affine_zoom(sample, angle, scale, shift, border, cfg.official_depth_aug_bug)
    sample.gt = drop_outside(sample.gt, sample.image.shape[1], sample.image.shape[0])
    return sample
