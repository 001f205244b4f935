"""The das annotation format: one JSON file per dataset split (docs/DATA_FORMAT.md).

Typed dataclasses, a strict reader (every error names the file, the image and the field) and an atomic
writer (temp file in the same folder + ``os.replace``). Units: 3D joints in metres in the camera optical
frame (x right, y down, z forward); 2D joints and intrinsics in pixels of the stored image, pixel-centre
convention of :mod:`das_core.camera`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from das_core.atomic_file import atomic_write_text
from das_core.camera import CameraError, Intrinsics
from das_core.skeletons import get_skeleton

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "AnnotationError",
    "AnnotationSet",
    "ImageAnnotation",
    "PersonAnnotation",
    "annotations_to_json",
    "read_annotations",
    "write_annotations",
]

FORMAT_NAME = "das-annotations"
FORMAT_VERSION = 1


class AnnotationError(ValueError):
    """An annotation file does not follow docs/DATA_FORMAT.md. The message names file, image and field."""


@dataclass
class PersonAnnotation:
    """One person. Either 3D (``joints_3d`` set) or 2D-only (``joints_3d`` None, ``joints_2d`` set).

    Attributes:
        joints_3d: (K, 3) metres, camera frame, or None for 2D-only people.
        joints_2d: (K, 2) pixels of the stored image, or None. For 3D people this optionally overrides the
            pinhole projection of ``joints_3d`` (e.g. Panoptic's lens-distorted projection, DAS_SPEC §2.1).
        visible: (K,) bool, joint labelled (and, for converters that know it, inside the image).
        center: (2,) pixels, optional explicit person centre for 2D-only people (COCO hip midpoint,
            DAS_SPEC §1.4); 3D people use the root joint.
        track_id: optional identity across frames (synthetic sequences), -1 when unknown.
    """

    visible: np.ndarray
    joints_3d: np.ndarray | None = None
    joints_2d: np.ndarray | None = None
    center: np.ndarray | None = None
    track_id: int = -1

    @property
    def has_depth(self) -> bool:
        return self.joints_3d is not None


@dataclass
class ImageAnnotation:
    """One image: its file (relative to the annotation file's folder), size, intrinsics and people."""

    id: str
    file: str
    width: int
    height: int
    camera: Intrinsics
    persons: list[PersonAnnotation] = field(default_factory=list)


@dataclass
class AnnotationSet:
    """A whole annotation file. ``root`` is the folder image paths are relative to (set by the reader)."""

    skeleton: str
    images: list[ImageAnnotation]
    root: Path = Path(".")
    version: int = FORMAT_VERSION
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def num_joints(self) -> int:
        return get_skeleton(self.skeleton).num_joints

    def image_path(self, image: ImageAnnotation) -> Path:
        return self.root / image.file


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


class _Where:
    """Builds error messages: ``file.json: image 3 ('000003'): persons[1].visible: ...``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.image: str | None = None

    def err(self, key: str, why: str) -> AnnotationError:
        loc = f"{self.path}: "
        if self.image is not None:
            loc += f"{self.image}: "
        return AnnotationError(f"{loc}{key}: {why}")


def _number(value: Any, key: str, where: _Where) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise where.err(key, f"expected a finite number, got {value!r}")
    return float(value)


def _int(value: Any, key: str, where: _Where, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise where.err(key, f"expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise where.err(key, f"must be >= {minimum}, got {value}")
    return value


def _array(value: Any, shape: tuple[int, ...], key: str, where: _Where) -> np.ndarray:
    if not isinstance(value, list):
        raise where.err(key, f"expected a list, got {type(value).__name__}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise where.err(key, "expected a (nested) list of numbers") from None
    if arr.shape != shape:
        raise where.err(key, f"expected shape {list(shape)}, got {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise where.err(key, "contains non-finite values")
    return arr


def _keys(obj: Any, required: set[str], optional: set[str], key: str, where: _Where) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise where.err(key, f"expected an object, got {type(obj).__name__}")
    missing = required - obj.keys()
    if missing:
        raise where.err(key, f"missing field(s) {sorted(missing)}")
    unknown = obj.keys() - required - optional
    if unknown:
        raise where.err(key, f"unknown field(s) {sorted(unknown)}")
    return obj


def _parse_person(obj: Any, k: int, key: str, where: _Where) -> PersonAnnotation:
    _keys(obj, {"visible"}, {"joints_3d", "joints_2d", "center", "track_id"}, key, where)
    vis_raw = obj["visible"]
    if not isinstance(vis_raw, list) or len(vis_raw) != k or any(
        isinstance(v, bool) or v not in (0, 1) for v in vis_raw
    ):
        raise where.err(f"{key}.visible", f"expected a list of {k} values 0/1, got {vis_raw!r}")
    visible = np.asarray(vis_raw, dtype=bool)
    j3 = obj.get("joints_3d")
    j2 = obj.get("joints_2d")
    if j3 is None and j2 is None:
        raise where.err(key, "needs joints_3d (3D person) or joints_2d (2D-only person)")
    joints_3d = None if j3 is None else _array(j3, (k, 3), f"{key}.joints_3d", where)
    joints_2d = None if j2 is None else _array(j2, (k, 2), f"{key}.joints_2d", where)
    if joints_3d is not None and np.any(joints_3d[visible, 2] <= 0):
        raise where.err(f"{key}.joints_3d", "visible joints need z > 0 (metres in front of the camera)")
    center = None if obj.get("center") is None else _array(obj["center"], (2,), f"{key}.center", where)
    track_id = _int(obj.get("track_id", -1), f"{key}.track_id", where, minimum=-1)
    return PersonAnnotation(visible=visible, joints_3d=joints_3d, joints_2d=joints_2d, center=center,
                            track_id=track_id)


def _parse_image(obj: Any, index: int, k: int, where: _Where) -> ImageAnnotation:
    where.image = f"images[{index}]"
    _keys(obj, {"file", "width", "height", "camera", "persons"}, {"id"}, "image", where)
    if not isinstance(obj["file"], str) or not obj["file"]:
        raise where.err("file", f"expected a non-empty relative path, got {obj['file']!r}")
    if os.path.isabs(obj["file"]):
        raise where.err("file", f"must be relative to the annotation file's folder, got {obj['file']!r}")
    image_id = str(obj.get("id", obj["file"]))
    where.image = f"images[{index}] ({image_id!r})"
    width = _int(obj["width"], "width", where, minimum=1)
    height = _int(obj["height"], "height", where, minimum=1)
    cam = _keys(obj["camera"], {"fx", "fy", "cx", "cy"}, {"skew"}, "camera", where)
    vals = {n: _number(cam[n], f"camera.{n}", where) for n in ("fx", "fy", "cx", "cy")}
    skew = _number(cam.get("skew", 0.0), "camera.skew", where)
    try:
        camera = Intrinsics(skew=skew, **vals)
    except CameraError as exc:
        raise where.err("camera", str(exc)) from None
    persons_raw = obj["persons"]
    if not isinstance(persons_raw, list):
        raise where.err("persons", f"expected a list, got {type(persons_raw).__name__}")
    persons = [_parse_person(p, k, f"persons[{i}]", where) for i, p in enumerate(persons_raw)]
    return ImageAnnotation(id=image_id, file=obj["file"], width=width, height=height, camera=camera, persons=persons)


def read_annotations(path: str | os.PathLike[str]) -> AnnotationSet:
    """Read and validate one annotation file. Raises :class:`AnnotationError` naming file/image/field."""
    path = Path(path)
    where = _Where(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise where.err("file", f"not UTF-8 text ({exc.reason})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise where.err("json", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    _keys(doc, {"format", "version", "skeleton", "images"}, {"info", "num_joints"}, "top level", where)
    if doc["format"] != FORMAT_NAME:
        raise where.err("format", f"expected {FORMAT_NAME!r}, got {doc['format']!r}")
    version = _int(doc["version"], "version", where)
    if version != FORMAT_VERSION:
        raise where.err("version", f"unsupported version {version} (this reader knows {FORMAT_VERSION})")
    try:
        skeleton = get_skeleton(doc["skeleton"])
    except (KeyError, TypeError) as exc:
        raise where.err("skeleton", str(exc).strip("'\"")) from None
    k = skeleton.num_joints
    if "num_joints" in doc and doc["num_joints"] != k:
        raise where.err("num_joints", f"{doc['num_joints']!r} does not match skeleton {skeleton.name} ({k})")
    if not isinstance(doc["images"], list):
        raise where.err("images", "expected a list")
    info = doc.get("info", {})
    if not isinstance(info, dict):
        raise where.err("info", "expected an object")
    images = [_parse_image(obj, i, k, where) for i, obj in enumerate(doc["images"])]
    where.image = None
    seen: set[str] = set()
    for img in images:
        if img.id in seen:
            raise where.err("images", f"duplicate image id {img.id!r}")
        seen.add(img.id)
    return AnnotationSet(skeleton=skeleton.name, images=images, root=path.parent, version=version, info=info)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def _round(arr: np.ndarray, digits: int) -> list[Any]:
    return np.round(np.asarray(arr, np.float64), digits).tolist()


def _person_to_json(p: PersonAnnotation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if p.joints_3d is not None:
        out["joints_3d"] = _round(p.joints_3d, 5)  # 10 µm
    if p.joints_2d is not None:
        out["joints_2d"] = _round(p.joints_2d, 3)
    out["visible"] = [int(bool(v)) for v in np.asarray(p.visible).reshape(-1)]
    if p.center is not None:
        out["center"] = _round(p.center, 3)
    if p.track_id >= 0:
        out["track_id"] = int(p.track_id)
    return out


def annotations_to_json(ann: AnnotationSet) -> dict[str, Any]:
    """The JSON document of :func:`write_annotations` (validated on the way out)."""
    k = get_skeleton(ann.skeleton).num_joints
    images = []
    for img in ann.images:
        for i, p in enumerate(img.persons):
            if p.joints_3d is None and p.joints_2d is None:
                raise AnnotationError(f"image {img.id!r}: persons[{i}]: needs joints_3d or joints_2d")
            for name, arr, dim in (("joints_3d", p.joints_3d, 3), ("joints_2d", p.joints_2d, 2)):
                if arr is not None and np.shape(arr) != (k, dim):
                    raise AnnotationError(f"image {img.id!r}: persons[{i}].{name}: shape {np.shape(arr)} != ({k}, {dim})")
            if np.shape(p.visible) != (k,):
                raise AnnotationError(f"image {img.id!r}: persons[{i}].visible: shape {np.shape(p.visible)} != ({k},)")
        cam = img.camera
        cam_json: dict[str, float] = {"fx": cam.fx, "fy": cam.fy, "cx": cam.cx, "cy": cam.cy}
        if cam.skew:
            cam_json["skew"] = cam.skew
        images.append({
            "id": img.id, "file": img.file, "width": int(img.width), "height": int(img.height),
            "camera": {n: round(float(v), 6) for n, v in cam_json.items()},
            "persons": [_person_to_json(p) for p in img.persons],
        })
    return {"format": FORMAT_NAME, "version": FORMAT_VERSION, "skeleton": ann.skeleton, "num_joints": k,
            "info": ann.info, "images": images}


def write_annotations(path: str | os.PathLike[str], ann: AnnotationSet) -> None:
    """Write atomically: a temp file in the destination folder, then ``os.replace``."""
    path = Path(path)
    doc = annotations_to_json(ann)
    atomic_write_text(path, json.dumps(doc, separators=(",", ":")) + "\n")
