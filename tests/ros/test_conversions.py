"""Image / CompressedImage / CameraInfo conversions: every encoding, padded rows, byte order, bad input."""

from __future__ import annotations

from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from ros_helpers import camera_info

from das_ros.conversions import (
    ACCEPTED_ENCODINGS,
    MAX_PIXELS,
    CameraInfoError,
    ImageConversionError,
    compressed_to_rgb,
    image_to_array,
    image_to_rgb,
    intrinsics_from_camera_info,
    rgb_to_compressed_fields,
    rgb_to_image_fields,
)

H, W = 6, 8


def make_image(arr: np.ndarray, encoding: str, pad: int = 0, bigendian: bool = False,
               as_type: str = "bytes") -> SimpleNamespace:
    """Pack an (H, W, C) array as a ROS Image with ``pad`` extra bytes per row."""
    h = arr.shape[0]
    a = arr.astype(arr.dtype.newbyteorder(">" if bigendian else "<"))
    rows = a.reshape(h, -1).view(np.uint8)
    rows = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    data: object = rows.tobytes()
    if as_type == "numpy":
        data = rows.ravel()
    elif as_type == "array":
        import array

        data = array.array("B", rows.tobytes())
    return SimpleNamespace(height=h, width=arr.shape[1], encoding=encoding, is_bigendian=int(bigendian),
                           step=rows.shape[1], data=data)


