"""Intrinsics from files: ROS ``camera_info`` YAML (camera_calibration format), or a small YAML/JSON.

Accepted layouts (YAML or JSON):

* ROS camera_calibration: ``image_width``, ``image_height``, ``camera_matrix: {rows: 3, cols: 3, data: [9]}``
* plain: ``{fx, fy, cx, cy}`` (optionally ``width``, ``height``, ``skew``)
* matrix: ``{K: [9 values or 3×3]}`` (also ``k``)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml

from das_core.camera import CameraError, Intrinsics, scale_to_image

__all__ = ["intrinsics_for_image", "load_intrinsics"]

log = logging.getLogger(__name__)


def _parse(doc: Any, path: Path) -> tuple[Intrinsics, tuple[int, int] | None]:
    if not isinstance(doc, dict):
        raise CameraError(f"{path}: expected a mapping with camera intrinsics")
    size = None
    if "image_width" in doc and "image_height" in doc:
        size = (int(doc["image_width"]), int(doc["image_height"]))
    elif "width" in doc and "height" in doc:
        size = (int(doc["width"]), int(doc["height"]))
    try:
        if "camera_matrix" in doc:
            cm = doc["camera_matrix"]
            data = cm["data"] if isinstance(cm, dict) else cm
            return Intrinsics.from_matrix(data), size
        for key in ("K", "k"):
            if key in doc:
                return Intrinsics.from_matrix(doc[key]), size
        if all(k in doc for k in ("fx", "fy", "cx", "cy")):
            return Intrinsics(float(doc["fx"]), float(doc["fy"]), float(doc["cx"]), float(doc["cy"]),
                              float(doc.get("skew", 0.0))), size
    except CameraError as exc:
        raise CameraError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CameraError(f"{path}: malformed intrinsics ({exc})") from None
    raise CameraError(f"{path}: no intrinsics found; expected camera_matrix, K, or fx/fy/cx/cy")


def load_intrinsics(path: str | Path) -> tuple[Intrinsics, tuple[int, int] | None]:
    """Read intrinsics and, when the file states it, the image size (width, height) they belong to."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: camera file not found")
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CameraError(f"{path}: cannot parse camera file: {exc}") from None
    return _parse(doc, path)


def intrinsics_for_image(width: int, height: int, camera: Intrinsics | None, camera_size: tuple[int, int] | None,
                         hfov_deg: float | None) -> Intrinsics:
    """Intrinsics for an image of this size: scaled from a calibration of another size, or from a FOV guess.

    Scaling follows :func:`das_core.camera.scale_to_image`: a calibration of another aspect ratio raises
    ``CameraError`` (the same rule as the ROS node's CameraInfo).
    """
    if camera is not None:
        if camera_size is not None and camera_size != (width, height):
            k = scale_to_image(
                camera, camera_size, (width, height),
                fix=f"recalibrate at {width}×{height}, crop/resize the input to the calibration's aspect ratio, "
                "or pass a --camera file whose image_width/image_height match the input",
            )
            log.info("image is %dx%d but the calibration is for %dx%d: intrinsics scaled by (%.4f, %.4f)",
                     width, height, *camera_size, width / camera_size[0], height / camera_size[1])
            return k
        return camera
    if hfov_deg is None:
        raise CameraError("no intrinsics: pass --camera FILE (ROS camera_info YAML or JSON) or --hfov DEGREES")
    return Intrinsics.from_fov(width, height, hfov_deg)
