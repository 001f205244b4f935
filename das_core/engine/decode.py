"""Dense head outputs + camera → people in 3D (DAS_SPEC §7), on the device, without host syncs.

Per image: score every cell (already done by ``to_dense``) → keep the ``nms_pre`` best cells of each
level → threshold at ``score_thr`` → joint pixels ``p + S·U`` in the network input → original-image pixels
→ OKS-NMS (hard, greedy by score) → ``nms_post`` best survivors → lift to metres with the intrinsics.

Everything is done with fixed-size tensors and masks, so with ``nms_iters=n`` nothing here waits for the
device; the one host sync of a frame is :func:`transfer` (or :meth:`DecodedPersons.to_persons`), which
copies the few kept rows to numpy in a single copy.

OKS-NMS gives the exact greedy result, computed in parallel. Candidates are sorted by score; ``S[i, j]``
says "i would suppress j" (i before j, OKS > ``nms_thr``, both valid). Greedy keeps j iff no *kept* i
before it suppresses it, i.e. ``keep = valid & ¬(Sᵀ·keep)``. On this DAG that equation has exactly one
solution (decide candidates in order), and the Jacobi iteration ``keep ← valid & ¬(Sᵀ·keep_prev)``
started from ``valid`` reaches it: after t steps every candidate whose longest chain of predecessors in S is
shorter than t is final, so at most C + 1 steps are needed, and two equal consecutive iterates *are* the
solution. In real frames a few steps suffice (a chain needs OKS > 0.9 link by link, but ≤ 0.9 across).
Two modes:

* ``nms_iters=n`` (CUDA default in the Estimator): the valid candidates are moved to the front and the OKS
  matrix is built on the first ``T = min(C, NMS_MAX_CANDIDATES)``; n steps run without syncing, and each
  frame reports ``nms_converged`` = "the last step changed nothing and no valid candidate was beyond T".
* ``nms_iters=None`` (the default here; the CPU default in the Estimator): exact. It counts the valid
  candidates (a sync) so T is as small as possible, and iterates until converged (a sync per block of
  :data:`NMS_ITERS_PER_BLOCK` steps). :class:`~das_core.engine.estimator.Estimator` also uses it to redo the rare
  frame whose fixed-step result had not converged, so its results are always the exact greedy answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from das_core.camera import Intrinsics, ResizeRecord, from_resized, to_resized
from das_core.config import ModelConfig
from das_core.model.outputs import DenseOutputs
from das_core.persons import Persons
from das_core.skeletons import get_skeleton

__all__ = [
    "DecodeError",
    "lift_all_cells",
    "calibrate_confidence",
    "DecodedPersons",
    "PixelMapping",
    "camera_table",
    "joint_covariance",
    "decode",
    "decode_batch",
    "device_camera_table",
    "oks_nms",
    "pack_decoded",
    "packed_width",
    "unpack_persons",
    "pairwise_oks",
    "pixel_mapping",
    "to_persons_batch",
    "transfer",
]

# Jacobi steps of the OKS-NMS fixed point per block (see the module docstring).
NMS_ITERS_PER_BLOCK = 16
# Largest number of valid candidates the sync-free OKS-NMS handles per image (B·T² OKS entries).
NMS_MAX_CANDIDATES = 1024


class DecodeError(ValueError):
    """Decoder inputs do not fit together (batch size, cell count, cameras), or NMS was left unfinished."""


# ----------------------------------------------------------------------------------------------
# Pixel mapping: the one switch between our convention and the released model's (DAS_SPEC §3.2, §7)
# ----------------------------------------------------------------------------------------------


class PixelMapping(NamedTuple):
    """Network-input pixels ↔ original-image pixels for per-axis scale ``s = (sx, sy)``.

    Both take ``uv (..., 2)`` and ``s`` broadcastable to it, and return ``(..., 2)``.
    """

    to_original: Callable[[Tensor, Tensor], Tensor]
    to_network: Callable[[Tensor, Tensor], Tensor]


def _official_to_original(uv: Tensor, s: Tensor) -> Tensor:
    return uv / s


def _official_to_network(uv: Tensor, s: Tensor) -> Tensor:
    return uv * s


def pixel_mapping(compat: str) -> PixelMapping:
    """The coordinate mapping for ``ModelConfig.compat``.

    * ``"native"``: pixel centres, ``x_orig = (x_net + 0.5) / s − 0.5`` — :func:`das_core.camera.from_resized`,
      the convention of ``cv2.resize`` and of the whole library; exact for our own training pipeline.
    * ``"official"``: ``x_orig = x_net / s`` — what the released DAS code does (mmdet rescales labels and
      predictions by multiplying/dividing by the scale factor, no half-pixel terms; DAS_SPEC §3.2, §7). A
      checkpoint trained that way learnt targets in this convention, so it must be decoded with it; the
      difference is ``0.5·(1/s − 1)`` px in the original image.

    This is the only place where the two conventions differ in decoding.
    """
    if compat == "native":
        return PixelMapping._make((from_resized, to_resized))  # _make: see DecodedPersons below
    if compat == "official":
        return PixelMapping._make((_official_to_original, _official_to_network))
    raise DecodeError(f"compat: unknown pixel convention {compat!r}; expected 'native' or 'official'")


# ----------------------------------------------------------------------------------------------
# OKS-NMS
# ----------------------------------------------------------------------------------------------


def pairwise_oks(joints: Tensor, sigma: float) -> Tensor:
    """OKS between every pair of poses of each image (DAS_SPEC §7 step 6).

    ``OKS(a, b) = mean_k exp(−d_k² / (2·A·(2σ)²))`` with A the mean of the two poses' joint-box areas
    (px²) and the same σ for every joint; all joints count as visible.

    Args:
        joints: (B, C, K, 2) pixels.
        sigma: per-joint OKS σ (0.08 in the official config).

    Returns:
        (B, C, C) float32 OKS in [0, 1]; symmetric, 1 on the diagonal.
    """
    joints = joints.to(torch.float32)
    b, c, k, _ = joints.shape
    extent = joints.amax(dim=2) - joints.amin(dim=2)  # (B, C, 2) joint-box width, height
    area = extent[..., 0] * extent[..., 1]  # (B, C)
    pair_area = 0.5 * (area[:, :, None] + area[:, None, :])  # (B, C, C)
    # A degenerate (all joints on one point) pair would divide 0 by 0; a tiny floor gives OKS 1 for identical
    # points and 0 otherwise, which is the limit of the formula.
    inv = 1.0 / (2.0 * pair_area * (2.0 * sigma) ** 2).clamp_min(1e-12)
    total = torch.zeros((b, c, c), dtype=torch.float32, device=joints.device)
    # Joints in chunks: few kernel launches, yet at most ~2^24 elements per (B, C, C, k) temporary.
    step = max(1, min(k, (1 << 24) // max(1, b * c * c)))
    for j0 in range(0, k, step):
        jt = joints[:, :, j0 : j0 + step]  # (B, C, k, 2)
        d2 = (jt[:, :, None] - jt[:, None, :]).square().sum(dim=-1)  # (B, C, C, k)
        total += torch.exp(-d2 * inv[..., None]).sum(dim=-1)
    return total / k


def _jacobi(suppress: Tensor, valid: Tensor, keep: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """``steps`` Jacobi steps of ``keep = valid & ¬(Sᵀ·keep)``; returns (keep, changed-in-last-step (B,))."""
    changed = torch.ones(valid.shape[0], dtype=torch.bool, device=valid.device)
    for _ in range(steps):
        hits = torch.bmm(keep.to(suppress.dtype).unsqueeze(1), suppress).squeeze(1)  # (B, C) kept suppressors
        new = valid & (hits <= 0)
        changed = (new != keep).any(dim=1)
        keep = new
    return keep, changed


def oks_nms(
    joints: Tensor,
    valid: Tensor,
    nms_thr: float,
    sigma: float,
    iters: int | None = None,
    max_candidates: int = NMS_MAX_CANDIDATES,
) -> tuple[Tensor, Tensor]:
    """Greedy OKS-NMS over candidates already sorted by score (best first), vectorised over B.

    Only valid candidates matter, so they are moved to the front (keeping their order) and the pairwise
    OKS is computed on the first T of them: T = the largest valid count in exact mode (a host sync), or the
    fixed ``min(C, max_candidates)`` otherwise (a frame with more valid candidates is reported as not
    converged).

    Args:
        joints: (B, C, K, 2) joint pixels of the candidates, in descending score order.
        valid: (B, C) bool, candidates taking part (above the score threshold).
        nms_thr: a candidate with OKS > nms_thr to a kept, better one is suppressed.
        sigma: OKS σ for every joint.
        iters: ``None`` = exact (syncs: once to count the valid candidates, once per block of
            :data:`NMS_ITERS_PER_BLOCK` steps); an int = that many Jacobi steps and no sync.
        max_candidates: T bound in the fixed-step mode (memory and time grow as B·T²).

    Returns:
        ``(keep (B, C) bool, converged (B,) bool)``; where converged is True, ``keep`` is exactly the greedy
        result (always the case with ``iters=None``).
    """
    b, c = valid.shape
    dev = valid.device
    if c == 0:
        return valid.clone(), torch.ones(b, dtype=torch.bool, device=dev)
    # valid candidates first, in their (score) order: a stable sort on the flag
    front = torch.sort(valid.to(torch.uint8), dim=1, descending=True, stable=True).indices  # (B, C)
    count = valid.sum(dim=1)  # (B,)
    t = max(1, int(count.max())) if iters is None else min(c, max_candidates)
    rows = front[:, :t]  # (B, T) positions in C
    batch_ix = torch.arange(b, device=dev)[:, None]
    v = valid[batch_ix, rows]  # (B, T)
    oks = pairwise_oks(joints[batch_ix, rows], sigma)  # (B, T, T)
    later = torch.ones((t, t), dtype=torch.bool, device=dev).triu_(diagonal=1)  # i before j
    s = ((oks > nms_thr) & later & v[:, :, None] & v[:, None, :]).to(torch.float32)  # i suppresses j
    keep = v.clone()
    if iters is not None:
        keep, changed = _jacobi(s, v, keep, iters)
        # T + 1 steps always reach the fixed point, whatever the last step said.
        converged = (~changed | (iters > t)) & (count <= t)
    else:
        done = 0
        while True:  # at most ⌈(T + 1) / block⌉ blocks
            keep, changed = _jacobi(s, v, keep, NMS_ITERS_PER_BLOCK)
            done += NMS_ITERS_PER_BLOCK
            if done > t or not bool(changed.any()):
                break
        converged = torch.ones(b, dtype=torch.bool, device=dev)
    out = torch.zeros_like(valid)
    out[batch_ix, rows] = keep
    return out, converged


# ----------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------


class DecodedPersons(NamedTuple):
    """People of one image, still on the device. M = min(nms_post, candidates); rows sorted by score.

    The first ``valid.sum()`` rows are the kept people (best first); the remaining rows are padding with
    unspecified values. Keeping a fixed M is what lets decoding run without a host sync.

    Attributes:
        scores: (M,) float32 detection score in [0, 1].
        joints_3d: (M, K, 3) float32 metres, camera optical frame (x right, y down, z forward).
        joints_2d: (M, K, 2) float32 pixels of the original image.
        joint_confidence: (M, K) float32 ``clamp(1 − mean_axes(sigma), 0, 1)``, mapped through
            ``cfg.decode.confidence_calibration`` when the checkpoint has one (:func:`calibrate_confidence`).
        joint_covariance: (M, K, 3, 3) float32 position covariance in m², optical frame
            (:func:`joint_covariance`).
        valid: (M,) bool, True on the kept prefix.
        nms_converged: () bool, False when OKS-NMS stopped after a fixed number of steps before reaching
            the exact greedy answer (only possible with ``decode(..., nms_iters=n)``).
    """

    scores: Tensor
    joints_3d: Tensor
    joints_2d: Tensor
    joint_confidence: Tensor
    joint_covariance: Tensor
    valid: Tensor
    nms_converged: Tensor

    def to_persons(self) -> Persons:
        """Copy to numpy (the frame's one host sync). Raises :class:`DecodeError` if NMS is unfinished."""
        return to_persons_batch([self])[0]


def camera_table(records: Sequence[ResizeRecord], cameras: Sequence[Intrinsics]) -> Tensor:
    """(B, 7) float32 host table ``[fx, fy, cx, cy, skew, sx, sy]`` of each image's camera and resize."""
    rows = []
    for i, (rec, cam) in enumerate(zip(records, cameras, strict=True)):
        if not isinstance(cam, Intrinsics):
            raise DecodeError(f"cameras[{i}]: expected Intrinsics, got {type(cam).__name__}")
        if not isinstance(rec, ResizeRecord):
            raise DecodeError(f"records[{i}]: expected ResizeRecord, got {type(rec).__name__}")
        rows.append([cam.fx, cam.fy, cam.cx, cam.cy, cam.skew, rec.sx, rec.sy])
    return torch.tensor(rows, dtype=torch.float32)


def device_camera_table(records: Sequence[ResizeRecord], cameras: Sequence[Intrinsics], device: torch.device) -> Tensor:
    """:func:`camera_table` on ``device``, copied without a host sync."""
    table = camera_table(records, cameras)
    if device.type == "cuda":
        return table.pin_memory().to(device, non_blocking=True)  # a pageable copy would sync the stream
    return table.to(device)


def joint_covariance(
    sigma_uv: Tensor,
    sigma_z: Tensor,
    uv: Tensor,
    z: Tensor,
    cam: Tensor,
) -> Tensor:
    """First-order propagation of pixel and depth standard deviations through the back-projection.

    With ``y_n = (v − cy)/fy``, ``x_n = (u − cx − skew·y_n)/fx`` and ``P = (x_n·Z, y_n·Z, Z)``, the
    Jacobian of P with respect to (u, v, Z) has the columns ``(Z/fx, 0, 0)``, ``(−skew·Z/(fx·fy), Z/fy, 0)``
    and ``(x_n, y_n, 1)``; the last one is the viewing ray, so depth uncertainty stretches the ellipsoid
    along the ray. u, v and Z are taken as independent: ``Σ = J·diag(σ_u², σ_v², σ_Z²)·Jᵀ``.

    Args:
        sigma_uv: (B, M, K, 2) standard deviation of u, v in pixels of the original image.
        sigma_z: (B, M, K) standard deviation of Z in metres.
        uv: (B, M, K, 2) pixels of the original image.
        z: (B, M, K) depth in metres.
        cam: (B, 7) :func:`camera_table` (only fx, fy, cx, cy, skew are used).

    Returns:
        (B, M, K, 3, 3) symmetric positive semi-definite covariance in m², optical frame.
    """
    fx, fy, cx, cy, skew = (cam[:, i, None, None] for i in range(5))  # each (B, 1, 1)
    y_n = (uv[..., 1] - cy) / fy
    x_n = (uv[..., 0] - cx - skew * y_n) / fx
    zeros, ones = torch.zeros_like(z), torch.ones_like(z)
    col_u = torch.stack([z / fx, zeros, zeros], dim=-1)
    col_v = torch.stack([-skew * z / (fx * fy), z / fy, zeros], dim=-1)
    col_z = torch.stack([x_n, y_n, ones], dim=-1)
    jac = torch.stack([col_u, col_v, col_z], dim=-1)  # (B, M, K, 3 rows, 3 columns)
    var = torch.cat([sigma_uv, sigma_z[..., None]], dim=-1).square()  # (B, M, K, 3)
    cov = (jac * var[..., None, :]) @ jac.transpose(-1, -2)
    return 0.5 * (cov + cov.transpose(-1, -2))  # exactly symmetric despite rounding


def decode(
    dense: DenseOutputs,
    points: Tensor,
    point_strides: Tensor,
    level_sizes: Sequence[tuple[int, int]],
    records: Sequence[ResizeRecord],
    cameras: Sequence[Intrinsics],
    cfg: ModelConfig,
    *,
    nms_iters: int | None = None,
) -> list[DecodedPersons]:
    """Dense outputs of a batch → kept people per image, on the device (DAS_SPEC §7).

    Args:
        dense: (B, P, …) outputs (any float dtype; decoding is float32).
        points: (P, 2) cell centres ``S·(j + 0.5), S·(i + 0.5)`` in network-input pixels (``cell_centers``).
        point_strides: (P,) the stride S of each cell's level.
        level_sizes: L × (H_l, W_l), in the order of P (level-major).
        records: B resize records (original image ↔ network input).
        cameras: B intrinsics of the *original* images.
        cfg: model config (``decode.*``, ``z_norm``, ``compat``, ``uncertainty``, ``skeleton``).
        nms_iters: ``None`` = exact OKS-NMS (may sync); an int runs that many steps without syncing and
            reports convergence in ``nms_converged``.

    Returns:
        B :class:`DecodedPersons`.

    Raises:
        DecodeError: batch sizes, cell counts or camera types do not fit.
    """
    b = dense.scores.shape[0] if dense.scores.ndim == 2 else -1
    if b >= 0 and (len(records) != b or len(cameras) != b):
        raise DecodeError(f"batch of {b} images needs {b} records and cameras, got {len(records)} and {len(cameras)}")
    cam = device_camera_table(records, cameras, dense.scores.device)
    batch = decode_batch(dense, points, point_strides, level_sizes, cam, cfg, nms_iters=nms_iters)
    return [DecodedPersons(*(t[i] for t in batch)) for i in range(cam.shape[0])]


def decode_batch(
    dense: DenseOutputs,
    points: Tensor,
    point_strides: Tensor,
    level_sizes: Sequence[tuple[int, int]],
    cam: Tensor,
    cfg: ModelConfig,
    *,
    nms_iters: int | None = None,
) -> DecodedPersons:
    """:func:`decode` on tensors only: ``cam`` is the (B, 7) :func:`camera_table` on the device.

    Returns one :class:`DecodedPersons` whose fields carry a leading batch axis (B, M, …). With an integer
    ``nms_iters`` every shape is fixed and nothing waits for the host, so the call can be captured in a CUDA
    graph together with the network (:mod:`das_core.engine.frame_graph`).
    """
    dc = cfg.decode
    scores = dense.scores
    if scores.ndim != 2:
        raise DecodeError(f"dense.scores: expected (B, P), got shape {tuple(scores.shape)}")
    b, p = scores.shape
    if cam.shape != (b, 7):
        raise DecodeError(f"batch of {b} images needs a ({b}, 7) camera table, got {tuple(cam.shape)}")
    cells = sum(h * w for h, w in level_sizes)
    if cells != p or points.shape != (p, 2) or point_strides.shape != (p,):
        raise DecodeError(
            f"level sizes {list(level_sizes)} give {cells} cells, points {tuple(points.shape)}, strides "
            f"{tuple(point_strides.shape)}, but the outputs have P = {p}"
        )
    device = scores.device
    mapping = pixel_mapping(cfg.compat)
    batch_ix = torch.arange(b, device=device)[:, None]  # (B, 1)

    # 1–2. Per-level pre-NMS top-k (DAS_SPEC §7): C = Σ_l min(nms_pre, H_l·W_l) candidates per image.
    scores = scores.to(torch.float32)
    cand_idx, start = [], 0
    for h, w in level_sizes:
        n = h * w
        if n > 0:
            cand_idx.append(torch.topk(scores[:, start : start + n], min(dc.nms_pre, n), dim=1).indices + start)
        start += n
    if not cand_idx:
        raise DecodeError(f"no cells to decode: level sizes {list(level_sizes)}")
    idx = torch.cat(cand_idx, dim=1)  # (B, C) indices into P
    cand_scores = scores.gather(1, idx)
    # 5. Threshold (a mask, not a filter: sizes stay fixed), then sort best first; invalid rows sink to the end.
    valid = cand_scores > dc.score_thr
    order = torch.sort(torch.where(valid, cand_scores, -1.0), dim=1, descending=True, stable=True).indices
    idx, cand_scores, valid = idx.gather(1, order), cand_scores.gather(1, order), valid.gather(1, order)

    # 3–4. Joint pixels: network input p + S·U, then original image.
    off = dense.offsets[batch_ix, idx].to(torch.float32)  # (B, C, K, 3)
    uv_net = points[idx][:, :, None, :] + point_strides[idx][:, :, None, None] * off[..., :2]  # (B, C, K, 2)
    scale = cam[:, None, None, 5:7]  # (B, 1, 1, 2) sx, sy
    uv = mapping.to_original(uv_net, scale)

    # 6. OKS-NMS in original pixels, then the nms_post best survivors.
    keep, converged = oks_nms(uv, valid, dc.nms_thr, dc.oks_sigma, nms_iters)
    m = min(dc.nms_post, idx.shape[1])
    sel = torch.topk(torch.where(keep, cand_scores, -1.0), m, dim=1).indices  # (B, M), best first
    out_valid = keep.gather(1, sel)
    out_scores = cand_scores.gather(1, sel)
    sel_cells = idx.gather(1, sel)  # (B, M) indices into P
    uv = uv[batch_ix, sel]  # (B, M, K, 2)
    dz = cfg.z_norm * off[batch_ix, sel][..., 2]  # (B, M, K) metres, root-relative (root's d is 0)

    # Lift: Z_root = (Z/f_eff) · f_eff with f_eff = sqrt(fx·sx · fy·sy), the focal length of the network input.
    fx, fy, cx, cy, skew, sx, sy = (cam[:, i, None, None] for i in range(7))  # each (B, 1, 1)
    f_eff = torch.sqrt(fx * sx * fy * sy)[..., 0]  # (B, 1)
    z_root = dense.root_depth.to(torch.float32)[batch_ix, sel_cells] * f_eff  # (B, M)
    z = z_root[..., None] + dz  # (B, M, K)
    # Back-project with the original intrinsics and original pixels (equivalent to scaled K + network px);
    # the 2×2 block [[fx, skew], [0, fy]] is inverted explicitly.
    y_n = (uv[..., 1] - cy) / fy
    x_n = (uv[..., 0] - cx - skew * y_n) / fx
    joints_3d = torch.stack([x_n * z, y_n * z, z], dim=-1)  # (B, M, K, 3)
    sig = dense.sigma[batch_ix, sel_cells].to(torch.float32)  # (B, M, K, 3)
    conf = calibrate_confidence((1.0 - sig.mean(dim=-1)).clamp(0.0, 1.0), cfg.decode.confidence_calibration)

    # Uncertainty (ModelConfig.uncertainty): u, v sigma in stride units → original pixels (both pixel
    # mappings scale by 1/s); d sigma in z_norm units → metres, except at the root, whose d is 0 by
    # construction (its d-sigma is a constant, sigmoid(1)); root depth has no predicted sigma, so a
    # calibrated fraction of Z_root stands in for it, shared by all joints of the person.
    unc = cfg.uncertainty
    stride = point_strides[sel_cells].to(torch.float32)[..., None, None]  # (B, M, 1, 1)
    sigma_uv = unc.offset_scale * stride * sig[..., :2] / scale  # (B, M, K, 2) original px
    not_root = torch.ones(sig.shape[2], device=device)
    not_root[get_skeleton(cfg.skeleton).root] = 0.0
    sigma_dz = unc.depth_scale * cfg.z_norm * sig[..., 2] * not_root  # (B, M, K) metres
    sigma_root = unc.root_depth_rel * z_root.abs()  # (B, M) metres
    sigma_z = torch.sqrt(sigma_root[..., None].square() + sigma_dz.square())
    cov = joint_covariance(sigma_uv, sigma_z, uv, z, cam)

    # _make: compiled code must not call a NamedTuple's generated __new__ (compile_cache.enable_dynamo_cache)
    return DecodedPersons._make((out_scores, joints_3d, uv, conf, cov, out_valid, converged))


def calibrate_confidence(raw: Tensor, knots: Sequence[tuple[float, float]]) -> Tensor:
    """Map raw joint confidence through the piecewise-linear (raw, calibrated) ``knots`` (any shape).

    Written as a sum of clamped ramps with Python-float constants, so it needs no tensor of knots on the device
    and stays capturable in a CUDA graph. Below the first knot the first value holds, above the last the last.
    """
    if not knots:
        return raw
    out = torch.full_like(raw, float(knots[0][1]))
    for (x0, y0), (x1, y1) in zip(knots[:-1], knots[1:], strict=False):
        out = out + (raw - x0).clamp(0.0, x1 - x0) * ((y1 - y0) / (x1 - x0))
    return out


# ----------------------------------------------------------------------------------------------
# Host transfer: the one sync of a frame
# ----------------------------------------------------------------------------------------------


# Floats per person and joint in the packed block: 3D (3) + 2D (2) + confidence (1) + covariance (9).
_PER_JOINT = 15


def packed_width(m: int, k: int) -> int:
    """Floats per frame in :func:`pack_decoded`: converged flag, then M valid flags, M scores, M·K·3, M·K·2,
    M·K confidences, M·K·9 covariances."""
    return 1 + m * (2 + _PER_JOINT * k)


def pack_decoded(batch: DecodedPersons) -> Tensor:
    """A batched :class:`DecodedPersons` (B, M, …) → one (B, :func:`packed_width`) float32 tensor.

    One contiguous block per batch means one device→host copy (here or captured in a CUDA graph).
    """
    b = batch.scores.shape[0]
    return torch.cat(
        [
            batch.nms_converged.reshape(b, 1).to(torch.float32),
            batch.valid.reshape(b, -1).to(torch.float32),
            batch.scores.reshape(b, -1).to(torch.float32),
            batch.joints_3d.reshape(b, -1).to(torch.float32),
            batch.joints_2d.reshape(b, -1).to(torch.float32),
            batch.joint_confidence.reshape(b, -1).to(torch.float32),
            batch.joint_covariance.reshape(b, -1).to(torch.float32),
        ],
        dim=1,
    )


def unpack_persons(packed: np.ndarray, k: int) -> tuple[list[Persons], list[bool]]:
    """Host side of :func:`pack_decoded`: (B, width) → one :class:`Persons` per frame (its valid rows,
    best first, copied out of ``packed``) and whether its OKS-NMS had converged. M follows from the width."""
    per_person = 2 + _PER_JOINT * k
    m = (packed.shape[-1] - 1) // per_person if packed.ndim == 2 else -1
    if packed.ndim != 2 or m < 0 or packed.shape[1] != packed_width(m, k):
        raise DecodeError(f"packed results: expected (B, 1 + M·{per_person}) for K={k}, got shape {packed.shape}")
    persons, converged = [], []
    bounds = np.cumsum([0, 1, m, m, m * k * 3, m * k * 2, m * k, m * k * 9])
    for row in packed:
        flag, valid, scores, j3, j2, conf, cov = (row[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True))
        n = int((valid > 0.5).sum())  # the valid rows are a prefix
        converged.append(bool(flag[0] > 0.5))
        persons.append(
            Persons(
                scores=scores[:n].copy(),
                joints_3d=j3.reshape(m, k, 3)[:n].copy(),
                joints_2d=j2.reshape(m, k, 2)[:n].copy(),
                joint_confidence=conf.reshape(m, k)[:n].copy(),
                track_ids=np.full((n,), -1, dtype=np.int64),
                joint_covariance=cov.reshape(m, k, 3, 3)[:n].copy(),
            )
        )
    return persons, converged


def transfer(decoded: Sequence[DecodedPersons]) -> tuple[list[Persons], list[bool]]:
    """Copy decoded frames to numpy in a single device→host copy.

    Returns:
        ``(persons, converged)``: one :class:`Persons` per frame (valid rows only, best first) and whether
        its OKS-NMS had converged (if not, the rows are a close approximation; see :func:`decode`).
    """
    if not decoded:
        return [], []
    batch = DecodedPersons(*(torch.stack(list(t)) for t in zip(*decoded, strict=True)))
    return unpack_persons(pack_decoded(batch).cpu().numpy(), batch.joints_3d.shape[2])  # .cpu(): the host sync


def to_persons_batch(decoded: Sequence[DecodedPersons]) -> list[Persons]:
    """:func:`transfer`, refusing frames whose OKS-NMS is unfinished (decode them with ``nms_iters=None``)."""
    persons, converged = transfer(decoded)
    bad = [i for i, ok in enumerate(converged) if not ok]
    if bad:
        raise DecodeError(
            f"frames {bad}: OKS-NMS did not converge within the fixed number of steps; "
            "decode them again with nms_iters=None for the exact result"
        )
    return persons


def lift_all_cells(dense: DenseOutputs, cfg: ModelConfig, input_hw: tuple[int, int], record: ResizeRecord,
                   camera: Intrinsics) -> Tensor:
    """Every cell's candidate pose in metres, (B, P, K, 3) — the decoder's lift without selection/NMS (used to
    compare backends cell by cell: ``das_core.engine.bench``, the int8 check of ``backends.onnx_int8``)."""
    from das_core.model.dense import cell_centers, level_sizes

    sizes = level_sizes(*input_hw, tuple(cfg.strides))
    pts, strd = cell_centers(sizes, tuple(cfg.strides), dense.offsets.device)
    off = dense.offsets.float()
    uv_net = pts[None, :, None, :] + strd[None, :, None, None] * off[..., :2]
    s = torch.tensor([record.sx, record.sy], device=off.device)
    uv = pixel_mapping(cfg.compat).to_original(uv_net, s)
    f_eff = math.sqrt(camera.fx * record.sx * camera.fy * record.sy)
    z = dense.root_depth.float()[..., None] * f_eff + cfg.z_norm * off[..., 2]
    y = (uv[..., 1] - camera.cy) / camera.fy
    x = (uv[..., 0] - camera.cx - camera.skew * y) / camera.fx
    return torch.stack([x * z, y * z, z], dim=-1)
