"""``sensor_msgs`` Image / CompressedImage / CameraInfo ↔ numpy and ``Intrinsics`` (no rclpy import).

Works on duck-typed message objects: real rclpy messages (``data`` is ``array.array`` / ``bytes``), rosbags
dataclasses (``data`` is a numpy uint8 array) and ``types.SimpleNamespace`` in tests. Only attribute names
of the ROS 2 messages are used (``height, width, encoding, is_bigendian, step, data``; ``format``;
``k, p, width, height, binning_x, binning_y, roi``).

Every failed image conversion raises ``ImageConversionError``; every unusable CameraInfo raises
``CameraInfoError`` (a ``das_core.camera.CameraError``). Messages name the encoding / field / value.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from das_core.camera import CameraError, Intrinsics, scale_to_image

__all__ = [
    "ACCEPTED_ENCODINGS",
    "MAX_PIXELS",
    "CameraInfoError",
    "ImageConversionError",
    "UncalibratedCameraError",
    "compressed_to_rgb",
    "image_to_array",
    "image_to_rgb",
    "intrinsics_from_camera_info",
    "rgb_to_compressed_fields",
    "rgb_to_image_fields",
]

# Largest image accepted (pixels), checked before any allocation: 2^26 ≈ 67 Mpx, e.g. 8192 × 8192.
# Larger "images" are almost always a corrupt header (height·width overflowing a driver's buffer).
MAX_PIXELS = 1 << 26


class ImageConversionError(ValueError):
    """An image message cannot be turned into an RGB array (encoding, size, step, data or codec problem)."""


class CameraInfoError(CameraError):
    """A CameraInfo cannot give intrinsics for the image (uncalibrated, non-finite, inconsistent size)."""


class UncalibratedCameraError(CameraInfoError):
    """K[0] (or P[0]) is 0: the CameraInfo.msg convention for an uncalibrated camera (many UVC drivers).
    The one CameraInfo problem that ``fallback_hfov_deg`` may stand in for."""


# encoding → (channels, numpy dtype, cv2 conversion code to RGB or None, channel order note)
# OpenCV Bayer names refer to the 2×2 block starting at the second row/column, hence the shifted names
# (the same mapping cv_bridge uses): ROS bayer_rggb8 ↔ OpenCV BayerBG.
_ENCODINGS: dict[str, tuple[int, np.dtype, int | None]] = {
    "rgb8": (3, np.dtype(np.uint8), None),
    "bgr8": (3, np.dtype(np.uint8), cv2.COLOR_BGR2RGB),
    "rgba8": (4, np.dtype(np.uint8), cv2.COLOR_RGBA2RGB),
    "bgra8": (4, np.dtype(np.uint8), cv2.COLOR_BGRA2RGB),
    "mono8": (1, np.dtype(np.uint8), cv2.COLOR_GRAY2RGB),
    "8UC1": (1, np.dtype(np.uint8), cv2.COLOR_GRAY2RGB),
    "8UC3": (3, np.dtype(np.uint8), cv2.COLOR_BGR2RGB),  # OpenCV's default channel order is BGR
    "8UC4": (4, np.dtype(np.uint8), cv2.COLOR_BGRA2RGB),
    "rgb16": (3, np.dtype(np.uint16), None),
    "bgr16": (3, np.dtype(np.uint16), cv2.COLOR_BGR2RGB),
    "rgba16": (4, np.dtype(np.uint16), cv2.COLOR_RGBA2RGB),
    "bgra16": (4, np.dtype(np.uint16), cv2.COLOR_BGRA2RGB),
    "mono16": (1, np.dtype(np.uint16), cv2.COLOR_GRAY2RGB),
    "16UC1": (1, np.dtype(np.uint16), cv2.COLOR_GRAY2RGB),
    # Packed 4:2:2, 2 bytes per pixel. ROS "yuv422" is UYVY (sensor_msgs/image_encodings.hpp).
    "yuv422": (2, np.dtype(np.uint8), cv2.COLOR_YUV2RGB_UYVY),
    "uyvy": (2, np.dtype(np.uint8), cv2.COLOR_YUV2RGB_UYVY),
    "yuv422_yuy2": (2, np.dtype(np.uint8), cv2.COLOR_YUV2RGB_YUYV),
    "yuyv": (2, np.dtype(np.uint8), cv2.COLOR_YUV2RGB_YUYV),
    "bayer_rggb8": (1, np.dtype(np.uint8), cv2.COLOR_BayerBG2RGB),
    "bayer_bggr8": (1, np.dtype(np.uint8), cv2.COLOR_BayerRG2RGB),
    "bayer_gbrg8": (1, np.dtype(np.uint8), cv2.COLOR_BayerGR2RGB),
    "bayer_grbg8": (1, np.dtype(np.uint8), cv2.COLOR_BayerGB2RGB),
}
ACCEPTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
_YUV422 = {"yuv422", "uyvy", "yuv422_yuy2", "yuyv"}


def _buffer(data: Any) -> np.ndarray:
    """Message ``data`` (bytes, bytearray, array.array('B'), memoryview, numpy, list) → flat uint8 view."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    try:
        return np.frombuffer(memoryview(data), dtype=np.uint8)
    except TypeError as exc:
        raise ImageConversionError(f"image data of type {type(data).__name__} is not a byte buffer") from exc


