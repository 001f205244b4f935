"""CMU Panoptic (panoptic-toolbox layout) → das annotations (DAS_SPEC §1.1, §2.3, §9.1).

Input layout, one folder per sequence under ``root``::

    <seq>/calibration_<seq>.json                     cameras: name "00_16", K, distCoef, R, t (cm), resolution
    <seq>/hdImgs/00_16/00_16_00000123.jpg
    <seq>/hdPose3d_stage1_coco19/body3DScene_00000123.json   bodies: id, joints19 = 19 × (x, y, z [cm], conf)

(images may instead live under ``<root>/hdImgs/<seq>/00_16/``). Frames without an image are skipped.

Output per kept frame and camera: intrinsics from K (pixels of the distorted HD image), per person the
first 15 coco19 joints in that camera's frame in **metres** (``X_cam = R·X + t``, cm → m) and their
lens-distorted projections as ``joints_2d`` (the official code supervises distorted 2D, §2.1).
Visibility: confidence > 0.1 and projected inside the image; the nose (index 1) is always 0 (§1.1).
Filtering (§2.3): a body is valid with ≥ 3 confident joints and a usable box (joint box widened by 15 %
in x, extended 30 % up and 15 % down, clipped, area > 64); ``mode="train"`` keeps a frame only if every
body is valid, takes every ``frame_step``-th frame; ``mode="test"`` drops invalid bodies and samples
``frames_per_activity`` frames uniformly per activity (split evenly over its sequences × cameras).
An image is kept if a person remains and at least 6 joints are visible in total.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from das_core.camera import Intrinsics
from das_core.data.annotations import AnnotationSet, ImageAnnotation, PersonAnnotation, write_annotations
from das_core.skeletons import get_skeleton

__all__ = [
    "PANOPTIC_CAMERAS",
    "PANOPTIC_TEST_ACTIVITIES",
    "PANOPTIC_TRAIN_SEQUENCES",
    "PanopticFormatError",
    "convert_panoptic",
    "project_distorted",
]

log = logging.getLogger(__name__)

PANOPTIC_TRAIN_SEQUENCES: tuple[str, ...] = (
    "160224_haggling1", "160226_mafia2", "160224_mafia1", "160224_mafia2", "160224_ultimatum1", "160224_ultimatum2",
)
PANOPTIC_TEST_ACTIVITIES: dict[str, tuple[str, ...]] = {
    "haggling": ("160226_haggling1", "160422_haggling1"),
    "mafia": ("160226_mafia1", "160422_mafia2"),
    "ultimatum": ("160422_ultimatum1",),
    "pizza": ("160906_pizza1",),
}
PANOPTIC_CAMERAS: tuple[tuple[int, int], ...] = ((0, 16), (0, 30))
_CONF_THR = 0.1
_FRAME_RE = re.compile(r"body3DScene_(\d+)\.json$")


class PanopticFormatError(ValueError):
    """A Panoptic file does not look like the panoptic-toolbox format; the message names the file."""


def project_distorted(points_cam: np.ndarray, k: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(…, 3) camera-frame points → (…, 2) distorted pixels (OpenCV radial k1 k2 k3 + tangential p1 p2)."""
    d = np.zeros(5)
    d[: min(5, len(dist))] = np.asarray(dist, np.float64)[:5]
    k1, k2, p1, p2, k3 = d
    z = np.where(np.abs(points_cam[..., 2]) > 1e-9, points_cam[..., 2], 1e-9)
    x, y = points_cam[..., 0] / z, points_cam[..., 1] / z
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2**2 + k3 * r2**3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    u = k[0, 0] * xd + k[0, 1] * yd + k[0, 2]
    v = k[1, 1] * yd + k[1, 2]
    return np.stack([u, v], axis=-1)


def _load_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"Panoptic file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise PanopticFormatError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def _load_cameras(seq_dir: Path, seq: str, wanted: Sequence[tuple[int, int]]) -> dict[str, dict]:
    path = seq_dir / f"calibration_{seq}.json"
    calib = _load_json(path)
    out = {}
    try:
        by_name = {c["name"]: c for c in calib["cameras"]}
        for panel, node in wanted:
            name = f"{panel:02d}_{node:02d}"
            if name not in by_name:
                raise PanopticFormatError(f"{path}: no camera {name!r}")
            c = by_name[name]
            out[name] = {
                "K": np.asarray(c["K"], np.float64).reshape(3, 3),
                "dist": np.asarray(c.get("distCoef", [0, 0, 0, 0, 0]), np.float64).reshape(-1),
                "R": np.asarray(c["R"], np.float64).reshape(3, 3),
                "t": np.asarray(c["t"], np.float64).reshape(3),
                "size": (int(c["resolution"][0]), int(c["resolution"][1])),
            }
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, PanopticFormatError):
            raise
        raise PanopticFormatError(f"{path}: malformed camera entry ({exc!r})") from None
    return out


def _valid_body(uv: np.ndarray, conf: np.ndarray, width: int, height: int) -> bool:
    """≥ 3 confident joints and a usable, enlarged joint box (DAS_SPEC §2.3)."""
    good = conf > _CONF_THR
    if good.sum() < 3:
        return False
    x0, y0 = uv[good].min(axis=0)
    x1, y1 = uv[good].max(axis=0)
    bw, bh = x1 - x0, y1 - y0
    x0, x1 = x0 - 0.075 * bw, x1 + 0.075 * bw
    y0, y1 = y0 - 0.30 * bh, y1 + 0.15 * bh
    x0, x1 = np.clip([x0, x1], 0, width - 1)
    y0, y1 = np.clip([y0, y1], 0, height - 1)
    return bool((x1 - x0) * (y1 - y0) > 64)


