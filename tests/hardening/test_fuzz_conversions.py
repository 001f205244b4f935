"""Fuzzing Image / CompressedImage → RGB and CameraInfo → Intrinsics.

Contract: every input gives a valid result or one of the allowed, typed errors:

* images: ``ImageConversionError`` (a ``ValueError``) — nothing else, whatever the encoding, size, step,
  byte order, data type, truncation or corruption;
* CameraInfo: ``CameraError`` (``CameraInfoError`` is a subclass) — and a returned ``Intrinsics`` is finite
  with positive focal lengths;
* huge images are refused from the header fields (Image.width/height, PNG IHDR, JPEG SOF) against
  ``MAX_PIXELS`` before the pixel data is read or decoded.
"""

from __future__ import annotations

import array
import math
import tracemalloc
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from fuzz_helpers import at_least, count, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from das_core.camera import CameraError, Intrinsics
from das_ros import conversions
from das_ros.conversions import (
    ACCEPTED_ENCODINGS,
    MAX_PIXELS,
    CameraInfoError,
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
    intrinsics_from_camera_info,
)

# bytes per pixel of each accepted encoding (channels · itemsize)
BPP = {e: conversions._ENCODINGS[e][0] * conversions._ENCODINGS[e][1].itemsize for e in ACCEPTED_ENCODINGS}


def _as_container(raw: bytes, kind: str) -> object:
    return {
        "bytes": raw,
        "bytearray": bytearray(raw),
        "numpy": np.frombuffer(raw, np.uint8).copy(),
        "array": array.array("B", raw),
        "memoryview": memoryview(raw),
        "list": list(raw),
    }[kind]


@st.composite
def image_messages(draw: st.DrawFn) -> tuple[SimpleNamespace, bool]:
    """Image messages, mostly almost right: the size/step/data relations are broken one at a time."""
    enc = draw(st.sampled_from(ACCEPTED_ENCODINGS) | st.sampled_from(["", "RGB8", "jpeg", "32FC1", "rgb8 ", "bayer_xyz8"]))
    width = draw(st.integers(1, 24) | st.integers(-3, 0) | st.integers(25, 4000))
    height = draw(st.integers(1, 24) | st.integers(-3, 0) | st.integers(25, 4000))
    bpp = BPP.get(enc, 3)
    row = max(width, 0) * bpp
    step = draw(st.just(row) | st.integers(row, row + 9) | st.integers(-4, row + 4))
    nbytes = max(step, 0) * max(height, 0)
    if nbytes > 200_000:  # keep generated buffers small: sizes stay consistent only for small images
        nbytes = draw(st.integers(0, 64))
    delta = draw(st.just(0) | st.integers(-7, 7))
    size = max(0, nbytes + delta)
    raw = draw(st.binary(min_size=size, max_size=size)) if size <= 64 else bytes(
        np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8))
    kind = draw(st.sampled_from(["bytes", "bytearray", "numpy", "array", "memoryview", "list"]))
    big = draw(st.booleans())
    msg = SimpleNamespace(encoding=enc, width=width, height=height, step=step, is_bigendian=int(big),
                          data=_as_container(raw, kind))
    return msg, (enc in BPP and width > 0 and height > 0 and step >= row and len(raw) == step * height)


@at_least("Image → RGB", 3000)
@fuzz_settings(max_examples=3000)
@given(image_messages())
def test_fuzz_image_gives_rgb_or_image_conversion_error(case: tuple[SimpleNamespace, bool]) -> None:
    count("Image → RGB")
    msg, consistent = case
    try:
        rgb = image_to_rgb(msg)
    except ImageConversionError as exc:
        assert str(exc)
        # a consistent message may only be refused for an encoding-specific rule (odd YUV width, tiny Bayer)
        if consistent:
            assert msg.encoding in conversions._YUV422 or msg.encoding.startswith("bayer_"), str(exc)
        return
    assert consistent, "an inconsistent message was accepted"
    assert rgb.shape == (msg.height, msg.width, 3) and rgb.dtype == np.uint8 and rgb.flags.c_contiguous


@at_least("Image huge header", 300)
@fuzz_settings(max_examples=300)
@given(width=st.integers(1, 2**31 - 1), height=st.integers(1, 2**31 - 1),
       enc=st.sampled_from(ACCEPTED_ENCODINGS))
