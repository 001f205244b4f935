"""Camera input for the benchmarks that drive the node's pipeline without ROS: synthetic frames and
``sensor_msgs/Image`` / ``CameraInfo`` stand-ins with the fields ``das_ros`` reads (``soak.py``,
``multicamera_rate.py``, ``cpu_backends.py``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def synthetic_rgb(width: int, height: int, seed: int) -> np.ndarray:
    """(H, W, 3) uint8: a smooth image with a few bright blobs (compresses like a camera frame, unlike noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([xx / max(width, 1) * 200, yy / max(height, 1) * 200, np.full_like(xx, 80.0)], -1)
    for _ in range(4):
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.05, 0.2) * min(width, height)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return img.astype(np.uint8)


def camera_info(width: int, height: int, focal: float | None = None) -> SimpleNamespace:
    """A calibrated CameraInfo of the frame's size; focal length in pixels (default 0.8 · width)."""
    f = 0.8 * width if focal is None else focal
    return SimpleNamespace(k=[f, 0.0, (width - 1) / 2, 0.0, f, (height - 1) / 2, 0.0, 0.0, 1.0], p=[0.0] * 12,
                           width=width, height=height, binning_x=0, binning_y=0, roi=None)


def image_msg(data: bytes, width: int, height: int, stamp: float, frame_id: str = "cam_optical") -> SimpleNamespace:
    """An rgb8 Image of ``data`` (row-major, no padding) stamped ``stamp`` seconds."""
    sec = int(stamp)
    hdr = SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=int((stamp - sec) * 1e9)), frame_id=frame_id)
    return SimpleNamespace(header=hdr, height=height, width=width, encoding="rgb8", is_bigendian=0, step=width * 3,
                           data=data)


def rgb_msg(rgb: np.ndarray, stamp: float) -> SimpleNamespace:
    """:func:`image_msg` of an (H, W, 3) uint8 frame (serialised on each call, as a driver does per frame)."""
    return image_msg(rgb.tobytes(), rgb.shape[1], rgb.shape[0], stamp)
