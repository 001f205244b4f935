"""``Estimator``: image + intrinsics → :class:`~das_core.persons.Persons`, with any backend.

One frame: :func:`~das_core.engine.preprocess.preprocess_batch` (on the device) → ``backend.run`` →
:func:`~das_core.engine.decode.decode_batch` (on the device) → one device→host copy, the only point where
the host waits for the device. With a backend that offers ``capturable`` and ``frame_graphs`` (the
``compile`` backend on CUDA), host frames take a faster route: all of that is one CUDA graph per
(batch, frame size) bucket (:mod:`das_core.engine.frame_graph`). OKS-NMS runs a fixed number of steps so that
it needs no sync; in the rare frame where that was not enough to reach the exact greedy answer, that frame is decoded again exactly
(see :mod:`das_core.engine.decode`) and ``timings.nms_fallbacks`` counts it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from das_core.camera import CameraError, Intrinsics
from das_core.checkpoint import CheckpointError, load_checkpoint
from das_core.config import ModelConfig
from das_core.engine.backends import Backend, make_backend, resolve_device
from das_core.engine.decode import NMS_ITERS_PER_BLOCK, decode_batch, device_camera_table, pack_decoded, unpack_persons
from das_core.engine.flip_test import fuse_flipped, mirrored_input
from das_core.engine.frame_graph import FrameGraph
from das_core.engine.preprocess import ImageLike, check_image, preprocess_batch, scaled_input
from das_core.model.dense import cell_centers, level_sizes
from das_core.model.outputs import DenseOutputs
from das_core.persons import Persons
from das_core.skeletons import get_skeleton

__all__ = ["Estimator", "Timings", "level_sizes"]

logger = logging.getLogger(__name__)


@dataclass
class Timings:
    """Milliseconds spent by the last call, per stage (device time on CUDA, measured with events).

    ``decode_ms`` includes the device→host copy of the results. With ``frame_graph`` the stages are
    different: ``preprocess_ms`` is the host copy of the frames into pinned memory, ``forward_ms`` the
    device time of the whole graph (upload, preprocessing, network, decoding, download) and ``decode_ms``
    the host unpacking into :class:`Persons`.
    """

    preprocess_ms: float = 0.0
    forward_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0
    batch_size: int = 0
    nms_fallbacks: int = 0
    frame_graph: bool = False


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
        backend: a ready :class:`~das_core.engine.backends.Backend`.
        nms_iters: OKS-NMS steps run without a host sync (see :mod:`das_core.engine.decode`); ``"auto"`` = a fixed
            :data:`~das_core.engine.decode.NMS_ITERS_PER_BLOCK` on CUDA, exact (``None``) on the CPU, where a host
            "sync" costs nothing and counting the valid candidates keeps the OKS matrix small.
        flip_test: also run the mirror image of every frame and average the two predictions before decoding
            (:mod:`das_core.engine.flip_test`): twice the network's work per frame; frames then take the general
            path, not whole-frame CUDA graphs.

    Use :meth:`from_checkpoint` or :meth:`from_model` to build one.
    """

    def __init__(self, cfg: ModelConfig, backend: Backend, *, nms_iters: int | str | None = "auto",
                 flip_test: bool = False) -> None:
        self.cfg = cfg
        self.flip_test = bool(flip_test)
        self.backend = backend
        self.device = backend.device
        if nms_iters == "auto":
            nms_iters = NMS_ITERS_PER_BLOCK if self.device.type == "cuda" else None
        if not (nms_iters is None or (isinstance(nms_iters, int) and nms_iters >= 1)):
            raise ValueError(f"nms_iters: expected 'auto', None or an integer >= 1, got {nms_iters!r}")
        self.nms_iters: int | None = nms_iters
        self.timings = Timings()
        self._grids: dict[tuple[int, int], tuple[Tensor, Tensor, list[tuple[int, int]]]] = {}
        self._frame_graphs: dict[tuple[int, int, int], FrameGraph] = {}
        self.frame_graph_error: str | None = None

    def _no_autograd(self) -> contextlib.AbstractContextManager[object]:
        """``inference_mode``, except around a compile backend with the Dynamo cache: torch 2.13 saves its guards
        with tensors' dispatch keys as they are outside inference mode, so an inference-mode call in a new process
        never matches a saved trace and every restart would trace again; ``no_grad`` matches."""
        if getattr(self.backend, "dynamo_cache", False):
            return torch.no_grad()
        return torch.inference_mode()

    @property
    def uses_frame_graphs(self) -> bool:
        """Whether host frames go through whole-frame CUDA graphs (see :mod:`das_core.engine.frame_graph`)."""
        return (
            self.frame_graph_error is None
            and not self.flip_test
            and isinstance(self.nms_iters, int)
            and bool(getattr(self.backend, "frame_graphs", False))
            and callable(getattr(self.backend, "capturable", None))
        )

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
        input_scale: float = 1.0,
        flip_test: bool = False,
        **backend_options: object,
    ) -> Estimator:
        """Wrap an in-memory model (``DAS`` or anything returning ``HeadOutputs``).

        ``input_scale`` < 1 runs the network on smaller inputs (faster, less accurate; see
        :func:`~das_core.engine.preprocess.scaled_input`): the estimator's ``cfg.input`` is the scaled one.
        ``flip_test``: see the class.
        """
        dev = resolve_device(device)
        scaled = scaled_input(cfg.input, input_scale)  # ValueError for a bad scale, before anything is built
        if scaled is not cfg.input:
            logger.info("input scale %g: keep-ratio limits %d×%d (short × long side) instead of the checkpoint's %d×%d",
                        input_scale, scaled.short_side, scaled.long_side, cfg.input.short_side, cfg.input.long_side)
            cfg = replace(cfg, input=scaled)
        be = make_backend(backend, model, cfg, device=dev, precision=precision, channels_last=channels_last,
                          **backend_options)
        return cls(cfg, be, flip_test=flip_test)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: torch.device | str = "auto",
        backend: str = "eager",
        precision: str = "fp32",
        channels_last: bool = False,
        input_scale: float = 1.0,
        flip_test: bool = False,
        **backend_options: object,
    ) -> Estimator:
        """Load ``NAME.safetensors`` + ``NAME.yaml`` and build the model from its config (``input_scale``,
        ``flip_test``: see :meth:`from_model`).

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
                              channels_last=channels_last, input_scale=input_scale, flip_test=flip_test,
                              **backend_options)

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
        if self.uses_frame_graphs and images and not isinstance(images, (np.ndarray, Tensor)):
            graph = self._frame_graph(images)
            if graph is not None:
                return self._run_frame_graph(graph, images, cameras)
        clock = _Clock(self.device)
        with self._no_autograd():
            clock.mark()
            x, records = preprocess_batch(images, self.cfg.input, self.device)
            clock.mark()
            x, dense = self._forward(x)
            clock.mark()
            pts, strd, sizes = self._grid(x.shape[-2], x.shape[-1])
            cam = device_camera_table(records, cameras, self.device)
            decoded = decode_batch(dense, pts, strd, sizes, cam, self.cfg, nms_iters=self.nms_iters)
            k = decoded.joints_3d.shape[2]
            persons, converged = unpack_persons(pack_decoded(decoded).cpu().numpy(), k)  # the host sync
            fallbacks = self._redo_unconverged(persons, converged, dense, (pts, strd, sizes), cam)
            clock.mark()
        pre, fwd, dec = clock.elapsed_ms()
        self.timings = Timings(pre, fwd, dec, pre + fwd + dec, len(images), fallbacks)
        return persons

    def _forward(self, x: Tensor) -> tuple[Tensor, DenseOutputs]:
        """The backend on the (B, 3, H, W) input, or with :attr:`flip_test` on it and its mirror, fused.

        Returns the input whose cell grid the outputs have (with the flip test, padded on the right).
        """
        if not self.flip_test:
            return x, self.backend.run(x)
        both = mirrored_input(x, self.cfg.strides)
        perm = get_skeleton(self.cfg.skeleton).flip_permutation()
        h, w = both.shape[-2:]
        return both[: x.shape[0]], fuse_flipped(self.backend.run(both), h, w, self.cfg.strides, perm)

    def _redo_unconverged(
        self, persons: list[Persons], converged: list[bool], dense: DenseOutputs,
        grid: tuple[Tensor, Tensor, list[tuple[int, int]]], cam: Tensor,
    ) -> int:
        """Decode again, exactly, the frames whose fixed-step OKS-NMS had not converged; returns how many."""
        fallbacks = [i for i, ok in enumerate(converged) if not ok]
        if fallbacks:
            logger.debug("OKS-NMS needed more than %d steps in frames %s; decoding them exactly",
                         self.nms_iters, fallbacks)
            sub = DenseOutputs(*(t[fallbacks] for t in dense))
            exact = decode_batch(sub, *grid, cam[fallbacks], self.cfg, nms_iters=None)
            k = exact.joints_3d.shape[2]
            for i, p in zip(fallbacks, unpack_persons(pack_decoded(exact).cpu().numpy(), k)[0], strict=True):
                persons[i] = p
        return len(fallbacks)

    def _frame_graph(self, images: Sequence[ImageLike]) -> FrameGraph | None:
        """The frame graph for this batch's bucket (built on first use), or None if it does not apply."""
        sizes = [check_image(img, i) for i, img in enumerate(images)]
        if len(set(sizes)) != 1 or any(isinstance(im, Tensor) and im.device.type != "cpu" for im in images):
            return None  # mixed sizes or frames already on a device: the general path
        key = (len(images), *sizes[0])
        graph = self._frame_graphs.get(key)
        if graph is None:
            try:
                graph = FrameGraph(
                    self.backend.capturable,  # type: ignore[attr-defined]
                    self.cfg, len(images), sizes[0], self.device,
                    memory_format=getattr(self.backend, "memory_format", torch.contiguous_format),
                    nms_iters=int(self.nms_iters or NMS_ITERS_PER_BLOCK),
                    compile=bool(getattr(self.backend, "compile_frame", False)),
                )
            except RuntimeError as exc:
                # Same backend without whole-frame graphs (its own network graph still runs); said loudly.
                logger.warning("frame graph capture failed (%s); frames take the uncaptured path", exc)
                self.frame_graph_error = str(exc)
                return None
            self._frame_graphs[key] = graph
            save = getattr(self.backend, "save_compile_cache", None)
            if callable(save):  # the graph's compiled preprocessing/decoding join the backend's cache bundle
                save()
        return graph

    def _run_frame_graph(self, graph: FrameGraph, images: Sequence[ImageLike], cameras: list[Intrinsics]) -> list[Persons]:
        with self._no_autograd():
            persons, converged = graph(images, cameras)
            assert graph.dense is not None
            grid = (graph.points, graph.point_strides, graph.sizes)
            fallbacks = self._redo_unconverged(persons, converged, graph.dense, grid, graph.cameras)
        stage, device_ms, unpack = graph.last_ms
        self.timings = Timings(stage, device_ms, unpack, stage + device_ms + unpack, len(images), fallbacks, True)
        return persons
