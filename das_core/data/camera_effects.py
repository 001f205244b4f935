"""What a real camera does to a rendered frame: blur, exposure, white balance, vignetting, noise, JPEG.

Rendered synthetic frames are sharp, noise-free and perfectly exposed; frames from a robot's webcam are
none of those. :func:`apply_camera_effects` degrades an RGB uint8 frame the way cheap sensors and lenses do,
each effect with its own probability (:class:`CameraEffects`), so a network trained on rendered people does
not learn to rely on clean edges. Only photometric effects: pixel geometry is untouched, so the labels
stay exact (lens distortion is deliberately absent: it would move every joint off the pinhole model that
decoding assumes).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["CameraEffects", "apply_camera_effects", "gaussian_tile", "noise_field"]


@dataclass(frozen=True)
class CameraEffects:
    """Probability of each effect per frame, and its strength range."""

    motion_blur_prob: float = 0.2
    motion_blur_px: tuple[float, float] = (3.0, 11.0)     # kernel length at the frame's resolution
    defocus_prob: float = 0.25
    defocus_sigma_px: tuple[float, float] = (0.6, 2.2)
    exposure_prob: float = 0.6
    gamma_range: tuple[float, float] = (0.6, 1.6)
    gain_range: tuple[float, float] = (0.6, 1.35)
    white_balance_prob: float = 0.5
    channel_gain_range: tuple[float, float] = (0.82, 1.18)
    vignette_prob: float = 0.25
    low_light_prob: float = 0.1                           # dark frame, amplified noise (night, indoor dim)
    no_gain_share: float = 0.4                            # of dark frames: left dark (fixed exposure), grey levels 0..~20
    noise_prob: float = 0.6
    noise_sigma: tuple[float, float] = (1.5, 9.0)         # grey levels
    grayscale_prob: float = 0.07
    jpeg_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (30, 90)


def _motion_blur(img: np.ndarray, rng: np.random.Generator, length: float) -> np.ndarray:
    k = max(3, int(round(length)) | 1)
    line = np.zeros((k, k), np.float32)
    line[k // 2, :] = 1.0
    rot = cv2.getRotationMatrix2D(((k - 1) / 2.0, (k - 1) / 2.0), float(rng.uniform(0, 180)), 1.0)
    kernel = np.asarray(cv2.warpAffine(line, rot, (k, k)), np.float32)
    return np.asarray(cv2.filter2D(img, -1, kernel / max(float(kernel.sum()), 1e-6)))


def _vignette(h: int, w: int, strength: float) -> np.ndarray:
    """(H, W) float32 gain falling from 1 at the centre to ``1 − strength`` at the corners."""
    # computed on a coarse grid and resized: the falloff is smooth, and a full-size grid costs ~10 ms
    gh, gw = 33, 33
    y = np.linspace(-1.0, 1.0, gh, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, gw, dtype=np.float32)[None, :]
    small = 1.0 - strength * (x**2 + y**2) / 2.0
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


@functools.lru_cache(maxsize=2)
def gaussian_tile(size: int, seed: int) -> np.ndarray:
    """A fixed (size, size, 3) float32 unit-Gaussian tile, the same in every process (read-only)."""
    tile = np.random.default_rng(seed).standard_normal((size, size, 3)).astype(np.float32)
    tile.setflags(write=False)
    return tile


def noise_field(rng: np.random.Generator, h: int, w: int, tile: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 unit Gaussian noise made of random windows of ``tile`` (fresh noise costs ~10 ms a frame).

    The frame is covered block by block in rows; each block draws its window offset (y, then x) from ``rng``.
    """
    out = np.empty((h, w, 3), np.float32)
    th, tw = tile.shape[:2]
    for y in range(0, h, th):
        for x in range(0, w, tw):
            hh, ww = min(th, h - y), min(tw, w - x)
            oy, ox = int(rng.integers(0, th - hh + 1)), int(rng.integers(0, tw - ww + 1))
            out[y:y + hh, x:x + ww] = tile[oy:oy + hh, ox:ox + ww]
    return out


def apply_camera_effects(image: np.ndarray, rng: np.random.Generator, fx: CameraEffects | None = None) -> np.ndarray:
    """Degrade an (H, W, 3) uint8 RGB frame; returns a new uint8 frame of the same shape.

    Order follows the imaging chain: optics (blur) → exposure and white balance (one per-channel lookup
    table) → sensor (vignetting, noise, the auto gain of a dark frame) → image processor (grayscale) →
    codec (JPEG).
    """
    fx = fx or CameraEffects()
    h, w = image.shape[:2]
    img = image
    if rng.random() < fx.motion_blur_prob:
        img = _motion_blur(img, rng, float(rng.uniform(*fx.motion_blur_px)))
    elif rng.random() < fx.defocus_prob:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(*fx.defocus_sigma_px)))
    low_light = rng.random() < fx.low_light_prob
    dark = float(rng.uniform(0.12, 0.35)) if low_light else 1.0
    auto_gain = float(rng.uniform(1.5, 3.0)) if low_light else 1.0
    if low_light and rng.random() < fx.no_gain_share:
        # a fixed-exposure camera at night: the frame stays nearly black (real low-light sets sit at grey 0..5)
        dark, auto_gain = float(math.exp(rng.uniform(math.log(0.015), math.log(0.12)))), 1.0
    x = np.arange(256, dtype=np.float64) * dark
    if rng.random() < fx.exposure_prob:
        gamma = math.exp(rng.uniform(math.log(fx.gamma_range[0]), math.log(fx.gamma_range[1])))
        x = 255.0 * np.power(x / 255.0, gamma) * float(rng.uniform(*fx.gain_range))
    wb = rng.uniform(*fx.channel_gain_range, size=3) if rng.random() < fx.white_balance_prob else np.ones(3)
    vignette = float(rng.uniform(0.15, 0.5)) if rng.random() < fx.vignette_prob else 0.0
    noisy = low_light or rng.random() < fx.noise_prob
    if not noisy and vignette == 0.0:
        wb = wb * auto_gain
    table = np.clip(x[:, None] * wb[None, :], 0, 255).astype(np.uint8).reshape(256, 1, 3)
    result = cv2.LUT(np.ascontiguousarray(img), table)
    if noisy or vignette > 0.0:
        out = result.astype(np.float32)
        if vignette > 0.0:
            out *= _vignette(h, w, vignette)[..., None]
        if noisy:
            sigma = float(rng.uniform(*fx.noise_sigma)) * (2.0 if low_light else 1.0)
            out += noise_field(rng, h, w, gaussian_tile(1024, 2024)) * sigma
        # the camera's auto gain brings a dark frame back up, its noise included
        result = np.clip(out * auto_gain, 0, 255).astype(np.uint8)
    if rng.random() < fx.grayscale_prob:
        grey = cv2.cvtColor(result, cv2.COLOR_RGB2GRAY)
        result = np.repeat(grey[..., None], 3, axis=2)
    if rng.random() < fx.jpeg_prob:
        q = int(rng.integers(fx.jpeg_quality[0], fx.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", result, [cv2.IMWRITE_JPEG_QUALITY, q])
        decoded = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else None
        if decoded is not None:
            result = decoded
    return result