def _frames(seq_dir: Path) -> list[int]:
    pose_dir = seq_dir / "hdPose3d_stage1_coco19"
    if not pose_dir.is_dir():
        raise FileNotFoundError(f"Panoptic pose folder not found: {pose_dir}")
    return sorted(int(m.group(1)) for p in pose_dir.iterdir() if (m := _FRAME_RE.search(p.name)))


def _convert_frame(seq_dir: Path, frame: int, cam_name: str, cam: dict, mode: str, out_dir: Path,
                   ) -> ImageAnnotation | None:
    pose_path = seq_dir / "hdPose3d_stage1_coco19" / f"body3DScene_{frame:08d}.json"
    img_path = seq_dir / "hdImgs" / cam_name / f"{cam_name}_{frame:08d}.jpg"
    if not img_path.is_file():
        # alternative layout with all images under one tree: <root>/hdImgs/<seq>/<cam>/<cam>_<frame>.jpg
        img_path = seq_dir.parent / "hdImgs" / seq_dir.name / cam_name / f"{cam_name}_{frame:08d}.jpg"
        if not img_path.is_file():
            return None
    doc = _load_json(pose_path)
    w, h = cam["size"]
    skeleton = get_skeleton("panoptic15")
    persons = []
    try:
        bodies = doc["bodies"]
        for b in bodies:
            j = np.asarray(b["joints19"], np.float64).reshape(-1, 4)
            if len(j) < 15:
                raise PanopticFormatError(f"{pose_path}: body {b.get('id')} has {len(j)} joints, need >= 15")
            cam_pts = (j[:, :3] @ cam["R"].T + cam["t"]) / 100.0  # cm → m, camera frame
            uv = project_distorted(cam_pts, cam["K"], cam["dist"])
            conf = j[:, 3]
            if not _valid_body(uv, np.where(cam_pts[:, 2] > 0, conf, -1.0), w, h):
                if mode == "train":
                    return None  # every body must be usable in training frames
                continue
            cam_pts, uv, conf = cam_pts[:15], uv[:15], conf[:15]
            inside = (uv[:, 0] >= -0.5) & (uv[:, 0] <= w - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= h - 0.5)
            vis = (conf > _CONF_THR) & inside & (cam_pts[:, 2] > 0)
            vis[list(skeleton.unsupervised_3d)] = False  # nose never supervised by Panoptic (§1.1)
            persons.append(PersonAnnotation(visible=vis, joints_3d=cam_pts, joints_2d=uv, track_id=int(b.get("id", -1))))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, PanopticFormatError):
            raise
        raise PanopticFormatError(f"{pose_path}: malformed body entry ({exc!r})") from None
    if not persons or sum(int(p.visible.sum()) for p in persons) < 6:
        return None
    k = cam["K"]
    return ImageAnnotation(
        id=f"{seq_dir.name}/{cam_name}/{frame:08d}", file=os.path.relpath(img_path, out_dir), width=w, height=h,
        camera=Intrinsics(fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2], skew=k[0, 1]), persons=persons,
    )


def convert_panoptic(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    sequences: Sequence[str] = PANOPTIC_TRAIN_SEQUENCES,
    cameras: Sequence[tuple[int, int]] = PANOPTIC_CAMERAS,
    mode: str = "train",
    frame_step: int = 2,
    frames_per_activity: int | None = None,
) -> AnnotationSet:
    """Convert ``sequences`` under ``root`` and write ``out`` (a das annotation JSON); return the set.

    ``frames_per_activity`` (test mode): total frames sampled uniformly over all given sequences and
    cameras (DAS_SPEC §9.1 uses 2400 per activity); None keeps every ``frame_step``-th frame.
    """
    if mode not in ("train", "test"):
        raise ValueError(f"mode must be 'train' or 'test', got {mode!r}")
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    root, out = Path(root), Path(out)
    out_dir = out.parent
    images: list[ImageAnnotation] = []
    per_pair = None
    if frames_per_activity is not None:
        per_pair = max(1, frames_per_activity // max(1, len(sequences) * len(cameras)))
    for seq in sequences:
        seq_dir = root / seq
        cams = _load_cameras(seq_dir, seq, cameras)
        frames = _frames(seq_dir)
        for cam_name, cam in cams.items():
            if per_pair is not None:
                chosen = [frames[i] for i in np.unique(np.linspace(0, len(frames) - 1, per_pair).round().astype(int))]
            else:
                chosen = frames[::frame_step]
            kept = 0
            for frame in chosen:
                img = _convert_frame(seq_dir, frame, cam_name, cam, mode, out_dir)
                if img is not None:
                    images.append(img)
                    kept += 1
            log.info("%s %s: kept %d of %d frames", seq, cam_name, kept, len(chosen))
    ann = AnnotationSet(skeleton="panoptic15", images=images,
                        info={"source": "CMU Panoptic", "mode": mode, "sequences": list(sequences),
                              "cameras": [f"{p:02d}_{n:02d}" for p, n in cameras], "units": "metres"})
    write_annotations(out, ann)
    ann.root = out_dir
    return ann
