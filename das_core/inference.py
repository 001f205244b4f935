"""``Estimator``: image + intrinsics → :class:`~das_core.persons.Persons`, with any backend.

One frame: :func:`~das_core.preprocess.preprocess_batch` (on the device) → ``backend.run`` →
:func:`~das_core.decode.decode` (on the device) → :func:`~das_core.decode.transfer`, the only point where
the host waits for the device. OKS-NMS runs a fixed number of steps so that it needs no sync; in the rare
frame where that was not enough to reach the exact greedy answer, that frame is decoded again exactly
(see :mod:`das_core.decode`) and ``timings.nms_fallbacks`` counts it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from das_core.backends import Backend, make_backend, resolve_device
from das_core.camera import CameraError, Intrinsics
from das_core.checkpoint import CheckpointError, load_checkpoint
from das_core.config import ModelConfig
from das_core.decode import NMS_ITERS_PER_BLOCK, decode, transfer
from das_core.model.dense import cell_centers
from das_core.persons import Persons
from das_core.preprocess import ImageLike, preprocess_batch

__all__ = ["Estimator", "Timings", "level_sizes"]

logger = logging.getLogger(__name__)


@dataclass
class Timings:
    """Milliseconds spent by the last call, per stage (device time on CUDA, measured with events).

    ``decode_ms`` includes the device→host copy of the results.
    """

    preprocess_ms: float = 0.0
    forward_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0
    batch_size: int = 0
    nms_fallbacks: int = 0


def level_sizes(height: int, width: int, strides: Sequence[int]) -> list[tuple[int, int]]:
    """Feature-map size of each level for a padded (H, W) input: ``ceil(H / S)`` × ``ceil(W / S)``.

    Stride-2 convs with padding 1 (and the 3×3 max-pool) round up, and nested ceil divisions compose.
    """
    return [(-(-height // s), -(-width // s)) for s in strides]


class _Clock:
    """Stage timestamps: CUDA events (read after the frame's sync, so they add none) or the CPU clock."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list[Any] = []

    def mark(self) -> None:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            ev.record()
            self.marks.append(ev)
        else:
            self.marks.append(time.perf_counter())

    def elapsed_ms(self) -> list[float]:
        pairs = zip(self.marks[:-1], self.marks[1:], strict=True)
        if self.cuda:
            return [a.elapsed_time(b) for a, b in pairs]
        return [(b - a) * 1e3 for a, b in pairs]


def _as_intrinsics(camera: object, index: int) -> Intrinsics:
    if isinstance(camera, Intrinsics):
        return camera
    if isinstance(camera, (np.ndarray, list, tuple)):
        return Intrinsics.from_matrix(np.asarray(camera, dtype=np.float64))  # CameraError for bad values
    raise CameraError(f"intrinsics[{index}]: expected Intrinsics or a 3×3 K, got {type(camera).__name__}")


class Estimator:
    """Multi-person absolute 3D pose from RGB images and their intrinsics.

    Args:
        cfg: the model config (input size, decoding settings, ``compat``).
        backend: a ready :class:`~das_core.backends.Backend`.
        nms_iters: OKS-NMS steps run without a host sync (see :mod:`das_core.decode`); ``"auto"`` = a fixed
            :data:`~das_core.decode.NMS_ITERS_PER_BLOCK` on CUDA, exact (``None``) on the CPU, where a host
            "sync" costs nothing and counting the valid candidates keeps the OKS matrix small.

    Use :meth:`from_checkpoint` or :meth:`from_model` to build one.
    """

    def __init__(self, cfg: ModelConfig, backend: Backend, *, nms_iters: int | str | None = "auto") -> None:
        self.cfg = cfg
        self.backend = backend
        self.device = backend.device
        if nms_iters == "auto":
            nms_iters = NMS_ITERS_PER_BLOCK if self.device.type == "cuda" else None
        if not (nms_iters is None or (isinstance(nms_iters, int) and nms_iters >= 1)):
            raise ValueError(f"nms_iters: expected 'auto', None or an integer >= 1, got {nms_iters!r}")
        self.nms_iters: int | None = nms_iters
        self.timings = Timings()
        self._grids: dict[tuple[int, int], tuple[Tensor, Tensor, list[tuple[int, int]]]] = {}

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        cfg: ModelConfig,
        device: torch.device | str = "auto",
        backend: str = "eager",
        precision: str = "fp32",
        channels_last: bool = False,
        **backend_options: object,
    ) -> Estimator:
        """Wrap an in-memory model (``DAS`` or anything returning ``HeadOutputs``)."""
        dev = resolve_device(device)
        be = make_backend(backend, model, cfg, device=dev, precision=precision, channels_last=channels_last,
                          **backend_options)
        return cls(cfg, be)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: torch.device | str = "auto",
        backend: str = "eager",
        precision: str = "fp32",
        channels_last: bool = False,
        **backend_options: object,
    ) -> Estimator:
        """Load ``NAME.safetensors`` + ``NAME.yaml`` and build the model from its config.

        Raises:
            CheckpointError: missing/corrupt files, or weights that do not fit the model (names the keys).
            BackendError: unknown backend, precision or device.
        """
        from das_core.model.das import DAS

        ckpt = load_checkpoint(path, device="cpu")
        model = DAS.from_config(ckpt.config)
        try:
            missing, unexpected = model.load_state_dict(ckpt.state_dict, strict=False)
        except RuntimeError as exc:  # shape mismatches raise even with strict=False
            raise CheckpointError(f"{path}: weights do not match the model built from its config: {exc}") from None
        if missing or unexpected:
            raise CheckpointError(
                f"{path}: weights do not match the model built from its config: "
                f"missing {sorted(missing)[:10]}{' …' if len(missing) > 10 else ''}, "
                f"unexpected {sorted(unexpected)[:10]}{' …' if len(unexpected) > 10 else ''}"
            )
        return cls.from_model(model, ckpt.config, device=device, backend=backend, precision=precision,
                              channels_last=channels_last, **backend_options)

    # -- running ----------------------------------------------------------------------------------

    def _grid(self, height: int, width: int) -> tuple[Tensor, Tensor, list[tuple[int, int]]]:
        """Cell centres (P, 2), strides (P,) and level sizes for a padded input size, cached per size."""
        hit = self._grids.get((height, width))
        if hit is None:
            sizes = level_sizes(height, width, self.cfg.strides)
            pts, strd = cell_centers(sizes, tuple(self.cfg.strides), device=self.device)
            hit = (pts, strd, sizes)
            self._grids[(height, width)] = hit
        return hit

    def __call__(self, image: ImageLike, intrinsics: Intrinsics) -> Persons:
        """People in one (H, W, 3) uint8 RGB image seen by a camera with ``intrinsics`` (original pixels)."""
        return self.batch([image], [intrinsics])[0]

    def batch(self, images: Sequence[ImageLike], intrinsics_list: Sequence[Intrinsics]) -> list[Persons]:
        """People in several images (e.g. one per camera); one host sync for the whole batch.

        Raises:
            ImageError: an empty batch or a bad image (names its index).
            CameraError: bad intrinsics (non-finite or non-positive focal length, wrong K).
            ValueError: different numbers of images and intrinsics.
        """
        if len(images) != len(intrinsics_list):
            raise ValueError(f"got {len(images)} images but {len(intrinsics_list)} intrinsics")
        cameras = [_as_intrinsics(c, i) for i, c in enumerate(intrinsics_list)]
        clock = _Clock(self.device)
        with torch.inference_mode():
            clock.mark()
            x, records = preprocess_batch(images, self.cfg.input, self.device)
            clock.mark()
            dense = self.backend.run(x)
            clock.mark()
            pts, strd, sizes = self._grid(x.shape[-2], x.shape[-1])
            decoded = decode(dense, pts, strd, sizes, records, cameras, self.cfg, nms_iters=self.nms_iters)
            persons, converged = transfer(decoded)  # the host sync
            fallbacks = [i for i, ok in enumerate(converged) if not ok]
            if fallbacks:
                logger.debug("OKS-NMS needed more than %d steps in frames %s; decoding them exactly",
                             self.nms_iters, fallbacks)
                sub = type(dense)(*(t[fallbacks] for t in dense))
                exact = decode(sub, pts, strd, sizes, [records[i] for i in fallbacks],
                               [cameras[i] for i in fallbacks], self.cfg, nms_iters=None)
                for i, p in zip(fallbacks, transfer(exact)[0], strict=True):
                    persons[i] = p
            clock.mark()
        pre, fwd, dec = clock.elapsed_ms()
        self.timings = Timings(pre, fwd, dec, pre + fwd + dec, len(images), len(fallbacks))
        return persons