@pytest.fixture
def rgb(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize("as_type", ["bytes", "numpy", "array"])
def test_rgb8_round_trips_with_and_without_row_padding(rgb: np.ndarray, pad: int, as_type: str) -> None:
    assert np.array_equal(image_to_rgb(make_image(rgb, "rgb8", pad, as_type=as_type)), rgb)


@pytest.mark.parametrize("encoding, build", [
    ("bgr8", lambda x: x[..., ::-1]),
    ("8UC3", lambda x: x[..., ::-1]),
    ("rgba8", lambda x: np.dstack([x, np.full(x.shape[:2], 7, np.uint8)])),
    ("bgra8", lambda x: np.dstack([x[..., ::-1], np.full(x.shape[:2], 7, np.uint8)])),
    ("8UC4", lambda x: np.dstack([x[..., ::-1], np.full(x.shape[:2], 7, np.uint8)])),
])
@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_give_the_same_rgb(rgb: np.ndarray, encoding: str, build, pad: int) -> None:
    assert np.array_equal(image_to_rgb(make_image(np.ascontiguousarray(build(rgb)), encoding, pad)), rgb)


@pytest.mark.parametrize("encoding", ["mono8", "8UC1"])
def test_mono8_is_replicated_to_three_channels(rgb: np.ndarray, encoding: str) -> None:
    gray = rgb[..., :1]
    out = image_to_rgb(make_image(np.ascontiguousarray(gray), encoding, pad=1))
    assert out.shape == (H, W, 3) and (out == gray).all()


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize("encoding", ["mono16", "16UC1"])
def test_mono16_respects_byte_order_and_keeps_the_high_byte(encoding: str, bigendian: bool) -> None:
    vals = (np.arange(H * W, dtype=np.uint16).reshape(H, W, 1) * 1000)
    img = make_image(vals, encoding, pad=2, bigendian=bigendian)
    assert np.array_equal(image_to_array(img), vals)
    assert np.array_equal(image_to_rgb(img)[..., 1], (vals[..., 0] >> 8).astype(np.uint8))


@pytest.mark.parametrize("encoding, order", [("rgb16", [0, 1, 2]), ("bgr16", [2, 1, 0])])
def test_rgb16_big_endian(rgb: np.ndarray, encoding: str, order: list[int]) -> None:
    v16 = rgb.astype(np.uint16) * 257  # high byte == low byte == the 8-bit value
    out = image_to_rgb(make_image(np.ascontiguousarray(v16[..., order]), encoding, bigendian=True))
    assert np.array_equal(out, rgb)


def _yuv_from_rgb_uniform(r: int, g: int, b: int) -> tuple[int, int, int]:
    """BT.601 limited-range Y, U (Cb), V (Cr): what cameras emit in 4:2:2 and OpenCV decodes."""
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return round(y), round(u), round(v)


@pytest.mark.parametrize("encoding", ["yuv422", "uyvy", "yuv422_yuy2", "yuyv"])
def test_yuv422_variants_decode_a_uniform_colour(encoding: str) -> None:
    y, u, v = _yuv_from_rgb_uniform(200, 120, 40)
    pair = [u, y, v, y] if encoding in ("yuv422", "uyvy") else [y, u, y, v]
    packed = np.tile(np.array(pair, np.uint8), (H, W // 2)).reshape(H, W, 2)
    out = image_to_rgb(make_image(packed, encoding, pad=4))
    assert out.shape == (H, W, 3)
    assert np.abs(out.astype(int) - [200, 120, 40]).max() <= 3


@pytest.mark.parametrize("encoding, pattern", [
    ("bayer_rggb8", ("R", "G", "G", "B")), ("bayer_bggr8", ("B", "G", "G", "R")),
    ("bayer_gbrg8", ("G", "B", "R", "G")), ("bayer_grbg8", ("G", "R", "B", "G")),
])
def test_bayer_patterns_decode_a_uniform_colour(encoding: str, pattern: tuple[str, ...]) -> None:
    colour = {"R": 220, "G": 90, "B": 30}
    h, w = 8, 8
    mosaic = np.zeros((h, w), np.uint8)
    for k, (dy, dx) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        mosaic[dy::2, dx::2] = colour[pattern[k]]
    out = image_to_rgb(make_image(mosaic[..., None], encoding))
    assert np.abs(out[2:-2, 2:-2].astype(int) - [220, 90, 30]).max() <= 2


def test_unknown_encoding_error_lists_the_accepted_ones(rgb: np.ndarray) -> None:
    with pytest.raises(ImageConversionError, match="unsupported image encoding '32FC1'.*rgb8.*yuv422"):
        image_to_rgb(make_image(rgb, "32FC1"))
    assert "bgr8" in ACCEPTED_ENCODINGS and "mono16" in ACCEPTED_ENCODINGS


@pytest.mark.parametrize("mutate, match", [
    (lambda m: setattr(m, "step", m.step - 1), "step 23 is smaller"),
    (lambda m: setattr(m, "data", m.data[:-1]), "has 143 bytes but step·height"),
    (lambda m: setattr(m, "data", m.data + b"x"), "has 145 bytes"),
    (lambda m: setattr(m, "height", 0), "zero size"),
    (lambda m: setattr(m, "width", 0), "zero size"),
    (lambda m: (setattr(m, "height", 1 << 14), setattr(m, "width", 1 << 14)), f"limit of {MAX_PIXELS}"),
])
def test_bad_geometry_is_refused_with_a_clear_error(rgb: np.ndarray, mutate, match: str) -> None:
    msg = make_image(rgb, "rgb8")
    mutate(msg)
    with pytest.raises(ImageConversionError, match=match):
        image_to_rgb(msg)


def test_odd_width_yuv_is_refused() -> None:
    with pytest.raises(ImageConversionError, match="even"):
        image_to_rgb(SimpleNamespace(height=2, width=3, encoding="yuyv", is_bigendian=0, step=6, data=bytes(12)))


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_round_trip(fmt: str) -> None:
    yy, xx = np.mgrid[0:16, 0:24]
    rgb = np.dstack([xx * 10, yy * 15, np.full_like(xx, 90)]).astype(np.uint8)  # smooth: JPEG keeps it
    fields = rgb_to_compressed_fields(rgb, fmt, quality=100)
    out = compressed_to_rgb(SimpleNamespace(**fields))
    assert out.shape == rgb.shape
    if fmt == "png":
        assert np.array_equal(out, rgb)
    else:
        assert np.abs(out.astype(int) - rgb).mean() < 4


def test_compressed_grey_png_and_16_bit_png_become_rgb8() -> None:
    g16 = (np.arange(H * W, dtype=np.uint16).reshape(H, W) * 900)
    ok, enc = cv2.imencode(".png", g16)
    out = compressed_to_rgb(SimpleNamespace(format="png", data=enc.tobytes()))
    assert out.dtype == np.uint8 and np.array_equal(out[..., 0], (g16 >> 8).astype(np.uint8))


@pytest.mark.parametrize("data, fmt, match", [
    (b"\xff\xd8\xff garbage", "jpeg", "corrupt"),
    (b"", "jpeg", "no data"),
    (b"\x00" * 16, "16UC1; compressedDepth png", "depth"),
])
def test_corrupt_compressed_data_raises(data: bytes, fmt: str, match: str) -> None:
    with pytest.raises(ImageConversionError, match=match):
        compressed_to_rgb(SimpleNamespace(format=fmt, data=data))


def test_rgb_to_image_fields_round_trip(rgb: np.ndarray) -> None:
    for enc in ("rgb8", "bgr8"):
        msg = SimpleNamespace(**rgb_to_image_fields(rgb, enc))
        assert np.array_equal(image_to_rgb(msg), rgb)


# --- CameraInfo --------------------------------------------------------------------------------------------


def test_camera_info_k_gives_intrinsics() -> None:
    k = intrinsics_from_camera_info(camera_info(64, 48, f=60.0), 64, 48)
    assert (k.fx, k.fy, k.cx, k.cy) == (60.0, 60.0, 31.5, 23.5)


def test_rectified_uses_p() -> None:
    info = camera_info(64, 48, f=60.0)
    info.p = [50.0, 0, 30.0, -5.0, 0, 51.0, 20.0, 0, 0, 0, 1, 0]
    k = intrinsics_from_camera_info(info, 64, 48, use_rectified=True)
    assert (k.fx, k.fy, k.cx, k.cy) == (50.0, 51.0, 30.0, 20.0)


@pytest.mark.parametrize("k0, match", [(0.0, "uncalibrated"), (float("nan"), "non-finite"),
                                       (float("inf"), "non-finite"), (-5.0, "positive")])
def test_uncalibrated_or_non_finite_k_is_refused(k0: float, match: str) -> None:
    info = camera_info()
    info.k = [k0, *info.k[1:]]
    with pytest.raises(CameraInfoError, match=match):
        intrinsics_from_camera_info(info, 64, 48)


def test_binning_and_roi_follow_the_pixel_centre_convention() -> None:
    info = camera_info(640, 480, f=600.0)  # cx = 319.5, cy = 239.5
    info.roi = SimpleNamespace(x_offset=100, y_offset=40, width=400, height=300, do_rectify=False)
    info.binning_x = info.binning_y = 2
    k = intrinsics_from_camera_info(info, 200, 150)
    assert k.fx == pytest.approx(300.0) and k.fy == pytest.approx(300.0)
    assert k.cx == pytest.approx((319.5 - 100 + 0.5) / 2 - 0.5)
    assert k.cy == pytest.approx((239.5 - 40 + 0.5) / 2 - 0.5)


def test_resized_image_scales_the_intrinsics() -> None:
    k = intrinsics_from_camera_info(camera_info(640, 480, f=600.0), 320, 240)
    assert k.fx == pytest.approx(300.0) and k.cx == pytest.approx((319.5 + 0.5) / 2 - 0.5)


def test_different_aspect_ratio_is_refused() -> None:
    with pytest.raises(CameraInfoError, match="aspect ratios differ"):
        intrinsics_from_camera_info(camera_info(640, 480), 640, 360)


def test_camera_info_without_size_is_trusted() -> None:
    k = intrinsics_from_camera_info(camera_info(0, 0, f=60.0), 64, 48)
    assert k.fx == 60.0
