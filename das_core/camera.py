"""Pinhole intrinsics and the resize record. The pixel convention is stated once, here.

Pixel convention: integer pixel coordinates are pixel *centres* (OpenCV / ROS ``CameraInfo.K``), so the
top-left pixel's centre is (0, 0) and the image spans [-0.5, W - 0.5]. A resize by (sx, sy) as done by
``cv2.resize`` maps ``x' = (x + 0.5)·sx − 0.5``; intrinsics of the resized image are
``fx' = fx·sx``, ``cx' = (cx + 0.5)·sx − 0.5`` (same for y). Camera frame: x right, y down, z forward
(REP-103 optical frame), metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ASPECT_TOLERANCE", "CameraError", "Intrinsics", "ResizeRecord", "from_resized", "keep_ratio_scale",
    "scale_to_image", "to_resized",
]


class CameraError(ValueError):
    """Intrinsics are unusable (zero, negative or non-finite focal length, bad principal point)."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels of the image they describe (lens distortion is ignored)."""

    fx: float
    fy: float
    cx: float
    cy: float
    skew: float = 0.0

    def __post_init__(self) -> None:
        vals = (self.fx, self.fy, self.cx, self.cy, self.skew)
        if not all(math.isfinite(float(v)) for v in vals):
            raise CameraError(f"intrinsics must be finite, got fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}")
        if self.fx <= 0 or self.fy <= 0:
            raise CameraError(
                f"focal length must be positive, got fx={self.fx} fy={self.fy} "
                "(K[0] == 0 means the camera is uncalibrated)"
            )

    @classmethod
    def from_matrix(cls, k: np.ndarray | list[float]) -> Intrinsics:
        """From a 3×3 K (or its 9 row-major values, as in ``CameraInfo.k``)."""
        m = np.asarray(k, dtype=np.float64).reshape(-1)
        if m.size != 9:
            raise CameraError(f"K must have 9 values, got {m.size}")
        return cls(fx=float(m[0]), fy=float(m[4]), cx=float(m[2]), cy=float(m[5]), skew=float(m[1]))

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> Intrinsics:
        """Square pixels, centred principal point, horizontal field of view in degrees."""
        if not (0.0 < hfov_deg < 180.0):
            raise CameraError(f"horizontal field of view must be in (0, 180) degrees, got {hfov_deg}")
        f = (width / 2.0) / math.tan(math.radians(hfov_deg) / 2.0)
        return cls(fx=f, fy=f, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0)

    @property
    def focal(self) -> float:
        """Geometric-mean focal length ``sqrt(fx·fy)``: the f of the network's ``Z / f`` (DAS_SPEC §2.1)."""
        return math.sqrt(self.fx * self.fy)

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, self.skew, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, sx: float, sy: float) -> Intrinsics:
        """Intrinsics of this image resized by (sx, sy) under the pixel-centre convention."""
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=to_resized(self.cx, sx),
            cy=to_resized(self.cy, sy),
            skew=self.skew * sx,
        )

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """(..., 3) camera points in metres → (..., 2) pixels. Points need z > 0."""
        xyz = np.asarray(xyz, dtype=np.float64)
        z = xyz[..., 2]
        u = (self.fx * xyz[..., 0] + self.skew * xyz[..., 1]) / z + self.cx
        v = self.fy * xyz[..., 1] / z + self.cy
        return np.stack([u, v], axis=-1)

    def backproject(self, uv: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(..., 2) pixels and (...) depths in metres → (..., 3) camera points (inverts the 2×2 K block)."""
        uv = np.asarray(uv, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        y = (uv[..., 1] - self.cy) / self.fy
        x = (uv[..., 0] - self.cx - self.skew * y) / self.fx
        return np.stack([x * z, y * z, z], axis=-1)


def to_resized(x: Any, s: Any) -> Any:
    """The pixel-centre rule ``x' = (x + 0.5)·s − 0.5`` for a resize by ``s``: the one implementation, for
    floats, NumPy arrays and torch tensors alike (``s`` broadcasts: a scalar, or ``(sx, sy)`` for ``(..., 2)``)."""
    return (x + 0.5) * s - 0.5


def from_resized(x: Any, s: Any) -> Any:
    """Inverse of :func:`to_resized`: ``x = (x' + 0.5) / s − 0.5``."""
    return (x + 0.5) / s - 0.5


#: Largest relative difference between the x and y scale factors that still counts as one aspect ratio. A
#: resize to integer sizes differs by at most a pixel per side (allowed separately); a crop or another
#: camera differs by far more (1920×1080 → 640×480: 33 %, ~15 % depth error if scaled per axis).
ASPECT_TOLERANCE = 0.01


def scale_to_image(
    k: Intrinsics,
    calib_size: tuple[int, int],
    image_size: tuple[int, int],
    *,
    fix: str = "recalibrate at this size, crop/resize the image to the calibration's aspect ratio, "
    "or pass intrinsics that match the image",
) -> Intrinsics:
    """Intrinsics of a calibration made at ``calib_size`` (width, height) for an image of ``image_size``.

    The only rule for scaling a calibration to another image size, used by ``das infer --camera`` and by the
    ROS node's CameraInfo: a uniform resize (same aspect ratio, up to one pixel of rounding per side) scales
    K under the pixel-centre convention; anything else is refused with ``CameraError``, because a crop or
    another camera's calibration cannot be recovered by scaling (the depth would be wrong by the aspect
    error). ``fix`` is the advice appended to the message (the caller knows the user's options).
    """
    (cw, ch), (w, h) = (int(calib_size[0]), int(calib_size[1])), (int(image_size[0]), int(image_size[1]))
    if min(cw, ch, w, h) <= 0:
        raise CameraError(f"image sizes must be positive, got calibration {cw}×{ch} and image {w}×{h}")
    if (cw, ch) == (w, h):
        return k
    sx, sy = w / cw, h / ch
    uniform = (
        math.isclose(sx, sy, rel_tol=ASPECT_TOLERANCE)
        or abs(ch * sx - h) <= 1.0  # the image's height is the rounded uniform resize of the calibration's
        or abs(cw * sy - w) <= 1.0
    )
    if not uniform:
        raise CameraError(
            f"image is {w}×{h} (aspect {w / h:.4f}) but the calibration is for {cw}×{ch} (aspect {cw / ch:.4f}): "
            f"aspect ratios differ, so scaling cannot give this image's intrinsics; {fix}"
        )
    return k.scaled(sx, sy)


def keep_ratio_scale(width: int, height: int, long_side: int, short_side: int) -> float:
    """mmdet "range" keep-ratio rule: ``min(L / long, S / short)`` (DAS_SPEC §3.2)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}×{height}")
    return min(long_side / max(width, height), short_side / min(width, height))


@dataclass(frozen=True)
class ResizeRecord:
    """How an original image became the network input: keep-ratio resize, then bottom/right padding.

    ``sx = resized_width / width`` exactly (the integer size is what the pixels were resized to). Sizes round
    half up as mmcv does, for ``compat: native`` and ``official`` alike (one resize rule for training and
    inference; DAS_SPEC §3.2).
    """

    width: int
    height: int
    resized_width: int
    resized_height: int
    padded_width: int
    padded_height: int

    @classmethod
    def for_image(cls, width: int, height: int, long_side: int, short_side: int, size_divisor: int) -> ResizeRecord:
        s = keep_ratio_scale(width, height, long_side, short_side)
        # mmcv's rescale_size rounds half up, ``int(x + 0.5)``; Python's ``round`` rounds half to even and
        # gives another size on ties (1023×768 at short side 640: 852.5 → 853 in mmcv, 852 with round)
        rw, rh = max(1, int(width * s + 0.5)), max(1, int(height * s + 0.5))
        pw = int(math.ceil(rw / size_divisor) * size_divisor)
        ph = int(math.ceil(rh / size_divisor) * size_divisor)
        return cls(width, height, rw, rh, pw, ph)

    @property
    def sx(self) -> float:
        return self.resized_width / self.width

    @property
    def sy(self) -> float:
        return self.resized_height / self.height

    def to_network(self, uv: np.ndarray) -> np.ndarray:
        """Original-image pixels → network-input pixels."""
        return np.asarray(to_resized(np.asarray(uv, dtype=np.float64), np.array([self.sx, self.sy])))

    def to_original(self, uv: np.ndarray) -> np.ndarray:
        """Network-input pixels → original-image pixels."""
        return np.asarray(from_resized(np.asarray(uv, dtype=np.float64), np.array([self.sx, self.sy])))