def _check_size(width: int, height: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageConversionError(f"{what} has zero size ({width}×{height})")
    if width * height > MAX_PIXELS:
        raise ImageConversionError(
            f"{what} is {width}×{height} = {width * height} pixels, more than the limit of {MAX_PIXELS} "
            "(das_ros.conversions.MAX_PIXELS); the header is probably corrupt"
        )


def image_to_array(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/Image`` → (H, W, C) array in its own encoding and dtype (a copy, native byte order).

    Handles row padding (``step`` > width · bytes per pixel) and ``is_bigendian`` for 16-bit encodings.
    YUV 4:2:2 encodings give (H, W, 2) uint8. Raises ``ImageConversionError`` for an unknown encoding, zero
    or enormous size, a ``step`` too small for the width, or ``data`` whose length is not ``step · height``.
    """
    enc = str(msg.encoding)
    if enc not in _ENCODINGS:
        raise ImageConversionError(
            f"unsupported image encoding {enc!r}; accepted: {', '.join(ACCEPTED_ENCODINGS)}"
        )
    channels, dtype, _ = _ENCODINGS[enc]
    width, height, step = int(msg.width), int(msg.height), int(msg.step)
    _check_size(width, height, f"image ({enc})")
    if enc in _YUV422 and width % 2:
        raise ImageConversionError(f"{enc} packs pixel pairs, so the width must be even, got {width}")
    if enc.startswith("bayer_") and (width < 2 or height < 2):
        raise ImageConversionError(f"{enc} needs at least 2×2 pixels, got {width}×{height}")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f"step {step} is smaller than width·bytes per pixel = {width}·{channels * dtype.itemsize} = {row_bytes}"
        )
    buf = _buffer(msg.data)
    if buf.size != step * height:
        raise ImageConversionError(
            f"image data has {buf.size} bytes but step·height = {step}·{height} = {step * height}"
        )
    rows = buf.reshape(height, step)[:, :row_bytes]
    big = bool(msg.is_bigendian)
    typed_dtype = dtype.newbyteorder(">" if big else "<") if dtype.itemsize > 1 else dtype
    arr = np.ascontiguousarray(rows).view(typed_dtype).reshape(height, width, channels)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def image_to_rgb(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/Image`` → (H, W, 3) uint8 RGB, the estimator's input.

    Accepted encodings: see ``ACCEPTED_ENCODINGS`` (rgb8, bgr8, rgba8, bgra8, mono8, 8UC1/3/4 (BGR order),
    16-bit rgb/bgr/rgba/bgra/mono (scaled to 8 bits by dropping the low byte, like cv_bridge),
    yuv422 = uyvy, yuv422_yuy2 = yuyv, bayer_rggb8/bggr8/gbrg8/grbg8). Others raise
    ``ImageConversionError`` with that list.
    """
    arr = image_to_array(msg)
    _, dtype, code = _ENCODINGS[str(msg.encoding)]
    if dtype.itemsize == 2:
        arr = (arr >> 8).astype(np.uint8)
    if code is None:
        return np.ascontiguousarray(arr)
    src = arr[..., 0] if arr.shape[2] == 1 else arr
    return cv2.cvtColor(np.ascontiguousarray(src), code)


_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, extended, progressive, lossless, hierarchical, arithmetic).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _compressed_header_size(buf: np.ndarray, fmt: str) -> tuple[str, int, int]:
    """(kind, width, height) read from a PNG IHDR or JPEG SOF header, without decoding any pixels.

    Only JPEG and PNG are accepted (what image_transport's ``compressed`` plugin publishes): other formats
    OpenCV could decode (BMP, TIFF, WebP, …) cannot be size-checked before decoding, so they are refused.
    """
    head = buf[:32].tobytes()
    if head.startswith(_PNG_MAGIC):
        if len(head) < 24 or head[12:16] != b"IHDR":
            raise ImageConversionError(f"corrupt PNG (format {fmt!r}): no IHDR header")
        return "PNG", int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    if head.startswith(b"\xff\xd8"):
        data, n, i = buf, int(buf.size), 2
        while i + 4 <= n:
            if data[i] != 0xFF:
                break
            marker = int(data[i + 1])
            if marker == 0xFF:  # fill byte
                i += 1
                continue
            if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length field
                i += 2
                continue
            if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
                break
            length = (int(data[i + 2]) << 8) | int(data[i + 3])
            if marker in _JPEG_SOF:
                if i + 9 > n or length < 7:
                    break
                h = (int(data[i + 5]) << 8) | int(data[i + 6])
                w = (int(data[i + 7]) << 8) | int(data[i + 8])
                return "JPEG", w, h
            i += 2 + length
        raise ImageConversionError(f"corrupt JPEG (format {fmt!r}, {n} bytes): no frame header")
    raise ImageConversionError(
        f"compressed image (format {fmt!r}) is neither JPEG nor PNG (first bytes {head[:8]!r}); "
        "only JPEG and PNG are accepted"
    )


def compressed_to_rgb(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (JPEG or PNG) → (H, W, 3) uint8 RGB.

    ``compressedDepth`` payloads (a depth-specific header before the PNG) are rejected. 16-bit PNGs are
    scaled to 8 bits. The size in the PNG IHDR / JPEG SOF header is checked against ``MAX_PIXELS`` before
    decoding (nothing is allocated for a huge image), and the decoded image again. Other formats and corrupt
    data raise ``ImageConversionError``.
    """
    fmt = str(getattr(msg, "format", ""))
    if "compresseddepth" in fmt.lower():
        raise ImageConversionError(f"compressed depth images are not colour images (format {fmt!r})")
    buf = _buffer(msg.data)
    if buf.size == 0:
        raise ImageConversionError(f"compressed image (format {fmt!r}) has no data")
    # Refuse a huge image from its header, before the decoder allocates it (a 40-byte PNG can claim 2^30 px).
    kind, hw, hh = _compressed_header_size(buf, fmt)
    _check_size(hw, hh, f"{kind} header (format {fmt!r})")
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageConversionError(f"cannot decode compressed image (format {fmt!r}): {exc}") from exc
    if img is None:
        raise ImageConversionError(f"cannot decode compressed image (format {fmt!r}, {buf.size} bytes): corrupt data")
    _check_size(img.shape[1], img.shape[0], f"decoded image (format {fmt!r})")
    if img.dtype == np.uint16:
        img = (np.asarray(img, np.uint16) >> 8).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageConversionError(f"decoded image has unsupported depth {img.dtype} (format {fmt!r})")
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # imdecode returns BGR whatever the format string says


def rgb_to_image_fields(rgb: np.ndarray, encoding: str = "rgb8") -> dict[str, Any]:
    """(H, W, 3) uint8 RGB → ``sensor_msgs/Image`` field values except ``header`` (rgb8 or bgr8, no padding)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ImageConversionError(f"expected an (H, W, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    if encoding == "bgr8":
        rgb = rgb[..., ::-1]
    elif encoding != "rgb8":
        raise ImageConversionError(f"output encoding must be rgb8 or bgr8, got {encoding!r}")
    h, w = rgb.shape[:2]
    return {"height": h, "width": w, "encoding": encoding, "is_bigendian": 0, "step": w * 3,
            "data": np.ascontiguousarray(rgb).tobytes()}


def rgb_to_compressed_fields(rgb: np.ndarray, fmt: str = "jpeg", quality: int = 90) -> dict[str, Any]:
    """(H, W, 3) uint8 RGB → ``sensor_msgs/CompressedImage`` field values except ``header``."""
    if fmt not in ("jpeg", "png"):
        raise ImageConversionError(f"compressed format must be jpeg or png, got {fmt!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "jpeg" else []
    ok, enc = cv2.imencode(".jpg" if fmt == "jpeg" else ".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ImageConversionError(f"OpenCV could not encode a {rgb.shape} image as {fmt}")
    return {"format": f"rgb8; {fmt} compressed bgr8", "data": enc.tobytes()}


# --- CameraInfo -----------------------------------------------------------------------------------------


def _field(msg: Any, *names: str) -> Any:
    for n in names:
        if hasattr(msg, n):
            return getattr(msg, n)
    raise CameraInfoError(f"CameraInfo has none of the fields {names}")


def intrinsics_from_camera_info(
    info: Any,
    image_width: int | None = None,
    image_height: int | None = None,
    *,
    use_rectified: bool = False,
) -> Intrinsics:
    """``sensor_msgs/CameraInfo`` → ``Intrinsics`` in pixels of the image actually received.

    Steps: K (or P's left 3×3 when ``use_rectified``; for ``image_rect`` topics) → subtract the ROI offset
    → divide by the binning → if the image size differs from the CameraInfo's (after ROI and binning),
    scale to the image (a resizing node that did not update CameraInfo). Binning and resizing use the
    pixel-centre convention of ``das_core.camera`` (``image_geometry`` ignores the half-pixel shift).
    Lens distortion is ignored (the network was trained on undistorted-enough images).

    Raises ``CameraInfoError`` when K[0] (or P[0]) is 0 (the CameraInfo.msg convention for an uncalibrated
    camera), when a value is non-finite, or when the aspect ratios of image and CameraInfo differ
    (``das_core.camera.scale_to_image``, the rule ``das infer --camera`` uses too).
    """
    name = "P" if use_rectified else "K"
    raw = np.asarray(_field(info, "p", "P") if use_rectified else _field(info, "k", "K"), dtype=np.float64)
    raw = raw.reshape(-1)
    if raw.size != (12 if use_rectified else 9):
        raise CameraInfoError(f"CameraInfo {name} has {raw.size} values")
    if not np.isfinite(raw).all():
        raise CameraInfoError(f"CameraInfo {name} has non-finite values: {raw.tolist()}")
    if raw[0] == 0.0:
        raise UncalibratedCameraError(
            f"camera is uncalibrated: CameraInfo {name}[0] == 0 (calibrate it, or set fallback_hfov_deg)"
        )
    if use_rectified:
        fx, skew, cx, fy, cy = raw[0], raw[1], raw[2], raw[5], raw[6]
    else:
        fx, skew, cx, fy, cy = raw[0], raw[1], raw[2], raw[4], raw[5]
    try:
        k = Intrinsics(fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy), skew=float(skew))
    except CameraError as exc:
        raise CameraInfoError(f"CameraInfo {name}: {exc}") from exc

    full_w, full_h = int(getattr(info, "width", 0) or 0), int(getattr(info, "height", 0) or 0)
    roi = getattr(info, "roi", None)
    w, h = full_w, full_h
    if roi is not None and int(getattr(roi, "width", 0)) > 0 and int(getattr(roi, "height", 0)) > 0:
        ox, oy = int(roi.x_offset), int(roi.y_offset)
        k = Intrinsics(fx=k.fx, fy=k.fy, cx=k.cx - ox, cy=k.cy - oy, skew=k.skew)
        w, h = int(roi.width), int(roi.height)
    bx = max(1, int(getattr(info, "binning_x", 0) or 0))
    by = max(1, int(getattr(info, "binning_y", 0) or 0))
    if bx > 1 or by > 1:
        k = k.scaled(1.0 / bx, 1.0 / by)
        w, h = w // bx, h // by

    if image_width is None or image_height is None or w <= 0 or h <= 0:
        return k  # no size to compare (drivers may leave width/height at 0): trust K as is
    if (image_width, image_height) == (w, h):
        return k
    try:
        return scale_to_image(k, (w, h), (image_width, image_height),
                              fix="the camera_info topic probably belongs to another camera or stream; remap it to "
                              "the image's own camera_info, or recalibrate at the image size")
    except CameraError as exc:
        raise CameraInfoError(f"CameraInfo (after ROI/binning): {exc}") from None
