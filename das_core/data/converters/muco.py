"""MuCo-3DHP / MuPoTS-3D (Moon et al.'s COCO-style JSON) → das annotations (DAS_SPEC §1.2, §1.3, §2.3).

Input: ``MuCo-3DHP.json`` or ``MuPoTS-3D.json`` with
``images[i] = {id, file_name, width, height, f: [fx, fy], c: [cx, cy]}`` and
``annotations[j] = {image_id, keypoints_cam: K × 3 (mm, camera frame), keypoints_img: K × 2 (px),
keypoints_vis: K (0/1 or bool), ...}`` with K = 21 (MuCo) or 17 (MuPoTS; the first 17 MuCo joints).
Output: skeleton ``muco21`` in metres; MuPoTS joints 17..20 are absent (visible 0, placed at the root).
Visibility = the dataset flag and inside the image. A person is dropped if it has no visible joint or
its root is behind the camera; an image is dropped if no person remains or fewer than 6 joints are
visible in total (§2.3). ``keep_all_images`` keeps empty images (evaluation sets).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from das_core.camera import CameraError, Intrinsics
from das_core.data.annotations import AnnotationSet, ImageAnnotation, PersonAnnotation, write_annotations
from das_core.data.converters.coco_json import read_coco_style_json
from das_core.skeletons import get_skeleton

__all__ = ["MuCoFormatError", "convert_muco"]

log = logging.getLogger(__name__)


class MuCoFormatError(ValueError):
    """The MuCo/MuPoTS JSON is not in the expected format; the message names the entry."""


def convert_muco(annotation_json: str | os.PathLike[str], image_root: str | os.PathLike[str],
                 out: str | os.PathLike[str], keep_all_images: bool = False) -> AnnotationSet:
    """Convert one Moon-style JSON; ``image_root`` is the folder ``file_name`` is relative to."""
    src = Path(annotation_json)
    doc = read_coco_style_json(src, MuCoFormatError, "MuCo/MuPoTS", "a COCO-style object")
    skeleton = get_skeleton("muco21")
    k_out, root = skeleton.num_joints, skeleton.root
    out = Path(out)
    image_root = Path(image_root)
    by_image: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(ann.get("image_id"), []).append(ann)
    images = []
    dropped = 0
    for img in doc["images"]:
        where = f"{src}: image id {img.get('id')!r}"
        try:
            w, h = int(img["width"]), int(img["height"])
            fx, fy = (float(v) for v in img["f"])
            cx, cy = (float(v) for v in img["c"])
            camera = Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy)
            file_name = img["file_name"]
        except (KeyError, TypeError, ValueError) as exc:
            raise MuCoFormatError(f"{where}: needs width, height, f [fx, fy], c [cx, cy], file_name ({exc})") from None
        except CameraError as exc:
            raise MuCoFormatError(f"{where}: {exc}") from None
        persons = []
        for a in by_image.get(img["id"], []):
            try:
                cam_mm = np.asarray(a["keypoints_cam"], np.float64).reshape(-1, 3)
                uv = np.asarray(a["keypoints_img"], np.float64).reshape(-1, 2)
                vis_src = np.asarray(a["keypoints_vis"], np.float64).reshape(-1) > 0
            except (KeyError, TypeError, ValueError) as exc:
                raise MuCoFormatError(f"{where}: annotation {a.get('id')!r} needs keypoints_cam, keypoints_img, "
                                      f"keypoints_vis ({exc})") from None
            k = len(cam_mm)
            if k not in (17, 21) or len(uv) != k or len(vis_src) != k:
                raise MuCoFormatError(f"{where}: annotation {a.get('id')!r} has {k} 3D / {len(uv)} 2D / "
                                      f"{len(vis_src)} vis joints; expected 21 (MuCo) or 17 (MuPoTS)")
            joints = np.repeat(cam_mm[root][None] / 1000.0, k_out, axis=0)  # absent joints sit at the root
            joints[:k] = cam_mm / 1000.0
            joints_2d = np.repeat(uv[root][None], k_out, axis=0)
            joints_2d[:k] = uv
            vis = np.zeros(k_out, bool)
            inside = (uv[:, 0] >= -0.5) & (uv[:, 0] <= w - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= h - 0.5)
            vis[:k] = vis_src & inside & (cam_mm[:, 2] > 0)
            if not vis.any() or joints[root, 2] <= 0:
                continue
            persons.append(PersonAnnotation(visible=vis, joints_3d=joints, joints_2d=joints_2d))
        if not keep_all_images and (not persons or sum(int(p.visible.sum()) for p in persons) < 6):
            dropped += 1
            continue
        images.append(ImageAnnotation(id=str(img["id"]), file=os.path.relpath(image_root / file_name, out.parent),
                                      width=w, height=h, camera=camera, persons=persons))
    log.info("%s: kept %d images, dropped %d", src, len(images), dropped)
    ann_set = AnnotationSet(skeleton="muco21", images=images,
                            info={"source": src.name, "units": "metres (converted from mm)"})
    write_annotations(out, ann_set)
    ann_set.root = out.parent
    return ann_set
