"""A whole frame in one CUDA graph: host frame → upload → preprocess → network → decode → host results.

Why: at ~5 ms per frame, launching the ~1,500 kernels of a DAS frame one by one from Python costs more
than running them, and every stage boundary that waits for the host leaves the GPU idle. A
:class:`FrameGraph` is built once per *bucket* (batch size and frame size) and then costs, per frame, one
copy of the frame into pinned memory, one graph replay and one wait:

* the frame is copied into a pinned staging buffer; the graph's first node uploads it (and the (B, 7)
  camera table, :func:`~das_core.engine.decode.camera_table`) to static device buffers;
* resize + normalise + pad (:func:`~das_core.engine.preprocess.resize_normalise`) into a static, zero-padded
  network input;
* the backend's ``capturable`` network (no host syncs, fixed shapes);
* :func:`~das_core.engine.decode.decode_batch` with a fixed number of OKS-NMS steps, packed into one block
  (:func:`~das_core.engine.decode.pack_decoded`), which the graph's last node downloads into pinned memory.

The host then unpacks the block (:func:`~das_core.engine.decode.unpack_persons`). Every buffer is reused by the
next call, so a :class:`FrameGraph` serves one caller at a time, and the results of the last call
(``dense``, ``cameras``) stay valid only until the next one — the :class:`~das_core.engine.estimator.Estimator`
decodes a frame whose fixed-step NMS had not converged again from them, exactly.

On the CPU (and with ``capture=False``) the same program runs eagerly: that is how CI checks it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from das_core.camera import Intrinsics, ResizeRecord
from das_core.config import ModelConfig
from das_core.engine.capture_lock import CAPTURE_LOCK
from das_core.engine.decode import (
    NMS_ITERS_PER_BLOCK,
    camera_table,
    decode_batch,
    pack_decoded,
    unpack_persons,
)
from das_core.engine.preprocess import normalisation_tensors, preprocess_frames
from das_core.model.dense import cell_centers, level_sizes
from das_core.model.outputs import DenseOutputs
from das_core.persons import Persons
from das_core.skeletons import get_skeleton

__all__ = ["FrameGraph", "Network"]

log = logging.getLogger(__name__)

Network = Callable[[Tensor], DenseOutputs]


class FrameGraph:
    """Captured (or, on the CPU, eager) program for B frames of one size.

    Args:
        network: ``images (B, 3, Hp, Wp) float32 → DenseOutputs``; must not synchronise with the host (a
            backend's ``capturable``). It is called during capture only.
        cfg: the model config (input, decoding, strides).
        batch: B frames per call. frame_hw: (H, W) of every frame, original pixels.
        device: where everything runs. capture: record a CUDA graph (CUDA only).
        memory_format: the memory format the network wants its input in.
        nms_iters: fixed OKS-NMS steps (see :mod:`das_core.engine.decode`).
        compile: compile preprocessing and decoding with ``torch.compile`` (Inductor fuses decoding's
            ~150 small kernels: 1.3 → 0.5 ms on an H100). Off on the CPU, where it would need a C++
            compiler and minutes.

    Call with B (H, W, 3) uint8 RGB frames (numpy or CPU tensors) and B intrinsics.
    """

    def __init__(
        self,
        network: Network,
        cfg: ModelConfig,
        batch: int,
        frame_hw: tuple[int, int],
        device: torch.device,
        *,
        capture: bool = True,
        memory_format: torch.memory_format = torch.contiguous_format,
        nms_iters: int = NMS_ITERS_PER_BLOCK,
        compile: bool = False,
    ) -> None:
        h, w = frame_hw
        self.cfg, self.batch, self.frame_hw, self.device = cfg, batch, (h, w), device
        self.network, self.memory_format, self.nms_iters = network, memory_format, nms_iters
        self.record = ResizeRecord.for_image(w, h, cfg.input.long_side, cfg.input.short_side, cfg.input.size_divisor)
        hp, wp = self.record.padded_height, self.record.padded_width
        self.sizes = level_sizes(hp, wp, cfg.strides)
        self.points, self.point_strides = cell_centers(self.sizes, tuple(cfg.strides), device=device)
        self.num_joints = get_skeleton(cfg.skeleton).num_joints
        cuda = device.type == "cuda"
        # Host staging (pinned on CUDA so that the graph's copy nodes are true asynchronous DMA).
        self.host_frames = torch.empty((batch, h, w, 3), dtype=torch.uint8, pin_memory=cuda)
        self.host_cameras = torch.empty((batch, 7), dtype=torch.float32, pin_memory=cuda)
        # Static device buffers, written by the graph's upload nodes.
        self.frames = torch.empty((batch, h, w, 3), dtype=torch.uint8, device=device)
        self.cameras = torch.empty((batch, 7), dtype=torch.float32, device=device)
        self.mean, self.inv_std = normalisation_tensors(cfg.input, device)
        self.capture_s = 0.0
        self.last_ms = (0.0, 0.0, 0.0)  # host staging copy, device time of the program, host unpacking
        self.graph: torch.cuda.CUDAGraph | None = None
        self.dense: DenseOutputs | None = None
        self._pre: Callable[[Tensor], Tensor] = self._preprocess
        self._post: Callable[[DenseOutputs, Tensor], Tensor] = self._decode
        if compile:
            self._pre = torch.compile(self._preprocess, dynamic=False)
            self._post = torch.compile(self._decode, dynamic=False)
        self.packed: Tensor | None = None
        self.host_packed: Tensor | None = None
        if capture and cuda:
            self._capture()

    # -- the program ------------------------------------------------------------------------------

    def _preprocess(self, frames: Tensor) -> Tensor:
        images = preprocess_frames(frames, self.record, self.mean, self.inv_std)
        return images.contiguous(memory_format=self.memory_format)

    def _decode(self, dense: DenseOutputs, cameras: Tensor) -> Tensor:
        decoded = decode_batch(dense, self.points, self.point_strides, self.sizes, cameras, self.cfg,
                               nms_iters=self.nms_iters)
        return pack_decoded(decoded)

    def _program(self) -> Tensor:
        """Upload → preprocess → network → decode → packed (B, width) results, all on ``device``."""
        self.frames.copy_(self.host_frames, non_blocking=True)
        self.cameras.copy_(self.host_cameras, non_blocking=True)
        self.dense = self.network(self._pre(self.frames))
        return self._post(self.dense, self.cameras)

    def _capture(self) -> None:
        with CAPTURE_LOCK:  # no other thread's CUDA work between the warm-up and the end of the capture
            self._capture_locked()

    def _capture_locked(self) -> None:
        t0 = time.perf_counter()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):  # warm-up: lets cuDNN / Triton pick kernels and the allocator settle
            for _ in range(3):
                packed = self._program()
        torch.cuda.current_stream(self.device).wait_stream(side)
        torch.cuda.synchronize(self.device)
        host = torch.empty(packed.shape, dtype=packed.dtype, pin_memory=True)  # before capture: no allocation in it
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            packed = self._program()
            host.copy_(packed, non_blocking=True)
        self.graph, self.packed, self.host_packed = graph, packed, host
        self.capture_s = time.perf_counter() - t0
        log.info("frame graph: %d × %d×%d captured in %.1f s", self.batch, *self.frame_hw, self.capture_s)

    # -- running ----------------------------------------------------------------------------------

    def __call__(self, images: Sequence[np.ndarray | Tensor], cameras: Sequence[Intrinsics]) -> tuple[list[Persons], list[bool]]:
        """People in B host frames (already validated by the caller) → ``(persons, nms_converged)``."""
        t0 = time.perf_counter()
        for i, img in enumerate(images):
            src = torch.from_numpy(np.ascontiguousarray(img)) if isinstance(img, np.ndarray) else img
            self.host_frames[i].copy_(src)  # torch's copy is multi-threaded: ~10× np.copyto for 2.7 MB
        self.host_cameras.copy_(camera_table([self.record] * self.batch, cameras))
        t1 = time.perf_counter()
        if self.graph is not None:
            assert self.host_packed is not None
            stream = torch.cuda.current_stream(self.device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            self.graph.replay()
            end.record(stream)
            end.synchronize()  # the frame's one wait
            device_ms = start.elapsed_time(end)
            packed = self.host_packed.numpy()
        else:
            packed = self._program().cpu().numpy()
            device_ms = (time.perf_counter() - t1) * 1e3
        t2 = time.perf_counter()
        out = unpack_persons(packed, self.num_joints)
        self.last_ms = ((t1 - t0) * 1e3, device_ms, (time.perf_counter() - t2) * 1e3)
        return out
