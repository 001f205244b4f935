"""Real-image development set: readers, joint maps and metrics (evaluation only, never training data).

The set is ``../shared/realdata/mmpose_tests/`` (its README): real photos and video frames with their source
datasets' own annotations, 2D keypoints for most and metric 3D in the camera frame with calibrated intrinsics
for Human3.6M and MPI-INF-3DHP. Every annotation is mapped onto the model's Panoptic-15 skeleton, keeping only
joints that mean the same point (:data:`JOINT_ALIASES`); everything else stays unlabelled.

Rules, stated once (the scorer's JSON repeats them):

* **Matching** (person recall / precision, and which prediction a 3D person is compared with): COCO's greedy
  rule — predictions in falling score order, each takes the unmatched ground-truth person with the highest OKS
  ≥ 0.5; a prediction that can only match an *ignored* person is neither a true nor a false positive (an
  ignored person takes one such prediction, a crowd region any number). The AP code gives the same numbers
  as pycocotools' ``COCOeval`` on the same people and sigmas (a test checks it where pycocotools is installed).
* **Ignored** ground truth: crowd regions and people with fewer than :data:`MIN_LABELLED_JOINTS` labelled
  shared joints (COCO ignores people without keypoints; with 1–3 joints OKS says little). They count neither
  in recall nor, when a prediction matches them, against precision. In images where the dataset labels only
  some of the people (MPII here: one person per image, a second person unlabelled in two of the five)
  unmatched predictions are not false positives either, and PoseTrack's ignore regions hide predictions whose
  joints' centre lies in one.
* **OKS** on the shared joints with COCO's per-joint sigmas; the neck (not a COCO joint) uses CrowdPose's
  0.079. Area: the annotation's ``area`` when the file has one, else 0.53 × its box (COCO people fill about
  half their box; mmpose uses the same factor), the box being the file's or, when it has none, the extent of
  all labelled joints scaled by 1.25 in width and height.
* **AP**: COCO's 101-point interpolated average precision, up to 20 predictions per image, at OKS 0.5 and
  averaged over 0.50:0.05:0.95, pooled over the images of a dataset (or of the whole 2D set).
* **Lenient matching** (``root_in_box``, reported beside the OKS figures): the same greedy rule, but a
  prediction matches a person when its 2D root lies inside the person's box — "something was found on this
  person", which is what one sees in an overlay before the skeletons fit.
* **3D**: the person matched under OKS (or, in the ``*_root_in_box`` blocks, the lenient rule); the
  ground-truth root is the mean of the two hips (our root is ``mid_hip``); root depth error is
  ``|Z_pred − Z_gt| / Z_gt``; MPJPE absolute and root-aligned are over the shared joints except the root (the
  12 limb joints and the neck = thorax).
* **Intrinsics**: the 3D frames use their calibration; the 2D-only images a 60° horizontal field of view
  (:data:`FALLBACK_HFOV_DEG`). That guess scales their depths only: 2D joints come from the network's pixel
  offsets, not from projecting the 3D ones.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from das_core.camera import Intrinsics
from das_core.persons import Persons
from das_core.skeletons import COCO17_NAMES, Skeleton

__all__ = [
    "AP_THRESHOLDS",
    "COCO_SIGMAS",
    "FALLBACK_HFOV_DEG",
    "JOINT_ALIASES",
    "MIN_LABELLED_JOINTS",
    "GTPerson",
    "RealDataError",
    "RealImage",
    "format_table",
    "headline",
    "greedy_match",
    "keypoint_ap",
    "load_realdata",
    "mpjpe_mm",
    "oks_matrix",
    "overlay_sheet",
    "root_depth_error_pct",
    "root_in_box_matrix",
    "score_predictions",
]

FALLBACK_HFOV_DEG = 60.0  # 2D-only images have no calibration; only 2D metrics are computed on them
MIN_LABELLED_JOINTS = 4
CONFIDENCE_THRESHOLD = 0.3
MATCH_OKS = 0.5
MAX_DETS = 20
AP_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2).tolist())
_AREA_PER_BOX = 0.53
_BOX_PAD = 1.25

# COCO keypoint sigmas by joint name, + CrowdPose's value for the neck (COCO has none).
COCO_SIGMAS: dict[str, float] = {
    "nose": 0.026, "l_shoulder": 0.079, "r_shoulder": 0.079, "l_elbow": 0.072, "r_elbow": 0.072,
    "l_wrist": 0.062, "r_wrist": 0.062, "l_hip": 0.107, "r_hip": 0.107, "l_knee": 0.087, "r_knee": 0.087,
    "l_ankle": 0.089, "r_ankle": 0.089, "neck": 0.079,
}

# Normalised source-joint name → our joint name, only for points that mean the same place on the body. The
# neck of AI Challenger / CrowdPose / ExLPose / JHMDB and the thorax of MPII / MHP / Human3.6M / MPI-INF-3DHP
# sit at the base of the neck between the shoulders, as Panoptic's neck does; MPII's "upper neck" and
# PoseTrack's "head bottom" are under the chin and are left out, as are heads, eyes, ears and pelvis points
# (the hips constrain the mid-hip already, and its definition differs most between datasets).
JOINT_ALIASES: dict[str, str] = {
    **{f"{s}_{j}": f"{s}_{j}" for s in "lr" for j in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")},
    **{f"{s}_foot": f"{s}_ankle" for s in "lr"},
    "nose": "nose", "neck": "neck", "thorax": "neck",
}

# Joint orders of the files that carry no names (names as in each dataset's documentation). Human3.6M is
# read from test_h36m_body3d.npz in its standard order (README): h36m_coco.json names joints 1–6 the other way
# round ("left_hip" first), but in all four frames joint 1 is nearer joint 14 (r_shoulder) than joint 11.
MPII16 = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "upper_neck",
          "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist")
H36M17 = ("pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax", "neck_nose",
          "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist")
MPI3DHP17 = ("head_top", "thorax", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
             "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "pelvis", "spine", "head")

# COCO-style files: dataset → (annotation file, image folder, whether every person in an image is labelled)
_COCO_STYLE: dict[str, tuple[str, str, bool]] = {
    "coco": ("coco/test_coco.json", "coco", True),
    "crowdpose": ("crowdpose/test_crowdpose.json", "crowdpose", True),
    "aic": ("aic/test_aic.json", "aic", True),
    "ochuman": ("ochuman/test_ochuman.json", "ochuman", True),
    "posetrack18": ("posetrack18/annotations/test_posetrack18_val.json", "posetrack18", True),
    "jhmdb": ("jhmdb/test_jhmdb_sub1.json", "jhmdb", True),
    "mhp": ("mhp/test_mhp.json", "mhp", True),
    "exlpose": ("exlpose/test_exlpose.json", "exlpose", True),
    "humanart": ("humanart/test_humanart.json", "humanart", True),
}
DATASETS_2D: tuple[str, ...] = (*_COCO_STYLE, "mpii")
DATASETS_3D: tuple[str, ...] = ("h36m", "mpi_inf_3dhp")


class RealDataError(ValueError):
    """The development set is missing, or a file in it does not have the expected layout."""


def normalise_name(name: str) -> str:
    """``"Left Shoulder"`` / ``"left_shoulder"`` / ``"Left-shoulder"`` → ``"l_shoulder"``."""
    n = name.strip().lower().replace(" ", "_").replace("-", "_")
    for side in ("left", "right"):
        if n.startswith(side + "_"):
            n = side[0] + n[len(side):]
    return n


def joint_map(source_names: Sequence[str], skeleton: Skeleton) -> list[tuple[int, int]]:
    """``(our index, source index)`` for every source joint that is one of our joints (:data:`JOINT_ALIASES`)."""
    out = []
    for si, name in enumerate(source_names):
        ours = JOINT_ALIASES.get(normalise_name(name))
        if ours is not None and ours in skeleton.joint_names:
            out.append((skeleton.joint_names.index(ours), si))
    return out


@dataclass
class GTPerson:
    """One annotated person on our skeleton (K joints); unlabelled joints are NaN with ``labelled`` False."""

    keypoints: np.ndarray  # (K, 2) pixels
    labelled: np.ndarray  # (K,) bool
    area: float
    box: np.ndarray  # (4,) x, y, w, h
    crowd: bool = False
    joints_3d: np.ndarray | None = None  # (K, 3) metres, camera frame
    root_3d: np.ndarray | None = None  # (3,) mean of the hips

    @property
    def ignored(self) -> bool:
        return self.crowd or int(self.labelled.sum()) < MIN_LABELLED_JOINTS


@dataclass
class RealImage:
    dataset: str
    path: Path
    width: int
    height: int
    persons: list[GTPerson]
    intrinsics: Intrinsics | None = None  # calibrated (3D sets) or None (the fallback HFOV is used)
    exhaustive: bool = True  # every person in the image is labelled
    ignore_regions: list[np.ndarray] = field(default_factory=list)  # polygons (P, 2), pixels
    name: str = ""  # "dataset/path inside its folder", unique in the set

    def __post_init__(self) -> None:
        if not self.name:
            self.name = f"{self.dataset}/{self.path.name}"

    def camera(self) -> Intrinsics:
        if self.intrinsics is not None:
            return self.intrinsics
        return Intrinsics.from_fov(self.width, self.height, FALLBACK_HFOV_DEG)


# ----------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------


def _box_from_joints(xy: np.ndarray) -> np.ndarray:
    lo, hi = xy.min(0), xy.max(0)
    c, half = (lo + hi) / 2, (hi - lo) * _BOX_PAD / 2
    return np.array([c[0] - half[0], c[1] - half[1], 2 * half[0], 2 * half[1]])


def _person(src_xy: np.ndarray, src_labelled: np.ndarray, jmap: list[tuple[int, int]], k: int,
            area: float | None = None, box: Sequence[float] | None = None, crowd: bool = False) -> GTPerson:
    kp = np.full((k, 2), np.nan)
    lab = np.zeros(k, bool)
    for ours, si in jmap:
        if src_labelled[si]:
            kp[ours], lab[ours] = src_xy[si], True
    if box is None or len(box) != 4:
        box_arr = _box_from_joints(src_xy[src_labelled]) if src_labelled.any() else np.zeros(4)
    else:
        box_arr = np.asarray(box, np.float64)
    if area is None or not area > 0:
        area = _AREA_PER_BOX * float(box_arr[2] * box_arr[3])
    return GTPerson(kp, lab, float(area), box_arr, crowd)


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise RealDataError(f"{path}: annotation file missing") from None
    except json.JSONDecodeError as exc:
        raise RealDataError(f"{path}: not valid JSON ({exc})") from None


def _image_size(path: Path) -> tuple[int, int]:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise RealDataError(f"{path}: image missing or not readable")
    return int(image.shape[1]), int(image.shape[0])


def _resolve_image(root: Path, folder: str, file_name: str) -> Path | None:
    """The image a COCO-style ``file_name`` names, or None when it was not copied (HumanArt's other entries)."""
    direct = root / folder / file_name
    if direct.is_file():
        return direct
    parts = Path(file_name).parts
    for i in range(1, len(parts)):  # "HumanArt/images/real_human/…" lives at humanart/real_human/…
        cand = root / folder / Path(*parts[i:])
        if cand.is_file():
            return cand
    return None


def read_coco_style(root: Path, dataset: str, skeleton: Skeleton) -> list[RealImage]:
    ann_file, folder, exhaustive = _COCO_STYLE[dataset]
    data = _read_json(root / ann_file)
    try:
        names = data["categories"][0]["keypoints"]
        images, anns = data["images"], data["annotations"]
    except (KeyError, IndexError, TypeError):
        raise RealDataError(f"{root / ann_file}: expected COCO keypoint layout (categories/images/annotations)") from None
    if dataset == "humanart":  # its 21-joint files keep the 17 COCO joints under "keypoints"
        names = list(COCO17_NAMES)
    jmap = joint_map(names, skeleton)
    if len(jmap) < 8:
        raise RealDataError(f"{root / ann_file}: only {len(jmap)} of its joints {names} map onto {skeleton.name}")
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for a in anns:
        by_image.setdefault(a["image_id"], []).append(a)
    out = []
    for im in images:
        path = _resolve_image(root, folder, im["file_name"])
        if path is None:
            continue
        persons = []
        for a in by_image.get(im["id"], []):
            kp = np.asarray(a.get("keypoints", []), np.float64).reshape(-1, 3)
            if len(kp) != len(names):
                raise RealDataError(f"{root / ann_file}: annotation {a.get('id')} has {len(kp)} keypoints, "
                                    f"categories name {len(names)}")
            labelled = (kp[:, 2] > 0) & ~((kp[:, 0] == 0) & (kp[:, 1] == 0))
            persons.append(_person(kp[:, :2], labelled, jmap, skeleton.num_joints, a.get("area"),
                                   a.get("bbox"), bool(a.get("iscrowd", False))))
        regions = [np.stack([np.asarray(xs, np.float64), np.asarray(ys, np.float64)], 1)
                   for xs, ys in zip(im.get("ignore_regions_x", []), im.get("ignore_regions_y", []), strict=True)
                   if len(xs) >= 3]
        w, h = int(im.get("width", 0)), int(im.get("height", 0))
        if w <= 0 or h <= 0:
            w, h = _image_size(path)
        out.append(RealImage(dataset, path, w, h, persons, exhaustive=exhaustive, ignore_regions=regions,
                             name=f"{dataset}/{path.relative_to(root / folder).as_posix()}"))
    return out


def read_mpii(root: Path, skeleton: Skeleton) -> list[RealImage]:
    entries = _read_json(root / "mpii/test_mpii.json")
    jmap = joint_map(MPII16, skeleton)
    by_image: dict[str, list[GTPerson]] = {}
    for e in entries:
        xy = np.asarray(e["joints"], np.float64).reshape(16, 2)
        labelled = (np.asarray(e["joints_vis"]) > 0) & (xy > 0).all(1)  # MPII marks missing joints with −1
        by_image.setdefault(e["image"], []).append(_person(xy, labelled, jmap, skeleton.num_joints))
    out = []
    for name, persons in by_image.items():
        path = root / "mpii" / name
        w, h = _image_size(path)
        # MPII labels a subset of the people (here one per image, some images show two)
        out.append(RealImage("mpii", path, w, h, persons, exhaustive=False))
    return out


def _camera(cameras: dict[str, Any], group: str, key: str, size: tuple[int, int], path: Path) -> Intrinsics:
    try:
        cam = cameras[group][key]
        (fx,), (fy,) = cam["f"]
        (cx,), (cy,) = cam["c"]
    except (KeyError, ValueError, TypeError):
        raise RealDataError(f"cameras.json: no intrinsics {group}/{key} for {path}") from None
    # Human3.6M lists some 1000×1002 cameras as 1000×1000 (pixels count from the top-left corner, so a row
    # more or less at the bottom leaves the calibration valid) and the MPI-INF-3DHP training cameras have
    # h = 204, a truncated 2048 (their principal point sits at the centre of the 2048×2048 frames). Anything
    # else that does not fit the image would need rescaling and is refused.
    if "w" in cam:
        cw, chh = float(cam["w"]), float(cam["h"])
        fits = max(abs(cw - size[0]), abs(chh - size[1])) <= 0.01 * max(size)
        centred = abs(cx - size[0] / 2) < 0.1 * size[0] and abs(cy - size[1] / 2) < 0.1 * size[1]
        if not fits and not (abs(cw - size[0]) <= 1 and centred):
            raise RealDataError(f"{path}: image is {size[0]}×{size[1]} but cameras.json {group}/{key} is for "
                                f"{cam['w']}×{cam['h']}")
    return Intrinsics(float(fx), float(fy), float(cx), float(cy))


def _read_body3d(npz: Path, names: Sequence[str], skeleton: Skeleton) -> list[tuple[str, GTPerson]]:
    try:
        data = np.load(npz)
        s, part, imgnames = data["S"], data["part"], data["imgname"]
    except (OSError, KeyError) as exc:
        raise RealDataError(f"{npz}: expected an npz with S, part and imgname ({exc})") from None
    if s.shape[1:] != (len(names), 4) or part.shape[1:] != (len(names), 3):
        raise RealDataError(f"{npz}: S {s.shape} / part {part.shape}, expected (N, {len(names)}, 4 / 3)")
    jmap = joint_map(names, skeleton)
    hips = [names.index("l_hip"), names.index("r_hip")]
    out = []
    for i, name in enumerate(imgnames):
        labelled = (s[i, :, 3] > 0) & (part[i, :, 2] > 0)
        p = _person(part[i, :, :2], labelled, jmap, skeleton.num_joints)
        j3 = np.full((skeleton.num_joints, 3), np.nan)
        for ours, si in jmap:
            if labelled[si]:
                j3[ours] = s[i, si, :3]
        p.joints_3d = j3
        p.root_3d = s[i, hips, :3].mean(0) if labelled[hips].all() else None
        out.append((str(name), p))
    return out


def read_h36m(root: Path, cameras: dict[str, Any], skeleton: Skeleton) -> list[RealImage]:
    out = []
    for rel, person in _read_body3d(root / "h36m/test_h36m_body3d.npz", H36M17, skeleton):
        path = root / "h36m" / rel
        subject, cam_id = rel.split("/")[0], Path(rel).stem.split(".")[1].split("_")[0]
        size = _image_size(path)
        out.append(RealImage("h36m", path, *size, [person], _camera(cameras, "h36m", f"{subject}/{cam_id}", size, path)))
    return out


def read_mpi_inf_3dhp(root: Path, cameras: dict[str, Any], skeleton: Skeleton) -> list[RealImage]:
    out = []
    for split in ("test", "train"):
        for rel, person in _read_body3d(root / f"mpi_inf_3dhp/test_3dhp_{split}.npz", MPI3DHP17, skeleton):
            path = root / "mpi_inf_3dhp" / rel
            key = Path(rel).stem.rsplit("_", 1)[0]  # TS1_002001 → TS1, S4_Seq2_Cam0_001033 → S4_Seq2_Cam0
            size = _image_size(path)
            cam = _camera(cameras, f"mpi_inf_3dhp_{split}", key, size, path)
            out.append(RealImage("mpi_inf_3dhp", path, *size, [person], cam))
    return out


def find_root(data: str | Path) -> Path:
    """The folder holding the datasets: ``data`` itself or its ``mmpose_tests/``."""
    p = Path(data)
    for cand in (p / "mmpose_tests", p):
        if (cand / "cameras.json").is_file():
            return cand
    raise RealDataError(f"{p}: no real-image development set here (expected {p}/mmpose_tests/cameras.json; "
                        "see ../shared/realdata/README.md)")


def load_realdata(data: str | Path, skeleton: Skeleton, datasets: Sequence[str] | None = None) -> list[RealImage]:
    """Every annotated image of the development set, on ``skeleton``, in a fixed order.

    Raises:
        RealDataError: the folder, an annotation file or an image is missing or not in the expected layout.
    """
    root = find_root(data)
    wanted = tuple(datasets) if datasets else (*DATASETS_2D, *DATASETS_3D)
    unknown = set(wanted) - set(DATASETS_2D) - set(DATASETS_3D)
    if unknown:
        raise RealDataError(f"unknown dataset(s) {sorted(unknown)}; known: {[*DATASETS_2D, *DATASETS_3D]}")
    cameras = _read_json(root / "cameras.json")
    images: list[RealImage] = []
    for name in wanted:
        if name in _COCO_STYLE:
            images += read_coco_style(root, name, skeleton)
        elif name == "mpii":
            images += read_mpii(root, skeleton)
        elif name == "h36m":
            images += read_h36m(root, cameras, skeleton)
        else:
            images += read_mpi_inf_3dhp(root, cameras, skeleton)
    return images


# ----------------------------------------------------------------------------------------------
# Metrics (pure numpy)
# ----------------------------------------------------------------------------------------------


def sigmas_for(skeleton: Skeleton) -> np.ndarray:
    """(K,) OKS sigma per joint of ``skeleton``; NaN for joints no annotation shares (never labelled)."""
    return np.array([COCO_SIGMAS.get(n, np.nan) for n in skeleton.joint_names])


def oks_matrix(pred_xy: np.ndarray, gt: Sequence[GTPerson], sigmas: np.ndarray) -> np.ndarray:
    """(M, N) object keypoint similarity of M predicted (M, K, 2) skeletons with N ground-truth people.

    COCO's formula over each person's labelled joints; a person with none labelled is compared with its box
    enlarged by its own size on every side, as COCO does, so that predictions on it can be ignored.
    """
    pred_xy = np.asarray(pred_xy, np.float64).reshape(len(pred_xy), len(sigmas), 2)
    out = np.zeros((len(pred_xy), len(gt)))
    for j, g in enumerate(gt):
        if g.labelled.any():
            terms = _labelled_terms(pred_xy, g, sigmas)
        else:
            x, y, w, h = g.box
            lo, hi = np.array([x - w, y - h]), np.array([x + 2 * w, y + 2 * h])
            d = np.maximum(0, lo - pred_xy) + np.maximum(0, pred_xy - hi)
            var = (2 * np.nan_to_num(sigmas, nan=1.0)) ** 2
            terms = np.exp(-(d**2).sum(-1) / var / max(g.area, np.finfo(float).eps) / 2)
        out[:, j] = np.nan_to_num(terms, nan=0.0).mean(1)
    return out


def _labelled_terms(pred_xy: np.ndarray, g: GTPerson, sigmas: np.ndarray) -> np.ndarray:
    """(M, L) COCO's per-joint similarity exp(-d² / (2·area·(2σ)²)) of M (M, K, 2) predictions on the L joints
    ``g`` has labelled; NaN where a prediction's joint is NaN."""
    lab = g.labelled
    d2 = ((pred_xy[:, lab] - g.keypoints[lab]) ** 2).sum(-1)
    var = (2 * np.nan_to_num(sigmas[lab], nan=1.0)) ** 2
    return np.exp(-d2 / var / max(g.area, np.finfo(float).eps) / 2)


def keypoint_similarity(pred_xy: np.ndarray, g: GTPerson, sigmas: np.ndarray) -> np.ndarray:
    """(K,) the per-joint terms whose mean over ``g``'s labelled joints is the OKS of one (K, 2) prediction;
    NaN where ``g`` has the joint unlabelled."""
    out = np.full(len(sigmas), np.nan)
    if g.labelled.any():
        out[g.labelled] = _labelled_terms(np.asarray(pred_xy, np.float64)[None], g, sigmas)[0]
    return out


def greedy_match(oks: np.ndarray, scores: np.ndarray, ignored: np.ndarray, threshold: float,
                 crowd: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """COCO's greedy matching at one OKS threshold (``COCOeval.evaluateImg``).

    Predictions in falling score order take the free person with the highest OKS ≥ ``threshold``, a
    non-ignored one if any; an ignored person takes one prediction, a crowd (``crowd``) any number.

    Returns:
        pred_gt: (M,) index of the matched person or −1, in the original prediction order.
        pred_ignored: (M,) True where the prediction matched an ignored person (neither TP nor FP).
    """
    m, n = oks.shape
    crowd = np.zeros(n, bool) if crowd is None else np.asarray(crowd, bool)
    pred_gt = np.full(m, -1)
    pred_ignored = np.zeros(m, bool)
    taken = np.zeros(n, bool)
    for i in np.argsort(-np.asarray(scores), kind="stable"):
        best, best_oks = -1, threshold
        for j in range(n):  # a free, non-ignored person first
            if not ignored[j] and not taken[j] and oks[i, j] >= best_oks:
                best, best_oks = j, oks[i, j]
        if best < 0:
            for j in range(n):
                if ignored[j] and (crowd[j] or not taken[j]) and oks[i, j] >= best_oks:
                    best, best_oks = j, oks[i, j]
            pred_ignored[i] = best >= 0
        if best >= 0:
            taken[best] = True
        pred_gt[i] = best
    return pred_gt, pred_ignored


@dataclass
class _ImageEval:
    """Per-image inputs to AP: scores, OKS to each person, which people and predictions are ignored."""

    scores: np.ndarray
    oks: np.ndarray
    gt_ignored: np.ndarray
    pred_ignored: np.ndarray  # ignored whatever they match (ignore regions, partially labelled images)
    gt_crowd: np.ndarray | None = None


def keypoint_ap(evals: Sequence[_ImageEval], thresholds: Sequence[float] = AP_THRESHOLDS) -> dict[float, float]:
    """COCO keypoint AP (101-point interpolation) per OKS threshold, pooled over images; NaN without people."""
    n_gt = sum(int((~e.gt_ignored).sum()) for e in evals)
    out: dict[float, float] = {}
    for t in thresholds:
        scores, tps = [], []
        for e in evals:
            pred_gt, matched_ignored = greedy_match(e.oks, e.scores, e.gt_ignored, t, e.gt_crowd)
            keep = ~(matched_ignored | (e.pred_ignored & (pred_gt < 0)))
            scores.append(e.scores[keep])
            tps.append((pred_gt >= 0)[keep])
        if n_gt == 0:
            out[t] = math.nan
            continue
        s, tp = np.concatenate(scores), np.concatenate(tps)
        order = np.argsort(-s, kind="mergesort")
        tp = tp[order]
        ctp, cfp = np.cumsum(tp), np.cumsum(~tp)
        recall = ctp / n_gt
        precision = ctp / np.maximum(ctp + cfp, 1)
        # precision envelope, then sampled at 101 recall points (COCOeval.accumulate)
        precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        ap = 0.0
        for r in np.linspace(0, 1, 101):
            idx = np.searchsorted(recall, r, side="left")
            ap += float(precision[idx]) if idx < len(precision) else 0.0
        out[t] = ap / 101
    return out


def root_depth_error_pct(pred_root_z: float, gt_root_z: float) -> float:
    """Root depth error in % of the true distance."""
    if not gt_root_z > 0:
        raise ValueError(f"ground-truth root depth must be positive, got {gt_root_z}")
    return 100.0 * abs(pred_root_z - gt_root_z) / gt_root_z


def mpjpe_mm(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, pred_root: np.ndarray | None = None,
             gt_root: np.ndarray | None = None) -> float:
    """Mean per-joint error (mm) over ``mask``; root-aligned when both roots are given."""
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred_root is not None and gt_root is not None:
        pred, gt = pred - pred_root, gt - gt_root
    mask = np.asarray(mask, bool)
    if not mask.any():
        return math.nan
    return 1000.0 * float(np.linalg.norm(pred[mask] - gt[mask], axis=-1).mean())


# ----------------------------------------------------------------------------------------------
# Scoring a set of predictions
# ----------------------------------------------------------------------------------------------


def _in_regions(points: np.ndarray, regions: list[np.ndarray]) -> np.ndarray:
    inside = np.zeros(len(points), bool)
    for poly in regions:
        contour = poly.astype(np.float32).reshape(-1, 1, 2)
        for i, p in enumerate(points):
            if np.isfinite(p).all() and cv2.pointPolygonTest(contour, (float(p[0]), float(p[1])), False) >= 0:
                inside[i] = True
    return inside


def _top(persons: Persons) -> Persons:
    order = np.argsort(-np.asarray(persons.scores), kind="stable")[:MAX_DETS]
    return persons[order]


def _median(values: Sequence[float]) -> float | None:
    v = [x for x in values if math.isfinite(x)]
    return float(np.median(v)) if v else None


def _mean(values: Sequence[float]) -> float | None:
    v = [x for x in values if math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _clean(x: Any) -> Any:
    """JSON-safe: NaN → None, numpy → Python, rounded to 4 decimals."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(float(x)) else round(float(x), 4)
    return x


def root_in_box_matrix(pred_root_xy: np.ndarray, gt: Sequence[GTPerson]) -> np.ndarray:
    """(M, N) lenient similarity: > 0 when a prediction's 2D root lies inside a person's box, rising to 1 at
    the box centre (so that the greedy matcher prefers the person a root is most central in)."""
    pred_root_xy = np.asarray(pred_root_xy, np.float64).reshape(-1, 2)
    out = np.zeros((len(pred_root_xy), len(gt)))
    for j, g in enumerate(gt):
        x, y, w, h = g.box
        if not (w > 0 and h > 0):
            continue
        u = np.abs(pred_root_xy - (x + w / 2, y + h / 2)) / (w / 2, h / 2)  # 0 at the centre, 1 on the edge
        with np.errstate(invalid="ignore"):
            out[:, j] = np.where((u <= 1).all(1), 1 - np.nan_to_num(u, nan=1.0).max(1) + 1e-6, 0.0)
    return out


def _summary_2d(evals: list[_ImageEval], per_image: list[dict[str, Any]]) -> dict[str, Any]:
    ap = keypoint_ap(evals)
    n_gt = sum(r["gt_persons"] for r in per_image)
    ap_vals = list(ap.values())
    out: dict[str, Any] = {
        "images": len(per_image),
        "gt_persons": n_gt,
        "ignored_gt_persons": sum(r["ignored_gt_persons"] for r in per_image),
        "predictions": sum(r["predictions"] for r in per_image),
    }
    for rule, suffix in (("oks", ""), ("root_in_box", "_root_in_box")):
        tp = sum(r[rule]["true_positives"] for r in per_image)
        fp = sum(r[rule]["false_positives"] for r in per_image)
        conf = np.asarray([c for r in per_image for c in r[rule]["_confidences"]])
        out.update({
            f"true_positives{suffix}": tp,
            f"false_positives{suffix}": fp,
            f"recall{suffix}": tp / n_gt if n_gt else math.nan,
            f"precision{suffix}": tp / (tp + fp) if tp + fp else math.nan,
            f"joints_conf_ge_0.3{suffix}": float(np.mean(conf >= CONFIDENCE_THRESHOLD)) if conf.size else math.nan,
            f"median_joint_confidence{suffix}": float(np.median(conf)) if conf.size else math.nan,
        })
    out.update({
        "ap_oks50": ap[0.5],
        "ap_oks50_95": float(np.mean(ap_vals)) if all(math.isfinite(a) for a in ap_vals) else math.nan,
        "ap_per_threshold": ap,
    })
    return out


def _per_joint(similarities: list[np.ndarray], skeleton: Skeleton) -> dict[str, dict[str, Any]]:
    """Per shared joint, over the people found by the lenient rule: how many had it labelled, the mean
    keypoint similarity, and the share placed well enough for OKS 0.5 on that joint alone."""
    if not similarities:
        return {}
    ks = np.stack(similarities)
    out = {}
    for k, name in enumerate(skeleton.joint_names):
        col = ks[:, k][np.isfinite(ks[:, k])]
        if col.size:
            out[name] = {"labelled": int(col.size), "mean_similarity": float(col.mean()),
                         "similarity_ge_0.5": float(np.mean(col >= MATCH_OKS))}
    return out


def joint_offsets(pred_xy: np.ndarray, g: GTPerson, skeleton: Skeleton) -> np.ndarray:
    """(K, 3) where each predicted joint sits relative to its annotation, in units of the annotated box height:
    column 0 *outward* (positive: further from the person's own mid-line, the mean x of its labelled joints;
    only for left / right joints, NaN for the neck and nose), column 1 *down* (image y), column 2 the distance.
    NaN where ``g`` has the joint unlabelled. A skeleton whose arms hug the torso has negative outward
    offsets at the elbows and wrists; one whose hips sit too high has negative down offsets there."""
    out = np.full((skeleton.num_joints, 3), np.nan)
    lab = g.labelled
    if not lab.any():
        return out
    height = max(float(g.box[3]), np.finfo(float).eps)
    d = (np.asarray(pred_xy, np.float64) - g.keypoints) / height
    side = np.sign(g.keypoints[:, 0] - np.nanmean(g.keypoints[lab, 0]))
    sided = np.array([n.startswith(("l_", "r_")) for n in skeleton.joint_names])
    out[lab, 1] = d[lab, 1]
    out[lab, 2] = np.hypot(d[lab, 0], d[lab, 1])
    both = lab & sided
    out[both, 0] = d[both, 0] * side[both]
    return out


def _per_joint_offsets(offsets: list[np.ndarray], skeleton: Skeleton) -> dict[str, dict[str, Any]]:
    """Per shared joint, over the people found by the lenient rule: the median outward and down offsets of
    :func:`joint_offsets` (a systematic bias) beside the median distance (the whole error), in box heights."""
    if not offsets:
        return {}
    o = np.stack(offsets)
    out = {}
    for k, name in enumerate(skeleton.joint_names):
        down = o[:, k, 1][np.isfinite(o[:, k, 1])]
        if not down.size:
            continue
        outward = o[:, k, 0][np.isfinite(o[:, k, 0])]
        dist = o[:, k, 2][np.isfinite(o[:, k, 2])]
        out[name] = {"labelled": int(down.size), "median_down": float(np.median(down)),
                     "median_outward": float(np.median(outward)) if outward.size else None,
                     "median_distance": float(np.median(dist))}
    return out


CONFIDENCE_BINS = (0.0, 0.3, 0.5, 0.7, 0.9, 1.0001)


def _confidence_bins(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[dict[str, Any]]:
    """Does a joint's confidence say whether it is right on real people? Per confidence bin, over the labelled
    joints of the people found by the lenient rule: how many, and the share placed within keypoint similarity
    0.5. A confidence that means something rises with the bin; one that does not stays flat."""
    if not pairs:
        return []
    ks = np.concatenate([k for k, _ in pairs])
    conf = np.concatenate([c for _, c in pairs])
    keep = np.isfinite(ks)
    ks, conf = ks[keep], conf[keep]
    out = []
    for lo, hi in zip(CONFIDENCE_BINS[:-1], CONFIDENCE_BINS[1:], strict=True):
        sel = (conf >= lo) & (conf < hi)
        out.append({"confidence": [lo, min(hi, 1.0)], "joints": int(sel.sum()),
                    "similarity_ge_0.5": float(np.mean(ks[sel] >= MATCH_OKS)) if sel.any() else None})
    return out


HEIGHT_BINS = (0.0, 0.25, 0.5, 0.75, math.inf)


def _recall_by_height(per_image: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recall under both rules per bin of the person's box height as a share of the image height
    (:data:`HEIGHT_BINS`): whether near, large people are found as often as far, small ones."""
    rows = [(h, r["oks"]["_found"][j], r["root_in_box"]["_found"][j])
            for r in per_image for j, h in enumerate(r["_height_share"]) if not r["_gt_ignored"][j]]
    out = []
    for lo, hi in zip(HEIGHT_BINS[:-1], HEIGHT_BINS[1:], strict=True):
        sel = [(a, b) for h, a, b in rows if lo <= h < hi]
        out.append({"height_share": f"{lo:g}–{hi:g}" if math.isfinite(hi) else f"≥ {lo:g}", "people": len(sel),
                    "recall": sum(a for a, _ in sel) / len(sel) if sel else math.nan,
                    "recall_root_in_box": sum(b for _, b in sel) / len(sel) if sel else math.nan})
    return out


def _frame_3d(img: RealImage, g: GTPerson, persons: Persons, hit: int | None, root: int) -> dict[str, Any]:
    frame: dict[str, Any] = {"image": img.name, "dataset": img.dataset, "found": hit is not None,
                             "gt_root_z_m": float(g.root_3d[2]) if g.root_3d is not None else math.nan}
    if hit is None or g.root_3d is None or g.joints_3d is None:
        return frame
    p3 = np.asarray(persons.joints_3d[hit], np.float64)
    shared = np.isfinite(g.joints_3d).all(1)
    shared[root] = False
    zp, zg = float(p3[root, 2]), float(g.root_3d[2])
    frame.update({
        "score": float(persons.scores[hit]),
        "pred_root_z_m": zp,
        "root_depth_error_pct": root_depth_error_pct(zp, zg),
        "root_depth_signed_pct": 100.0 * (zp - zg) / zg,
        "mpjpe_abs_mm": mpjpe_mm(p3, g.joints_3d, shared),
        "mpjpe_rel_mm": mpjpe_mm(p3, g.joints_3d, shared, p3[root], g.root_3d),
        "root_error_mm": 1000.0 * float(np.linalg.norm(p3[root] - g.root_3d)),
        "shared_joints": int(shared.sum()),
        "joints_conf_ge_0.3": float(np.mean(np.asarray(persons.joint_confidence[hit]) >= CONFIDENCE_THRESHOLD)),
    })
    return frame


def _summary_3d(frames: list[dict[str, Any]]) -> dict[str, Any]:
    found = [f for f in frames if f["found"]]
    keys = ("root_depth_error_pct", "root_depth_signed_pct", "mpjpe_abs_mm", "mpjpe_rel_mm")
    return {
        "persons": len(frames), "found": len(found),
        **{f"median_{k}": _median([f[k] for f in found]) for k in keys},
        **{f"mean_{k}": _mean([f[k] for f in found]) for k in keys if k != "root_depth_signed_pct"},
    }


def _rules(skeleton: Skeleton) -> dict[str, str]:
    """The scoring rules in words, stored with every result."""
    return {
        "matching": f"COCO greedy by score, OKS >= {MATCH_OKS} on shared joints, one prediction per person",
        "matching_root_in_box": "lenient: greedy by score, the predicted 2D root (mid_hip) inside the person's "
                                "box (file box, else labelled-joint extent x 1.25)",
        "ignored_gt": f"crowd or fewer than {MIN_LABELLED_JOINTS} labelled shared joints",
        "not_false_positives": "matches of ignored people; any unmatched prediction in partially labelled "
                               "images (MPII); predictions centred in PoseTrack ignore regions",
        "oks": "COCO sigmas on shared joints (neck 0.079 as CrowdPose); area = annotation area, else 0.53 x box "
               "(file box, else labelled-joint extent x 1.25)",
        "ap": f"COCO 101-point, max {MAX_DETS} predictions per image, pooled per group",
        "confidence": f"fraction of all {skeleton.num_joints} joints of matched predictions with "
                      f"confidence >= {CONFIDENCE_THRESHOLD}",
        "root_3d": "GT root = mean of GT hips; ours = mid_hip; depth error = |Zp - Zg| / Zg",
        "mpjpe": "shared joints except the root, mm; rel = both skeletons minus their roots",
        "intrinsics_2d": f"no calibration: hfov {FALLBACK_HFOV_DEG:g} deg, centred principal point",
    }


def score_predictions(images: Sequence[RealImage], predictions: Sequence[Persons], skeleton: Skeleton) -> dict[str, Any]:
    """All figures for one checkpoint's predictions (one :class:`Persons` per image), JSON-ready.

    Two matching rules, both greedy by score and one-to-one: ``oks`` (OKS ≥ 0.5, the primary one: recall,
    precision, AP, and the 3D figures) and ``root_in_box`` (the predicted 2D root inside the person's box: a
    lenient "something is on this person" count, what a user sees before the skeletons fit).

    Returns ``{"rules", "overall_2d", "per_dataset_2d", "overall_3d", "per_dataset_3d", "frames_3d",
    "overall_3d_root_in_box", "frames_3d_root_in_box", "per_joint_2d_root_in_box", "per_joint_offset_2d_root_in_box",
    "confidence_vs_placement_2d_root_in_box", "recall_by_height_2d", "images"}``; ``overall_2d``
    pools the 2D-only datasets, ``overall_3d`` the frames with 3D ground truth (their 2D figures are in
    ``per_dataset_2d``); ``per_joint_2d_root_in_box`` says which joints of the people found on the 2D-only
    datasets are misplaced (per-joint keypoint similarity, the terms of the OKS), ``per_joint_offset_2d_root_in_box``
    in which direction (:func:`joint_offsets`: a bias, or scatter), and
    ``confidence_vs_placement_2d_root_in_box`` whether their confidences tell the well placed ones apart, and
    ``recall_by_height_2d`` how recall depends on how much of the frame a person fills.
    """
    if len(images) != len(predictions):
        raise ValueError(f"{len(images)} images but {len(predictions)} predictions")
    sig = sigmas_for(skeleton)
    root = skeleton.root
    per_image: list[dict[str, Any]] = []
    evals: list[_ImageEval] = []
    frames: dict[str, list[dict[str, Any]]] = {"oks": [], "root_in_box": []}
    joint_ks: list[tuple[str, np.ndarray, np.ndarray]] = []  # (dataset, (K,) similarity, (K,) confidence) per match
    joint_offs: list[tuple[str, np.ndarray]] = []  # (dataset, (K, 3) joint_offsets) per lenient match
    for img, raw in zip(images, predictions, strict=True):
        persons = _top(raw)
        scores = np.asarray(persons.scores, np.float64)
        j2 = np.asarray(persons.joints_2d, np.float64).reshape(len(persons), skeleton.num_joints, 2)
        gt_ignored = np.array([p.ignored for p in img.persons], bool)
        gt_crowd = np.array([p.crowd for p in img.persons], bool)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN skeleton has no centre
            centres = np.nanmean(j2, axis=1)
        pred_ignored = _in_regions(centres, img.ignore_regions) if img.ignore_regions else np.zeros(len(j2), bool)
        if not img.exhaustive:
            pred_ignored[:] = True
        similarity = {"oks": (oks_matrix(j2, img.persons, sig), MATCH_OKS),
                      "root_in_box": (root_in_box_matrix(j2[:, root], img.persons), 1e-9)}
        evals.append(_ImageEval(scores, similarity["oks"][0], gt_ignored, pred_ignored, gt_crowd))
        record: dict[str, Any] = {
            "image": img.name, "dataset": img.dataset, "width": img.width, "height": img.height,
            "intrinsics": "calibrated" if img.intrinsics is not None else f"hfov {FALLBACK_HFOV_DEG:g} deg",
            "gt_persons": int((~gt_ignored).sum()), "ignored_gt_persons": int(gt_ignored.sum()),
            "predictions": len(persons),
            "_height_share": [float(g.box[3]) / img.height for g in img.persons],
            "_gt_ignored": gt_ignored.tolist(),
        }
        for rule, (sim, thr) in similarity.items():
            pred_gt, matched_ignored = greedy_match(sim, scores, gt_ignored, thr, gt_crowd)
            tp_mask = (pred_gt >= 0) & ~matched_ignored
            fp_mask = (pred_gt < 0) & ~pred_ignored
            conf = np.asarray(persons.joint_confidence, np.float64)[tp_mask].reshape(-1)
            record[rule] = {
                "true_positives": int(tp_mask.sum()), "false_positives": int(fp_mask.sum()),
                "joints_conf_ge_0.3": float(np.mean(conf >= CONFIDENCE_THRESHOLD)) if conf.size else math.nan,
                "_confidences": conf.tolist(),
                "_found": np.isin(np.arange(len(img.persons)), pred_gt[tp_mask]).tolist(),
            }
            if rule == "oks":
                record[rule]["matched_oks"] = [float(sim[i, pred_gt[i]]) for i in np.flatnonzero(tp_mask)]
            else:
                joint_ks += [(img.dataset, keypoint_similarity(j2[i], img.persons[pred_gt[i]], sig),
                              np.asarray(persons.joint_confidence[i], np.float64))
                             for i in np.flatnonzero(tp_mask)]
                joint_offs += [(img.dataset, joint_offsets(j2[i], img.persons[pred_gt[i]], skeleton))
                               for i in np.flatnonzero(tp_mask)]
            if img.persons and img.persons[0].joints_3d is not None:
                for j, g in enumerate(img.persons):
                    hit = np.flatnonzero((pred_gt == j) & tp_mask)
                    frames[rule].append(_frame_3d(img, g, persons, int(hit[0]) if len(hit) else None, root))
        per_image.append(record)

    def group(names: Sequence[str]) -> tuple[list[_ImageEval], list[dict[str, Any]]]:
        idx = [i for i, r in enumerate(per_image) if r["dataset"] in names]
        return [evals[i] for i in idx], [per_image[i] for i in idx]

    present = list(dict.fromkeys(img.dataset for img in images))
    two_d = [d for d in present if d in DATASETS_2D]
    present_3d = list(dict.fromkeys(f["dataset"] for f in frames["oks"]))
    result = {
        "rules": _rules(skeleton),
        "overall_2d": _summary_2d(*group(two_d)),
        "per_dataset_2d": {d: _summary_2d(*group([d])) for d in present},
        "overall_3d": _summary_3d(frames["oks"]),
        "per_dataset_3d": {d: _summary_3d([f for f in frames["oks"] if f["dataset"] == d]) for d in present_3d},
        "frames_3d": frames["oks"],
        "overall_3d_root_in_box": _summary_3d(frames["root_in_box"]),
        "frames_3d_root_in_box": frames["root_in_box"],
        "per_joint_2d_root_in_box": _per_joint([ks for d, ks, _ in joint_ks if d in two_d], skeleton),
        "per_joint_offset_2d_root_in_box": _per_joint_offsets([o for d, o in joint_offs if d in two_d], skeleton),
        "confidence_vs_placement_2d_root_in_box": _confidence_bins([(ks, c) for d, ks, c in joint_ks if d in two_d]),
        "recall_by_height_2d": _recall_by_height([r for r in per_image if r["dataset"] in two_d]),
        "images": [{k: ({kk: vv for kk, vv in v.items() if not kk.startswith("_")} if isinstance(v, dict) else v)
                    for k, v in r.items()} for r in per_image],
    }
    return _clean(result)  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------------------------
# Overlay sheet
# ----------------------------------------------------------------------------------------------


def _draw_gt(image: np.ndarray, persons: Sequence[GTPerson]) -> np.ndarray:
    """Ground-truth joints as small white dots with a dark rim (predictions are the coloured skeletons)."""
    for g in persons:
        for x, y in g.keypoints[g.labelled]:
            c = (int(round(x)), int(round(y)))
            cv2.circle(image, c, 3, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(image, c, 2, (255, 255, 255), -1, cv2.LINE_AA)
    return image


def overlay_sheet(images: Sequence[RealImage], predictions: Sequence[Persons], skeleton: Skeleton,
                  load: Callable[[Path], np.ndarray], cell: tuple[int, int] = (400, 300), columns: int = 7,
                  min_confidence: float = CONFIDENCE_THRESHOLD, captions: Sequence[str] | None = None) -> np.ndarray:
    """One RGB sheet: every image letterboxed into a ``cell`` (w, h), ground-truth joints as white crosses,
    predicted skeletons in track colours — joints with confidence ≥ ``min_confidence`` solid, the others faint.

    Drawn after shrinking each image to its cell, so that lines keep a visible width on the sheet.
    """
    from das_core.overlay import draw_persons

    cw, ch = cell
    rows = math.ceil(len(images) / columns)
    sheet = np.full((rows * ch, columns * cw, 3), 32, np.uint8)
    for n, (img, persons) in enumerate(zip(images, predictions, strict=True)):
        rgb = load(img.path)
        s = min(cw / rgb.shape[1], ch / rgb.shape[0])
        w, h = max(1, int(rgb.shape[1] * s)), max(1, int(rgb.shape[0] * s))
        small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        # pixel centres: x' = (x + 0.5)·s − 0.5 (das_core.camera)
        scaled = Persons(persons.scores, persons.joints_3d, (np.asarray(persons.joints_2d) + 0.5) * s - 0.5,
                         persons.joint_confidence, persons.track_ids)
        faint = draw_persons(small, scaled, skeleton, min_confidence=0.0, label_depth=False)
        drawn = cv2.addWeighted(small, 0.4, faint, 0.6, 0.0)
        drawn = draw_persons(drawn, scaled, skeleton, min_confidence=min_confidence,
                             label_depth=img.intrinsics is not None)
        gt = [GTPerson((g.keypoints + 0.5) * s - 0.5, g.labelled, g.area, g.box) for g in img.persons]
        drawn = _draw_gt(drawn, gt)
        y0, x0 = (n // columns) * ch + (ch - h) // 2, (n % columns) * cw + (cw - w) // 2
        sheet[y0:y0 + h, x0:x0 + w] = drawn
        text = captions[n] if captions is not None else img.name
        org = ((n % columns) * cw + 4, (n // columns) * ch + 14)
        cv2.putText(sheet, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(sheet, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return sheet


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The figures issue 17's targets name, from a :func:`score_predictions` result (None where undefined)."""
    d2, d3 = result["overall_2d"], result["overall_3d"]
    return {
        "3d_found": d3["found"], "3d_persons": d3["persons"],
        "3d_median_root_depth_error_pct": d3["median_root_depth_error_pct"],
        "3d_median_mpjpe_rel_mm": d3["median_mpjpe_rel_mm"],
        "2d_recall": d2["recall"], "2d_precision": d2["precision"], "2d_ap_oks50": d2["ap_oks50"],
        "2d_ap_oks50_95": d2["ap_oks50_95"], "2d_joints_conf_ge_0.3": d2["joints_conf_ge_0.3"],
        "2d_recall_root_in_box": d2["recall_root_in_box"], "2d_precision_root_in_box": d2["precision_root_in_box"],
    }


def _fmt(x: Any, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def format_table(result: dict[str, Any]) -> str:
    """Markdown tables (2D per dataset + overall, 3D per dataset + overall) of a :func:`score_predictions` result."""
    lines = ["| dataset | images | people (ignored) | recall | precision | AP@0.5 | AP@[.5:.95] | joints conf ≥ 0.3 "
             "| recall / precision, root in box | joints conf ≥ 0.3, root in box |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rows = [*result["per_dataset_2d"].items(), ("**2D set (all 2D-only datasets)**", result["overall_2d"])]
    for name, r in rows:
        lines.append(f"| {name} | {r['images']} | {r['gt_persons']} ({r['ignored_gt_persons']}) | "
                     f"{_fmt(r['recall'], '.2f')} | {_fmt(r['precision'], '.2f')} | {_fmt(r['ap_oks50'], '.3f')} | "
                     f"{_fmt(r['ap_oks50_95'], '.3f')} | {_fmt(r['joints_conf_ge_0.3'], '.1%')} | "
                     f"{_fmt(r['recall_root_in_box'], '.2f')} / {_fmt(r['precision_root_in_box'], '.2f')} | "
                     f"{_fmt(r['joints_conf_ge_0.3_root_in_box'], '.1%')} |")
    lines += ["", "| 3D frames | found | root depth err, median (signed) | MPJPE abs, median | MPJPE root-aligned, median |",
              "|---|---|---|---|---|"]
    rows3 = [*result["per_dataset_3d"].items(), ("**all 3D frames**", result["overall_3d"]),
             ("all 3D frames, root in box (lenient)", result["overall_3d_root_in_box"])]
    for name, r in rows3:
        lines.append(f"| {name} | {r['found']} / {r['persons']} | {_fmt(r['median_root_depth_error_pct'], '.1f')} % "
                     f"({_fmt(r['median_root_depth_signed_pct'], '+.1f')} %) | {_fmt(r['median_mpjpe_abs_mm'], '.0f')} mm | "
                     f"{_fmt(r['median_mpjpe_rel_mm'], '.0f')} mm |")
    per_joint = result.get("per_joint_2d_root_in_box") or {}
    if per_joint:
        lines += ["", "| joint (2D set, people found by the lenient rule) | labelled | mean keypoint similarity | "
                  "similarity ≥ 0.5 |", "|---|---|---|---|"]
        lines += [f"| {name} | {r['labelled']} | {r['mean_similarity']:.2f} | {r['similarity_ge_0.5']:.0%} |"
                  for name, r in per_joint.items()]
    offsets = result.get("per_joint_offset_2d_root_in_box") or {}
    if offsets:
        lines += ["", "| joint (2D set, people found by the lenient rule) | median outward | median down | "
                  "median distance (box heights) |", "|---|---|---|---|"]
        lines += [f"| {name} | {_fmt(r['median_outward'], '+.3f')} | {r['median_down']:+.3f} | "
                  f"{r['median_distance']:.3f} |" for name, r in offsets.items()]
    bins = result.get("confidence_vs_placement_2d_root_in_box") or []
    if bins:
        lines += ["", "| joint confidence (2D set, people found by the lenient rule) | joints | similarity ≥ 0.5 |",
                  "|---|---|---|"]
        lines += [f"| {b['confidence'][0]:.1f}–{b['confidence'][1]:.1f} | {b['joints']} | "
                  f"{_fmt(b['similarity_ge_0.5'], '.0%')} |" for b in bins]
    by_height = result.get("recall_by_height_2d") or []
    if by_height:
        lines += ["", "| person box height / image height (2D set) | people | recall (OKS) | recall (root in box) |",
                  "|---|---|---|---|"]
        lines += [f"| {b['height_share']} | {b['people']} | {_fmt(b['recall'], '.2f')} | "
                  f"{_fmt(b['recall_root_in_box'], '.2f')} |" for b in by_height]
    return "\n".join(lines)
