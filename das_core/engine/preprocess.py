"""Image → normalised, padded network input + the :class:`ResizeRecord` that undoes it (DAS_SPEC §3.6).

Test pipeline: keep-ratio resize to ``cfg.input`` (mmdet "range" rule, ``ResizeRecord.for_image``) →
normalise with the RGB mean/std → zero-pad bottom/right to a multiple of ``size_divisor``. Padding happens
*after* normalisation, so padded pixels are 0 in normalised units (= the mean colour), as in mmdet.

Everything runs on the target device: a CPU image is uploaded once as uint8 (from pinned memory, without a
host sync, when the target is CUDA) and resized there. The resize is ``F.interpolate(bilinear,
align_corners=False)``, whose sampling grid ``x_src = (x_dst + 0.5) / s − 0.5`` is the pixel-centre
convention of ``cv2.resize(INTER_LINEAR)`` stated in :mod:`das_core.camera`; neither antialiases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from das_core.camera import ResizeRecord
from das_core.config import InputConfig

__all__ = ["MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE", "ImageError", "check_image", "normalisation_tensors", "preprocess", "preprocess_batch",
           "preprocess_frames", "resize_normalise", "scaled_input"]

# Largest accepted input: 8192 × 8192 pixels (≈ 200 MB as uint8 RGB, ≈ 800 MB as float32). Anything bigger
# is refused from its shape alone, before any copy or allocation.
MAX_IMAGE_PIXELS = 8192 * 8192
# Largest accepted side, so that a 1 × 60 000 000 strip cannot pass the pixel limit.
MAX_IMAGE_SIDE = 32768

ImageLike = Union[np.ndarray, Tensor]


def scaled_input(cfg: InputConfig, scale: float) -> InputConfig:
    """``cfg`` with both keep-ratio limits (short and long side) multiplied by ``scale``: a smaller network input.

    Every image is then resized ``scale`` times as much as the checkpoint's own rule would (up to the rounding of
    the limits to whole pixels), whatever its size: at ``input.short_side`` 384 / ``long_side`` 704, a 640×384
    frame goes in at 640×384 (scale 1), 512×307 → padded 512×320 (0.8), 448×269 → 448×288 (0.7). Depth stays
    right because decoding lifts with the focal length of the network input (``fx·sx``, ``fy·sy`` from the
    :class:`ResizeRecord`), whatever the resize was; accuracy drops as people get fewer pixels
    (docs/PERFORMANCE.md, "CPU").

    Raises:
        ValueError: ``scale`` not a finite number in (0, 4].
    """
    scale = float(scale)
    if not (0.0 < scale <= 4.0):  # also refuses NaN
        raise ValueError(f"input scale must be in (0, 4], got {scale!r}")
    if scale == 1.0:
        return cfg
    short = max(1, int(cfg.short_side * scale + 0.5))
    long = max(short, int(cfg.long_side * scale + 0.5))
    return replace(cfg, short_side=short, long_side=long)


class ImageError(ValueError):
    """The image cannot be preprocessed: wrong shape, dtype, empty, too large. The message says which."""


def check_image(image: object, index: int | None = None) -> tuple[int, int]:
    """Validate an (H, W, 3) uint8 image (numpy or torch) from its metadata only; return (H, W)."""
    where = "image" if index is None else f"images[{index}]"
    if isinstance(image, np.ndarray):
        dtype_ok = image.dtype == np.uint8
        dtype = str(image.dtype)
    elif isinstance(image, Tensor):
        dtype_ok = image.dtype == torch.uint8
        dtype = str(image.dtype)
    else:
        raise ImageError(f"{where}: expected a numpy array or torch tensor, got {type(image).__name__}")
    shape = tuple(image.shape)
    if len(shape) != 3:
        raise ImageError(f"{where}: expected shape (H, W, 3) RGB, got {shape} ({len(shape)} dims)")
    h, w, c = shape
    if c != 3:
        raise ImageError(f"{where}: expected 3 channels (RGB, channels last), got shape {shape}")
    if not dtype_ok:
        raise ImageError(f"{where}: expected dtype uint8 (0..255), got {dtype}")
    if h == 0 or w == 0:
        raise ImageError(f"{where}: image is empty, shape {shape}")
    if h > MAX_IMAGE_SIDE or w > MAX_IMAGE_SIDE or h * w > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"{where}: image {w}×{h} is too large (limit {MAX_IMAGE_PIXELS} pixels, {MAX_IMAGE_SIDE} per side)"
        )
    return h, w


def _to_device(image: ImageLike, device: torch.device) -> Tensor:
    """(H, W, 3) uint8 → the same uint8 tensor on ``device``; no host sync for CPU → CUDA."""
    if isinstance(image, np.ndarray):
        # from_numpy needs positive strides (e.g. after a BGR→RGB ``[..., ::-1]`` view).
        t = torch.from_numpy(np.ascontiguousarray(image))
    else:
        t = image
    if t.device == device:
        return t
    if device.type == "cuda" and t.device.type == "cpu":
        # Pinned staging makes the copy truly asynchronous; the caching host allocator keeps the block alive
        # until the copy has run. (A persistent staging buffer was tried and reverted: allocating a second
        # pinned block while the first is held failed the no-sync test on the H100.)
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


_NORM_CACHE: dict[tuple[tuple[float, ...], tuple[float, ...], str], tuple[Tensor, Tensor]] = {}


def _norm_tensors(cfg: InputConfig, device: torch.device) -> tuple[Tensor, Tensor]:
    """(1, 3, 1, 1) mean and 1/std on ``device`` (cached: creating them from Python floats would copy)."""
    key = (tuple(cfg.mean), tuple(cfg.std), str(device))
    hit = _NORM_CACHE.get(key)
    if hit is None:
        mean = torch.tensor(cfg.mean, dtype=torch.float32).view(1, 3, 1, 1)
        inv_std = (1.0 / torch.tensor(cfg.std, dtype=torch.float32)).view(1, 3, 1, 1)
        hit = (mean.to(device), inv_std.to(device))
        _NORM_CACHE[key] = hit
    return hit


def _resized_normalised(x: Tensor, record: ResizeRecord, mean: Tensor, inv_std: Tensor) -> Tensor:
    """(B, H, W, 3) uint8 → (B, 3, h', w') float32 resized to the record's size and normalised."""
    y = x.permute(0, 3, 1, 2).to(torch.float32)
    if (record.resized_height, record.resized_width) != (record.height, record.width):
        y = F.interpolate(
            y, size=(record.resized_height, record.resized_width), mode="bilinear", align_corners=False,
            antialias=False,
        )
    return (y - mean) * inv_std