def test_fuzz_huge_image_header_is_refused_before_reading_data(width: int, height: int, enc: str) -> None:
    count("Image huge header")
    if width * height <= MAX_PIXELS:
        width = MAX_PIXELS // height + 1
    msg = SimpleNamespace(encoding=enc, width=width, height=height, step=width * BPP[enc], is_bigendian=0,
                          data=_Untouchable())
    with pytest.raises(ImageConversionError, match="MAX_PIXELS"):
        image_to_rgb(msg)


class _Untouchable:
    """Image data that fails the test if anything reads it (the size check must come first)."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"image data was accessed ({name}) before the size check")

    def __len__(self) -> int:
        raise AssertionError("image data was accessed (len) before the size check")


def test_huge_image_is_refused_without_allocating() -> None:
    """A 60 000 × 60 000 rgb8 header with 16 bytes of data: refused, and < 1 MB allocated meanwhile."""
    msg = SimpleNamespace(encoding="rgb8", width=60_000, height=60_000, step=180_000, is_bigendian=0,
                          data=b"\0" * 16)
    tracemalloc.start()
    try:
        with pytest.raises(ImageConversionError, match="MAX_PIXELS"):
            image_to_rgb(msg)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


# --- CompressedImage ----------------------------------------------------------------------------------

_RNG = np.random.default_rng(0)
_SEEDS: list[bytes] = []
for _h, _w in ((8, 8), (13, 21), (32, 17)):
    _img = _RNG.integers(0, 256, (_h, _w, 3), dtype=np.uint8)
    _SEEDS.append(cv2.imencode(".png", _img)[1].tobytes())
    _SEEDS.append(cv2.imencode(".jpg", _img)[1].tobytes())
    _SEEDS.append(cv2.imencode(".jpg", _img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes())
_SEEDS.append(cv2.imencode(".png", _RNG.integers(0, 65535, (9, 7), dtype=np.uint16))[1].tobytes())
_SEEDS.append(cv2.imencode(".png", _RNG.integers(0, 256, (9, 7, 4), dtype=np.uint8))[1].tobytes())
_SEEDS.append(cv2.imencode(".bmp", _RNG.integers(0, 256, (9, 7, 3), dtype=np.uint8))[1].tobytes())


def png_header(width: int, height: int, tail: bytes = b"") -> bytes:
    """A PNG signature + IHDR claiming width × height (8-bit RGB), then ``tail``."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + tail


def jpeg_header(width: int, height: int, tail: bytes = b"") -> bytes:
    """SOI + an APP0 segment + a baseline SOF0 claiming width × height, then ``tail``."""
    import struct

    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof + tail


@st.composite
def compressed_payloads(draw: st.DrawFn) -> bytes:
    how = draw(st.sampled_from(["seed", "truncate", "flip", "splice", "random", "header"]))
    seed = draw(st.sampled_from(_SEEDS))
    if how == "seed":
        return seed
    if how == "truncate":
        return seed[: draw(st.integers(0, len(seed) - 1))]
    if how == "flip":
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "splice":
        i = draw(st.integers(0, len(seed)))
        return seed[:i] + draw(st.binary(max_size=40)) + seed[i:]
    if how == "random":
        return draw(st.binary(max_size=200))
    png = draw(st.booleans())
    top = 2**31 - 1 if png else 65535
    w, h = draw(st.integers(0, 70_000) | st.just(top)), draw(st.integers(0, 70_000) | st.just(top))
    maker = png_header if png else jpeg_header
    return maker(min(w, top), min(h, top), draw(st.binary(max_size=30)))


@at_least("CompressedImage → RGB", 1800)
@fuzz_settings(max_examples=1800)
@given(payload=compressed_payloads(), fmt=st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "", "x"]),
       kind=st.sampled_from(["bytes", "numpy", "array"]))
def test_fuzz_compressed_gives_rgb_or_image_conversion_error(payload: bytes, fmt: str, kind: str) -> None:
    count("CompressedImage → RGB")
    msg = SimpleNamespace(format=fmt, data=_as_container(payload, kind))
    try:
        rgb = compressed_to_rgb(msg)
    except ImageConversionError as exc:
        assert str(exc)
        return
    assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
    assert 0 < rgb.shape[0] * rgb.shape[1] <= MAX_PIXELS


