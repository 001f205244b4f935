"""Preprocessing (DAS_SPEC §3.6): keep-ratio resize, normalise, pad; validation of bad images."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from das_core.camera import ResizeRecord
from das_core.config import InputConfig
from das_core.engine.preprocess import MAX_IMAGE_PIXELS, ImageError, preprocess, preprocess_batch

CFG = InputConfig(short_side=96, long_side=160, size_divisor=32)
MEAN = np.array(CFG.mean, np.float32)
STD = np.array(CFG.std, np.float32)


def random_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth content, so bilinear implementations are compared on meaningful values
    small = rng.integers(0, 256, size=(max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def test_output_shape_record_and_zero_padding() -> None:
    image = random_image(75, 100)  # scale min(160/100, 96/75) = 1.28 → 128 × 96 → padded 128 × 96
    x, rec = preprocess(image, CFG)
    assert rec == ResizeRecord.for_image(100, 75, 160, 96, 32)
    assert (rec.resized_width, rec.resized_height) == (128, 96)
    assert x.shape == (1, 3, rec.padded_height, rec.padded_width) and x.dtype == torch.float32
    image = random_image(70, 100)  # scale 1.37 → 137 × 96 → padded 160 × 96
    x, rec = preprocess(image, CFG)
    assert (rec.resized_width, rec.padded_width) == (137, 160)
    assert x.shape == (1, 3, 96, 160)
    assert torch.count_nonzero(x[..., rec.resized_width :]) == 0  # pad value 0 = the mean colour


def test_constant_image_normalises_to_the_expected_values() -> None:
    colour = np.array([200, 100, 10], np.uint8)
    x, rec = preprocess(np.broadcast_to(colour, (50, 80, 3)), CFG)
    want = (colour - MEAN) / STD
    got = x[0, :, : rec.resized_height, : rec.resized_width]
    torch.testing.assert_close(got, torch.from_numpy(want.astype(np.float32))[:, None, None].expand_as(got))


@pytest.mark.parametrize("size", [(75, 100), (300, 410), (97, 61)])
def test_resize_matches_cv2_inter_linear(size: tuple[int, int]) -> None:
    image = random_image(*size, seed=1)
    x, rec = preprocess(image, CFG)
    ref = cv2.resize(image, (rec.resized_width, rec.resized_height), interpolation=cv2.INTER_LINEAR)
    got = x[0, :, : rec.resized_height, : rec.resized_width].permute(1, 2, 0).numpy() * STD + MEAN
    # cv2 works in fixed point on uint8 and rounds; allow one grey level
    assert np.abs(got - ref.astype(np.float32)).max() <= 1.0


def test_tensor_input_and_non_contiguous_numpy_give_the_same_result() -> None:
    image = random_image(60, 90, seed=2)
    x_np, _ = preprocess(image, CFG)
    x_t, _ = preprocess(torch.from_numpy(image.copy()), CFG)
    bgr = np.ascontiguousarray(image[..., ::-1])
    x_view, _ = preprocess(bgr[..., ::-1], CFG)  # negative strides
    torch.testing.assert_close(x_np, x_t)
    torch.testing.assert_close(x_np, x_view)


def test_batch_of_same_size_images_equals_single_calls() -> None:
    images = [random_image(60, 90, seed=s) for s in range(3)]
    xb, records = preprocess_batch(images, CFG)
    assert xb.shape[0] == 3 and len(records) == 3
    for img, xi in zip(images, xb, strict=True):
        torch.testing.assert_close(preprocess(img, CFG)[0][0], xi)


def test_batch_of_different_sizes_is_padded_to_the_largest() -> None:
    images = [random_image(60, 90), random_image(90, 60)]
    xb, records = preprocess_batch(images, CFG)
    assert xb.shape[-2:] == (max(r.padded_height for r in records), max(r.padded_width for r in records))
    x1, _ = preprocess(images[1], CFG)
    torch.testing.assert_close(xb[1, :, : x1.shape[2], : x1.shape[3]], x1[0])
    assert torch.count_nonzero(xb[1, :, :, x1.shape[3] :]) == 0


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10), np.uint8), "dims"),
        (np.zeros((10, 10, 4), np.uint8), "3 channels"),
        (np.zeros((3, 10, 10), np.uint8), "3 channels"),
        (np.zeros((10, 10, 3), np.float32), "uint8"),
        (torch.zeros((10, 10, 3), dtype=torch.float32), "uint8"),
        (np.zeros((0, 10, 3), np.uint8), "empty"),
        ([[[0, 0, 0]]], "numpy array or torch tensor"),
    ],
)
def test_bad_images_are_refused_with_a_clear_error(image: object, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        preprocess(image, CFG)  # type: ignore[arg-type]


def test_huge_image_is_refused_before_any_allocation() -> None:
    # a zero-stride view: 9000 × 9000 × 3 "pixels" backed by 3 bytes
    huge = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (9000, 9000, 3))
    assert 9000 * 9000 > MAX_IMAGE_PIXELS
    with pytest.raises(ImageError, match="too large"):
        preprocess(huge, CFG)
    strip = np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (1, 40000, 3))
    with pytest.raises(ImageError, match="too large"):
        preprocess(strip, CFG)


def test_empty_batch_and_bad_member_are_named() -> None:
    with pytest.raises(ImageError, match="empty"):
        preprocess_batch([], CFG)
    with pytest.raises(ImageError, match=r"images\[1\]"):
        preprocess_batch([random_image(20, 20), np.zeros((20, 20, 3), np.int16)], CFG)