def resize_normalise(image: Tensor, record: ResizeRecord, cfg: InputConfig, out: Tensor) -> None:
    """Write one resized, normalised (3, h', w') image into the top-left corner of ``out`` (3, Hp, Wp).

    ``image`` is (H, W, 3) uint8 on ``out``'s device. The padding of ``out`` is left untouched.
    """
    mean, inv_std = _norm_tensors(cfg, out.device)
    out[:, : record.resized_height, : record.resized_width] = _resized_normalised(image[None], record, mean, inv_std)[0]


def preprocess_frames(frames: Tensor, record: ResizeRecord, mean: Tensor, inv_std: Tensor) -> Tensor:
    """B same-size frames already on the device → the padded network input, as a pure function.

    Args:
        frames: (B, H, W, 3) uint8 RGB (all described by ``record``).
        mean, inv_std: (1, 3, 1, 1) float32 on the same device (``InputConfig.mean`` and 1 / ``std``).

    Returns:
        (B, 3, Hp, Wp) float32, zero-padded bottom/right: the same numbers as :func:`preprocess_batch`,
        with fixed shapes and no host sync (it is captured in frame graphs, :mod:`das_core.engine.frame_graph`).
    """
    y = _resized_normalised(frames, record, mean, inv_std)
    return F.pad(y, (0, record.padded_width - record.resized_width, 0, record.padded_height - record.resized_height))


def normalisation_tensors(cfg: InputConfig, device: torch.device) -> tuple[Tensor, Tensor]:
    """(1, 3, 1, 1) mean and 1/std on ``device`` (cached per device)."""
    return _norm_tensors(cfg, device)


def _as_device(device: torch.device | str) -> torch.device:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def preprocess(image: ImageLike, cfg: InputConfig, device: torch.device | str = "cpu") -> tuple[Tensor, ResizeRecord]:
    """One RGB image → network input.

    Args:
        image: (H, W, 3) uint8 RGB, numpy array or torch tensor (any device).
        cfg: the model's input settings (test scale, size divisor, mean/std in 0..255 RGB).
        device: where the result lives (and where the resize runs).

    Returns:
        ``(x, record)``: x (1, 3, Hp, Wp) float32 normalised, zero-padded bottom/right to a multiple of
        ``cfg.size_divisor``; ``record`` maps network pixels back to the original image.

    Raises:
        ImageError: wrong type, ndim, channel count or dtype; empty image; more than
            :data:`MAX_IMAGE_PIXELS` pixels.
    """
    x, records = preprocess_batch([image], cfg, device)
    return x, records[0]


def preprocess_batch(
    images: Sequence[ImageLike], cfg: InputConfig, device: torch.device | str = "cpu"
) -> tuple[Tensor, list[ResizeRecord]]:
    """Several RGB images (e.g. one per camera) → one (B, 3, Hp, Wp) batch and B resize records.

    Each image is resized on its own; the batch is padded to the largest padded size (DAS_SPEC §3.1), so
    same-size images (the usual multi-camera case) all get the same record and no extra padding.

    Raises:
        ImageError: an empty list, or any image failing the checks of :func:`preprocess` (the message
            names its index).
    """
    if isinstance(images, (np.ndarray, Tensor)):
        raise ImageError("preprocess_batch: expected a sequence of (H, W, 3) images, got a single array")
    if len(images) == 0:
        raise ImageError("preprocess_batch: the batch is empty (need at least one image)")
    sizes = [check_image(img, i) for i, img in enumerate(images)]
    dev = _as_device(device)
    records = [
        ResizeRecord.for_image(w, h, cfg.long_side, cfg.short_side, cfg.size_divisor) for (h, w) in sizes
    ]
    hp = max(r.padded_height for r in records)
    wp = max(r.padded_width for r in records)
    out = torch.zeros((len(images), 3, hp, wp), dtype=torch.float32, device=dev)
    for i, (img, rec) in enumerate(zip(images, records, strict=True)):
        resize_normalise(_to_device(img, dev), rec, cfg, out[i])
    return out, records