@at_least("CompressedImage huge header", 200)
@fuzz_settings(max_examples=200)
@given(width=st.integers(1, 65535), height=st.integers(1, 65535), png=st.booleans())
def test_fuzz_huge_compressed_header_is_refused_before_decoding(
    width: int, height: int, png: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    count("CompressedImage huge header")
    if width * height <= MAX_PIXELS:
        width, height = 65535, max(height, MAX_PIXELS // 65535 + 1)

    def no_decode(*args: object) -> None:
        raise AssertionError("the decoder ran before the header size check")

    monkeypatch.setattr(conversions.cv2, "imdecode", no_decode)
    data = (png_header if png else jpeg_header)(width, height, b"\0" * 8)
    with pytest.raises(ImageConversionError, match="MAX_PIXELS"):
        compressed_to_rgb(SimpleNamespace(format="png" if png else "jpeg", data=data))


def test_formats_without_a_checkable_header_are_refused() -> None:
    bmp = _SEEDS[-1]
    assert cv2.imdecode(np.frombuffer(bmp, np.uint8), cv2.IMREAD_UNCHANGED) is not None  # OpenCV would decode it
    with pytest.raises(ImageConversionError, match="neither JPEG nor PNG"):
        compressed_to_rgb(SimpleNamespace(format="bmp", data=bmp))


# --- CameraInfo ---------------------------------------------------------------------------------------

_floats = (st.floats(allow_nan=True, allow_infinity=True) | st.floats(-2000, 2000) | st.sampled_from(
    [0.0, -0.0, 1e-300, -1.0, 1e300, 600.0, 319.5]))


@st.composite
def camera_infos(draw: st.DrawFn) -> tuple[SimpleNamespace, int | None, int | None, bool]:
    rect = draw(st.booleans())
    n = 12 if rect else 9
    good = [600.0, 0.0, 319.5, 0.0, 600.0, 239.5, 0.0, 0.0, 1.0]
    good_p = [600.0, 0.0, 319.5, 0.0, 0.0, 600.0, 239.5, 0.0, 0.0, 0.0, 1.0, 0.0]
    vals = list(good_p if rect else good)
    for _ in range(draw(st.integers(0, 4))):
        vals[draw(st.integers(0, n - 1))] = draw(_floats)
    if draw(st.integers(0, 9)) == 0:
        vals = vals[: draw(st.integers(0, n - 1))] if draw(st.booleans()) else vals + [1.0]
    ints = st.integers(-2, 5000) | st.sampled_from([0, 640, 480, 2**31 - 1])
    roi = SimpleNamespace(x_offset=draw(st.integers(0, 5000)), y_offset=draw(st.integers(0, 5000)),
                          width=draw(ints), height=draw(ints), do_rectify=False)
    info = SimpleNamespace(k=vals if not rect else good, p=vals if rect else good_p, width=draw(ints),
                           height=draw(ints), binning_x=draw(st.integers(-1, 8)), binning_y=draw(st.integers(-1, 8)),
                           roi=roi)
    iw = draw(st.none() | st.integers(1, 5000))
    ih = draw(st.none() | st.integers(1, 5000))
    return info, iw, ih, rect


@at_least("CameraInfo → Intrinsics", 1500)
@fuzz_settings(max_examples=1500)
@given(camera_infos())
def test_fuzz_camera_info_gives_finite_intrinsics_or_camera_error(
    case: tuple[SimpleNamespace, int | None, int | None, bool],
) -> None:
    count("CameraInfo → Intrinsics")
    info, iw, ih, rect = case
    try:
        k = intrinsics_from_camera_info(info, iw, ih, use_rectified=rect)
    except CameraError as exc:  # CameraInfoError, or CameraError from scaling to absurd values
        assert str(exc)
        return
    assert isinstance(k, Intrinsics)
    assert all(math.isfinite(v) for v in (k.fx, k.fy, k.cx, k.cy, k.skew))
    assert k.fx > 0 and k.fy > 0


def test_uncalibrated_and_non_finite_camera_info_name_the_problem() -> None:
    base = dict(p=[0.0] * 12, width=640, height=480, binning_x=0, binning_y=0, roi=None)
    with pytest.raises(CameraInfoError, match="uncalibrated"):
        intrinsics_from_camera_info(SimpleNamespace(k=[0.0] * 9, **base))
    with pytest.raises(CameraInfoError, match="non-finite"):
        intrinsics_from_camera_info(SimpleNamespace(k=[math.nan, 0, 1, 0, 600, 1, 0, 0, 1], **base))
    with pytest.raises(CameraError, match="positive"):
        intrinsics_from_camera_info(SimpleNamespace(k=[-600.0, 0, 1, 0, 600, 1, 0, 0, 1], **base))
