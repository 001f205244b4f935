"""Evaluation metrics as pure numpy functions (DAS_SPEC §9).

Inputs are camera-frame joints in **metres** (the project unit) and pixels; every error is reported in
**millimetres** and every PCK / AUC / precision / recall as a fraction in [0, 1].

* :func:`panoptic_mpjpe` — CMU Panoptic root-aligned MPJPE as the DAS evaluator computes it (§9.1).
* :func:`mupots_pck` — MuPoTS-3D PCK_rel / PCK_abs / AUC with two matching rules (§9.2):
  ``"toolkit"`` (the official MATLAB toolkit: greedy one-to-one by 2D joint proximity, the default for new
  numbers) and ``"das"`` (the DAS evaluator: 3D root-relative similarity after depth-ratio scaling and
  bone-length normalisation, 250 mm gate, not one-to-one — use it to compare with the paper).
* :func:`synthetic_metrics` — our synthetic split: Hungarian one-to-one matching by 2D proximity, then
  root-aligned and absolute MPJPE, PCK_abs, root-depth error, detection precision / recall.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from das_core.skeletons import MUPOTS17_PARENTS, MUPOTS_PCK_JOINTS

__all__ = [
    "MUPOTS_ROOT",
    "MUPOTS_TRAVERSAL",
    "FrameResult",
    "match_das_3d",
    "match_hungarian_2d",
    "match_toolkit_2d",
    "mupots_pck",
    "normalize_bone_length",
    "panoptic_mpjpe",
    "synthetic_metrics",
]

MUPOTS_ROOT = 14
# Order in which bones are rescaled: every joint's parent comes before it (the toolkit's
# "safe traversal order", 0-based; the root itself comes first and is left in place).
MUPOTS_TRAVERSAL: tuple[int, ...] = (14, 15, 1, 0, 16, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
# Joints the toolkit's 2D matching compares (thorax .. left ankle; head-top, pelvis, spine, head excluded).
_TOOLKIT_MATCH_JOINTS = slice(1, 14)
_UNDETECTED_ERROR_M = 100.0  # 1e5 mm: an undetected ground truth counts as wrong at every threshold


@dataclass
class FrameResult:
    """Ground truth and predictions of one image (N ground-truth people, M predictions, K joints).

    Attributes:
        gt_3d: (N, K, 3) camera-frame joints, metres.
        gt_visible: (N, K) bool; joints that count in the metrics.
        pred_3d: (M, K, 3) predicted camera-frame joints, metres.
        gt_2d: (N, K, 2) ground-truth pixels of the original image (needed by 2D matching).
        pred_2d: (M, K, 2) predicted pixels of the original image.
        pred_scores: (M,) detection scores.
        sequence: group name for per-sequence averages (MuPoTS TS1..TS20).
    """

    gt_3d: np.ndarray
    gt_visible: np.ndarray
    pred_3d: np.ndarray
    gt_2d: np.ndarray | None = None
    pred_2d: np.ndarray | None = None
    pred_scores: np.ndarray | None = None
    sequence: str = ""

    def __post_init__(self) -> None:
        self.gt_3d = np.asarray(self.gt_3d, np.float64).reshape(-1, *np.shape(self.gt_3d)[-2:])
        self.pred_3d = np.asarray(self.pred_3d, np.float64).reshape(-1, *self.gt_3d.shape[1:])
        self.gt_visible = np.asarray(self.gt_visible, bool).reshape(self.gt_3d.shape[:2])
        k = self.gt_3d.shape[1]
        if self.gt_2d is not None:
            self.gt_2d = np.asarray(self.gt_2d, np.float64).reshape(-1, k, 2)
        if self.pred_2d is not None:
            self.pred_2d = np.asarray(self.pred_2d, np.float64).reshape(-1, k, 2)
        if self.pred_scores is None:
            self.pred_scores = np.ones(len(self.pred_3d))
        self.pred_scores = np.asarray(self.pred_scores, np.float64).reshape(-1)
        if len(self.pred_scores) != len(self.pred_3d):
            raise ValueError(f"pred_scores has {len(self.pred_scores)} rows, pred_3d has {len(self.pred_3d)}")


def _need_2d(frame: FrameResult, who: str) -> tuple[np.ndarray, np.ndarray]:
    if frame.gt_2d is None or frame.pred_2d is None:
        raise ValueError(f"{who}: 2D matching needs gt_2d and pred_2d on every frame")
    if len(frame.pred_2d) != len(frame.pred_3d) or len(frame.gt_2d) != len(frame.gt_3d):
        raise ValueError(f"{who}: 2D and 3D arrays disagree in the number of people")
    return frame.gt_2d, frame.pred_2d


# ----------------------------------------------------------------------------------------------
# CMU Panoptic (DAS_SPEC §9.1)
# ----------------------------------------------------------------------------------------------


def panoptic_mpjpe(frames: Sequence[FrameResult], root: int, fallback_pose: np.ndarray | None = None) -> dict[str, float]:
    """Root-aligned MPJPE (mm) as the DAS Panoptic evaluator computes it.

    Per ground truth whose root joint is visible, the prediction with the smallest
    ``mean_k(vis_k · ‖pred_k − gt_k‖)`` (root-aligned; invisible joints contribute 0 but still count in
    the mean) is taken — no threshold, not one-to-one. Per image: mean error over all visible joints of
    all its evaluated people; dataset: mean of image values weighted by their number of people.

    An image without predictions uses ``fallback_pose`` ((K, 3) root-relative, metres); by default the
    mean root-relative pose of all predictions in the data set (DAS_SPEC §9.1), zeros if there are none.
    """
    if fallback_pose is None:
        rel = [f.pred_3d - f.pred_3d[:, root : root + 1] for f in frames if len(f.pred_3d)]
        if rel:
            fallback_pose = np.concatenate(rel).mean(axis=0)
        else:
            k = frames[0].gt_3d.shape[1] if frames else 1
            fallback_pose = np.zeros((k, 3))
    fallback_pose = np.asarray(fallback_pose, np.float64)
    weighted, people, images = 0.0, 0, 0
    for f in frames:
        keep = f.gt_visible[:, root]  # persons with an invisible root are not evaluated (§11.18)
        gt = f.gt_3d[keep] - f.gt_3d[keep][:, root : root + 1]
        vis = f.gt_visible[keep]
        if len(gt) == 0 or not vis.any():
            continue
        pred = f.pred_3d - f.pred_3d[:, root : root + 1] if len(f.pred_3d) else fallback_pose[None]
        dist = np.linalg.norm(pred[None] - gt[:, None], axis=-1)  # (N, M, K)
        best = np.argmin((dist * vis[:, None]).mean(-1), axis=1)
        err = dist[np.arange(len(gt)), best]  # (N, K)
        weighted += float(err[vis].mean()) * len(gt)
        people += len(gt)
        images += 1
    mpjpe = weighted / people * 1000.0 if people else float("nan")
    return {"mpjpe_mm": mpjpe, "num_images": float(images), "num_persons": float(people)}


# ----------------------------------------------------------------------------------------------
# MuPoTS-3D (DAS_SPEC §9.2)
# ----------------------------------------------------------------------------------------------


def normalize_bone_length(pred_rel: np.ndarray, gt_rel: np.ndarray, parents: Sequence[int] = MUPOTS17_PARENTS,
                          traversal: Sequence[int] = MUPOTS_TRAVERSAL) -> np.ndarray:
    """Rescale every predicted bone to the ground-truth bone length, keeping its direction.

    ``pred_rel``, ``gt_rel``: (K, 3) root-relative poses. Bones are visited in ``traversal`` order (root
    first, skipped) and each joint is re-attached to its already-rescaled parent. A zero-length predicted
    bone stays zero (its direction is undefined).
    """
    out = np.array(pred_rel, np.float64, copy=True)
    for j in traversal[1:]:
        p = parents[j]
        vec = pred_rel[j] - pred_rel[p]
        length = np.linalg.norm(vec)
        scale = np.linalg.norm(gt_rel[j] - gt_rel[p]) / length if length > 0 else 0.0
        out[j] = out[p] + vec * scale
    return out


def match_toolkit_2d(gt_2d: np.ndarray, pred_2d: np.ndarray, threshold_px: float = 40.0) -> np.ndarray:
    """Official MuPoTS toolkit matching: (N,) prediction index per ground truth, −1 if unmatched.

    Ground truths in order each take the not-yet-taken prediction with the most joints (thorax .. left
    ankle) whose 2D error is below ``threshold_px`` in both x and y; a prediction with no such joint never
    matches. Predicted joints at exactly (0, 0) count as missing.
    """
    gt = np.asarray(gt_2d, np.float64)[:, _TOOLKIT_MATCH_JOINTS]
    pred = np.asarray(pred_2d, np.float64)[:, _TOOLKIT_MATCH_JOINTS]
    result = np.full(len(gt), -1, np.int64)
    taken: set[int] = set()
    for i, g in enumerate(gt):
        best, best_count = -1, 0
        for m, p in enumerate(pred):
            if m in taken:
                continue
            close = np.abs(g - p).max(axis=-1) < threshold_px
            count = int(np.count_nonzero(close & np.any(p != 0, axis=-1)))
            if count > best_count:
                best, best_count = m, count
        if best >= 0:
            result[i] = best
            taken.add(best)
    return result


def _das_normalized(pred: np.ndarray, gt_rel: np.ndarray, gt_root_z: float, root: int) -> np.ndarray:
    """DAS evaluator: root-relative prediction, x/y × Z_root^gt / Z_root^pred, bones to GT lengths."""
    rel = pred - pred[root]
    rel = rel * np.array([gt_root_z / pred[root, 2], gt_root_z / pred[root, 2], 1.0])
    return normalize_bone_length(rel, gt_rel)


def match_das_3d(gt_3d: np.ndarray, pred_3d: np.ndarray, root: int = MUPOTS_ROOT, gate_m: float = 0.25) -> np.ndarray:
    """DAS evaluator matching: (N,) prediction index per ground truth, −1 if none within ``gate_m``.

    Every prediction is compared with the ground truth after depth-ratio scaling and bone-length
    normalisation (mean distance over all joints, root-relative); the best wins if ≤ ``gate_m``.
    Not one-to-one. Predictions with root depth ≤ 0 are ignored.
    """
    result = np.full(len(gt_3d), -1, np.int64)
    for i, g in enumerate(gt_3d):
        gt_rel = g - g[root]
        best, best_d = -1, np.inf
        for m, p in enumerate(pred_3d):
            if p[root, 2] <= 0:
                continue
            d = float(np.linalg.norm(_das_normalized(p, gt_rel, g[root, 2], root) - gt_rel, axis=-1).mean())
            if d < best_d:
                best, best_d = m, d
        if best >= 0 and best_d <= gate_m:
            result[i] = best
    return result


def mupots_pck(frames: Sequence[FrameResult], matching: str = "toolkit", mode: str = "all",
               threshold_m: float = 0.15, root: int = MUPOTS_ROOT,
               pck_joints: Sequence[int] = MUPOTS_PCK_JOINTS) -> dict[str, float]:
    """MuPoTS-3D PCK_rel, PCK_abs and AUC (fractions), averaged over sequences (``FrameResult.sequence``).

    ``matching``: ``"toolkit"`` (2D proximity, one-to-one) or ``"das"`` (3D, depth-ratio scaled, 250 mm
    gate). ``mode``: ``"all"`` counts an unmatched ground truth as wrong at every joint, ``"matched"``
    skips it. For a matched pair the relative error compares the bone-normalised root-relative prediction
    (the DAS rule also scales x, y by the root-depth ratio first) with the root-relative ground truth; the
    absolute error puts that pose at the *predicted* root and compares with the absolute ground truth.
    AUC: mean PCK over thresholds 0, 5, …, 150 mm. Frames must hold the 17 MuPoTS joints.
    """
    if matching not in ("toolkit", "das"):
        raise ValueError(f"matching must be 'toolkit' or 'das', got {matching!r}")
    if mode not in ("all", "matched"):
        raise ValueError(f"mode must be 'all' or 'matched', got {mode!r}")
    joints = list(pck_joints)
    per_seq_rel: dict[str, list[np.ndarray]] = {}
    per_seq_abs: dict[str, list[np.ndarray]] = {}
    num_gt = num_matched = 0
    for f in frames:
        if f.gt_3d.shape[1] != len(MUPOTS17_PARENTS):
            raise ValueError(f"mupots_pck needs {len(MUPOTS17_PARENTS)} joints, got {f.gt_3d.shape[1]}")
        if matching == "toolkit":
            gt_2d, pred_2d = _need_2d(f, "mupots_pck")
            match = match_toolkit_2d(gt_2d, pred_2d)
        else:
            match = match_das_3d(f.gt_3d, f.pred_3d, root)
        for i, g in enumerate(f.gt_3d):
            num_gt += 1
            gt_rel = g - g[root]
            m = int(match[i])
            if m < 0:
                if mode == "matched":
                    continue
                err_rel = err_abs = np.full(len(g), _UNDETECTED_ERROR_M)
            else:
                num_matched += 1
                p = f.pred_3d[m]
                if matching == "das":
                    rel = _das_normalized(p, gt_rel, g[root, 2], root)
                else:
                    rel = normalize_bone_length(p - p[root], gt_rel)
                err_rel = np.linalg.norm(rel - gt_rel, axis=-1)
                err_abs = np.linalg.norm(rel + p[root] - g, axis=-1)
            per_seq_rel.setdefault(f.sequence, []).append(err_rel[joints])
            per_seq_abs.setdefault(f.sequence, []).append(err_abs[joints])
    thresholds = np.arange(0.0, 0.1501, 0.005)

    def seq_mean(errs: dict[str, list[np.ndarray]], thr: float) -> float:
        vals = [float((np.stack(e) < thr).mean()) for e in errs.values()]
        return float(np.mean(vals)) if vals else float("nan")

    return {
        "pck_rel": seq_mean(per_seq_rel, threshold_m),
        "pck_abs": seq_mean(per_seq_abs, threshold_m),
        "auc_rel": float(np.mean([seq_mean(per_seq_rel, t) for t in thresholds])),
        "auc_abs": float(np.mean([seq_mean(per_seq_abs, t) for t in thresholds])),
        "num_gt": float(num_gt),
        "num_matched": float(num_matched),
    }


# ----------------------------------------------------------------------------------------------
# Synthetic split
# ----------------------------------------------------------------------------------------------


def match_hungarian_2d(gt_2d: np.ndarray, gt_visible: np.ndarray, pred_2d: np.ndarray,
                       max_rel_dist: float = 0.2) -> np.ndarray:
    """One-to-one matching by 2D proximity: (N,) prediction index per ground truth, −1 if unmatched.

    Cost = mean 2D distance over the ground truth's visible joints divided by the diagonal of its
    visible-joint box; the assignment minimises the total cost (Hungarian) and a pair only counts if its
    cost is below ``max_rel_dist``. 2D matching keeps detection separate from depth accuracy.
    """
    gt_2d = np.asarray(gt_2d, np.float64)
    pred_2d = np.asarray(pred_2d, np.float64)
    vis = np.asarray(gt_visible, bool)
    result = np.full(len(gt_2d), -1, np.int64)
    if len(gt_2d) == 0 or len(pred_2d) == 0:
        return result
    cost = np.full((len(gt_2d), len(pred_2d)), 1e6)
    for i, (g, v) in enumerate(zip(gt_2d, vis, strict=True)):
        if not v.any():
            continue
        pts = g[v]
        diag = max(float(np.linalg.norm(pts.max(0) - pts.min(0))), 1.0)
        cost[i] = np.linalg.norm(pred_2d[:, v] - pts[None], axis=-1).mean(-1) / diag
    rows, cols = linear_sum_assignment(cost)
    for r, c in zip(rows, cols, strict=True):
        if cost[r, c] < max_rel_dist:
            result[r] = c
    return result


@dataclass
class _Acc:
    rel: list[np.ndarray] = field(default_factory=list)
    abs: list[np.ndarray] = field(default_factory=list)
    root_dz: list[float] = field(default_factory=list)
    root_dz_rel: list[float] = field(default_factory=list)


def synthetic_metrics(frames: Sequence[FrameResult], root: int, pck_threshold_m: float = 0.15,
                      max_rel_dist: float = 0.2) -> dict[str, float]:
    """Metrics on our synthetic split after one-to-one 2D matching (:func:`match_hungarian_2d`).

    Over matched pairs and the ground truth's visible joints: ``mpjpe_rel_mm`` (root-aligned),
    ``mpjpe_abs_mm``, ``pck_abs`` (absolute error < ``pck_threshold_m``), ``root_depth_err_mm``
    (mean |ΔZ_root|), ``root_depth_err_pct`` / ``root_depth_err_pct_median`` (|ΔZ_root| in % of the true
    distance: mean / median, the form of issue 17's target); detection ``precision`` = matched / predictions,
    ``recall`` = matched / ground truths.
    """
    acc = _Acc()
    num_gt = num_pred = num_matched = 0
    for f in frames:
        gt_2d, pred_2d = _need_2d(f, "synthetic_metrics")
        match = match_hungarian_2d(gt_2d, f.gt_visible, pred_2d, max_rel_dist)
        num_gt += len(f.gt_3d)
        num_pred += len(f.pred_3d)
        for i, m in enumerate(match):
            if m < 0:
                continue
            num_matched += 1
            g, p, v = f.gt_3d[i], f.pred_3d[m], f.gt_visible[i]
            acc.rel.append(np.linalg.norm((p - p[root]) - (g - g[root]), axis=-1)[v])
            acc.abs.append(np.linalg.norm(p - g, axis=-1)[v])
            dz = abs(float(p[root, 2] - g[root, 2]))
            acc.root_dz.append(dz)
            acc.root_dz_rel.append(dz / max(abs(float(g[root, 2])), 1e-6))
    rel = np.concatenate(acc.rel) if acc.rel else np.zeros(0)
    ab = np.concatenate(acc.abs) if acc.abs else np.zeros(0)
    nan = float("nan")
    return {
        "mpjpe_rel_mm": float(rel.mean() * 1000) if rel.size else nan,
        "mpjpe_abs_mm": float(ab.mean() * 1000) if ab.size else nan,
        "pck_abs": float((ab < pck_threshold_m).mean()) if ab.size else nan,
        "root_depth_err_mm": float(np.mean(acc.root_dz) * 1000) if acc.root_dz else nan,
        "root_depth_err_pct": float(np.mean(acc.root_dz_rel) * 100) if acc.root_dz_rel else nan,
        "root_depth_err_pct_median": float(np.median(acc.root_dz_rel) * 100) if acc.root_dz_rel else nan,
        "precision": num_matched / num_pred if num_pred else nan,
        "recall": num_matched / num_gt if num_gt else nan,
        "num_gt": float(num_gt),
        "num_pred": float(num_pred),
        "num_matched": float(num_matched),
    }
