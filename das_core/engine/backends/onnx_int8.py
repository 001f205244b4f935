"""int8 for the ``onnx`` backend on the CPU: static QDQ quantisation of the convolutions, calibrated, then checked.

Why static QDQ of ``Conv`` only: the convolutions are ~85 % of the fp32 graph's time on the CPU, and
onnxruntime runs a QDQ ``Conv`` as one ``QLinearConv`` (u8 activations × s8 per-channel weights, VNNI on
x86). Dynamic quantisation (``ConvInteger``, activations quantised per run) was no faster than fp32 in an
exploratory run here (docs/PERFORMANCE.md, "CPU backends"); the head's GroupNorm, the softmax and the deformable
sampling stay fp32.

Calibration frames (activation ranges, MinMax): a folder of the user's own images when given (best: frames
of the robot's camera), else :data:`CALIBRATION_COUNT` basic-recipe synthetic scenes rendered on the spot
(``das make-synthetic``'s renderer, split ``val``, seed :data:`CALIBRATION_SEED` — never the test split).

The check (:func:`int8_agreement`): on :data:`CHECK_COUNT` further frames, not used for calibration, the
int8 graph and the fp32 graph are run on the same input and every cell the fp32 graph would detect
(score ≥ ``decode.score_thr``; the 20 best cells per frame when none does) is lifted to 3D with a nominal
camera (60° horizontal field of view). The int8 graph is accepted when the median of those cells' mean joint
distance is ≤ ``max_joint_mm`` (default ``AGREEMENT["int8"]["joints_mm"]``, 50 mm) and the detected cells
agree (Jaccard index ≥ :data:`MIN_DETECTION_JACCARD`); otherwise the backend refuses to build. The shipped
model passes at ~12–17 mm (its own error on the synthetic test split is ~123 mm root-relative).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from das_core.camera import Intrinsics, ResizeRecord
from das_core.config import ModelConfig
from das_core.engine.backends.base import BackendError
from das_core.model.outputs import DenseOutputs

__all__ = ["CALIBRATION_COUNT", "CALIBRATION_SEED", "CHECK_COUNT", "MIN_DETECTION_JACCARD", "calibration_frames",
           "calibration_source",
           "int8_agreement", "network_input", "quantize_int8"]

log = logging.getLogger(__name__)

CALIBRATION_COUNT = 16
CHECK_COUNT = 4
CALIBRATION_SEED = 14
MIN_DETECTION_JACCARD = 0.5
_TOP_CELLS = 20  # cells per frame compared when the fp32 graph detects nobody (e.g. random weights)
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def _folder_images(folder: Path, count: int) -> list[Path]:
    if not folder.is_dir():
        raise BackendError(f"int8 calibration: {folder} is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if len(files) < count:
        raise BackendError(f"int8 calibration: {folder} has {len(files)} images ({', '.join(_IMAGE_SUFFIXES)}), "
                           f"need {count} ({CALIBRATION_COUNT} to calibrate, {CHECK_COUNT} to check)")
    return files[:count]


def calibration_source(source: str | Path | None, count: int) -> str:
    """What :func:`calibration_frames` would read, as text for the cache key (a changed file means a rebuild),
    without reading or rendering anything."""
    if source is None:
        return f"synthetic basic val seed {CALIBRATION_SEED} x{count}"
    files = _folder_images(Path(source), count)
    digest = hashlib.sha256("|".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files).encode())
    return f"folder {Path(source).resolve()} x{count} {digest.hexdigest()[:12]}"


def calibration_frames(source: str | Path | None, count: int) -> list[np.ndarray]:
    """``count`` (H, W, 3) uint8 RGB frames: ``source`` None → basic-recipe synthetic scenes (split ``val``, seed
    :data:`CALIBRATION_SEED`); a folder → its images in name order (fewer than ``count`` is an error)."""
    if count < 1:
        raise BackendError(f"int8 calibration: need at least one frame, got count={count}")
    if source is None:
        from das_core.data.synthetic import make_scene

        return [make_scene(CALIBRATION_SEED, "val", i).image for i in range(count)]
    import cv2

    frames = []
    for f in _folder_images(Path(source), count):
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BackendError(f"int8 calibration: {f} is not readable by OpenCV")
        frames.append(np.ascontiguousarray(bgr[..., ::-1]))
    return frames


def network_input(frame: np.ndarray, shape: Sequence[int], cfg: ModelConfig) -> tuple[np.ndarray, ResizeRecord]:
    """One frame → the (1, 3, H, W) float32 input of a fixed-shape graph, as the network would see it:
    keep-ratio resize to fit H × W, normalised, zero-padded bottom/right (:mod:`das_core.engine.preprocess`)."""
    import cv2

    _, _, hp, wp = (int(v) for v in shape)
    h, w = frame.shape[:2]
    s = min(wp / w, hp / h)
    rw, rh = min(wp, max(1, int(w * s + 0.5))), min(hp, max(1, int(h * s + 0.5)))
    resized = cv2.resize(frame, (rw, rh), interpolation=cv2.INTER_LINEAR) if (rw, rh) != (w, h) else frame
    mean = np.asarray(cfg.input.mean, np.float32)
    std = np.asarray(cfg.input.std, np.float32)
    x = np.zeros((1, 3, hp, wp), np.float32)
    x[0, :, :rh, :rw] = ((resized.astype(np.float32) - mean) / std).transpose(2, 0, 1)
    return x, ResizeRecord(w, h, rw, rh, wp, hp)


def int8_agreement(fp32: Sequence[DenseOutputs], int8: Sequence[DenseOutputs], cfg: ModelConfig,
                   shape: Sequence[int], records: Sequence[ResizeRecord], max_joint_mm: float) -> dict[str, Any]:
    """Compare an int8 graph's dense outputs with the fp32 graph's on the same check frames (see module doc).

    Returns the figures and ``pass``; the caller refuses the int8 graph when ``pass`` is False.
    """
    from das_core.engine.decode import lift_all_cells

    hw = (int(shape[2]), int(shape[3]))
    dists, det_a, det_b, both, fallback = [], 0, 0, 0, False
    score_diff = 0.0
    for ref, got, rec in zip(fp32, int8, records, strict=True):
        cam = Intrinsics.from_fov(rec.width, rec.height, 60.0)
        j_ref = lift_all_cells(ref, cfg, hw, rec, cam)[0]
        j_got = lift_all_cells(got, cfg, hw, rec, cam)[0]
        s_ref, s_got = ref.scores[0].float(), got.scores[0].float()
        a, b = s_ref >= cfg.decode.score_thr, s_got >= cfg.decode.score_thr
        det_a, det_b, both = det_a + int(a.sum()), det_b + int(b.sum()), both + int((a & b).sum())
        cells = a
        if not bool(a.any()):
            fallback = True
            cells = torch.zeros_like(a)
            cells[torch.topk(s_ref, min(_TOP_CELLS, s_ref.numel())).indices] = True
        d = (j_got[cells] - j_ref[cells]).norm(dim=-1).mean(dim=-1) * 1e3  # (cells,) mean joint distance, mm
        dists.append(d)
        score_diff = max(score_diff, float((s_got[cells] - s_ref[cells]).abs().max()))
    mm = torch.cat(dists).double()
    union = det_a + det_b - both
    jaccard = both / union if union else 1.0
    median = float(mm.median()) if mm.numel() else math.nan
    ok = math.isfinite(median) and median <= max_joint_mm and jaccard >= MIN_DETECTION_JACCARD
    return {
        "frames": len(records),
        "cells_compared": int(mm.numel()),
        "cells_detected_fp32": det_a,
        "cells_detected_int8": det_b,
        "top_cells_fallback": fallback,
        "detection_jaccard": jaccard,
        "joint_mm_median": median,
        "joint_mm_p90": float(torch.quantile(mm, 0.9)) if mm.numel() else math.nan,
        "score_abs_max": score_diff,
        "max_joint_mm": float(max_joint_mm),
        "min_detection_jaccard": MIN_DETECTION_JACCARD,
        "pass": bool(ok),
    }


def quantize_int8(ort: Any, fp32_path: Path, out_path: Path, cfg: ModelConfig, shape: Sequence[int],
                  frames: Sequence[np.ndarray], check_frames: Sequence[np.ndarray], max_joint_mm: float,
                  session: Any) -> dict[str, Any]:
    """Write the int8 QDQ graph of ``fp32_path`` to ``out_path`` and check it (:func:`int8_agreement`).

    ``session(path) -> InferenceSession`` builds sessions as the backend does. Returns the check's report;
    raises :class:`BackendError` (and leaves no ``out_path``) when the check fails.
    """
    try:
        from onnxruntime import quantization as q
    except ImportError as exc:  # onnxruntime builds without the quantisation tools
        raise BackendError("backend 'onnx' int8 needs onnxruntime.quantization (pip install onnxruntime)") from exc

    class _Reader(q.CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it = iter(frames)

        def get_next(self) -> dict[str, np.ndarray] | None:
            frame = next(self._it, None)
            return None if frame is None else {"images": network_input(frame, shape, cfg)[0]}

    pre = out_path.with_name("preprocessed.onnx")
    root = logging.getLogger()
    level = root.level
    # onnxruntime's quantiser logs one INFO line per shared bias on the root logger (~50 here); quieten the
    # root logger for the call only.
    root.setLevel(max(level, logging.WARNING))
    try:
        # Shape inference + basic graph optimisation first, as onnxruntime recommends before quantising (the
        # symbolic shape pass is skipped: every shape in our fixed-shape graph is static).
        q.quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        q.quantize_static(
            str(pre), str(out_path), _Reader(), quant_format=q.QuantFormat.QDQ, op_types_to_quantize=["Conv"],
            per_channel=True, activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8,
            calibrate_method=q.CalibrationMethod.MinMax,
        )
    finally:
        root.setLevel(level)
        pre.unlink(missing_ok=True)
    ref_sess, int8_sess = session(fp32_path), session(out_path)
    inputs = [network_input(f, shape, cfg) for f in check_frames]

    def run(sess: Any, x: np.ndarray) -> DenseOutputs:
        return DenseOutputs(*(torch.from_numpy(np.ascontiguousarray(o)) for o in sess.run(None, {"images": x})))

    report = int8_agreement([run(ref_sess, x) for x, _ in inputs], [run(int8_sess, x) for x, _ in inputs], cfg,
                            shape, [r for _, r in inputs], max_joint_mm)
    log.info("int8 check against fp32 on %d frames: median joint difference %.1f mm (limit %.0f), detection "
             "Jaccard %.2f → %s", report["frames"], report["joint_mm_median"], max_joint_mm,
             report["detection_jaccard"], "accepted" if report["pass"] else "REFUSED")
    if not report["pass"]:
        out_path.unlink(missing_ok=True)
        raise BackendError(
            f"backend 'onnx' int8: the quantised graph disagrees with fp32 (median joint difference "
            f"{report['joint_mm_median']:.1f} mm, limit {max_joint_mm:g} mm; detection Jaccard "
            f"{report['detection_jaccard']:.2f}, limit {MIN_DETECTION_JACCARD}): refused. Use precision fp32, or "
            "calibrate on frames of this camera (option calibration=FOLDER, the node's int8_calibration)"
        )
    return report
