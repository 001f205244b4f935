"""COCO person keypoints (2D only) → das annotations (DAS_SPEC §1.4, §2.3).

Input: ``person_keypoints_<split>2017.json``. Each person's 17 keypoints are mapped into the target
skeleton with its ``coco_map`` (unmapped joints: visible 0, placed at the centre); the person centre is
the midpoint of the two hips. Filtering (§2.3): crowd annotations ignored; the bbox clipped to the image
must have w, h ≥ 2 and area ≥ 64; persons without both hips labelled are dropped; an image is dropped if
no person remains or fewer than 6 mapped joints are visible in total.

COCO has no calibration: each image gets a *nominal* camera (f = max(W, H), centred principal point),
marked in ``info``; it is never used for 2D-only people.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from das_core.camera import Intrinsics
from das_core.data.annotations import AnnotationSet, ImageAnnotation, PersonAnnotation, write_annotations
from das_core.data.converters.coco_json import read_coco_style_json
from das_core.skeletons import get_skeleton

__all__ = ["CocoFormatError", "convert_coco"]

log = logging.getLogger(__name__)

_L_HIP, _R_HIP = 11, 12


class CocoFormatError(ValueError):
    """The COCO JSON is not in the expected format; the message names the entry."""


def convert_coco(annotation_json: str | os.PathLike[str], image_root: str | os.PathLike[str],
                 out: str | os.PathLike[str], skeleton: str = "panoptic15") -> AnnotationSet:
    """Convert COCO person keypoints into ``skeleton`` joints and write ``out``; return the set."""
    src = Path(annotation_json)
    sk = get_skeleton(skeleton)
    if not sk.coco_map:
        raise ValueError(f"skeleton {skeleton!r} has no COCO mapping")
    doc = read_coco_style_json(src, CocoFormatError, "COCO", "a COCO object")
    tgt_idx = np.array([t for t, _ in sk.coco_map])
    src_idx = np.array([s for _, s in sk.coco_map])
    out = Path(out)
    image_root = Path(image_root)
    by_image: dict[int, list[dict]] = {}
    for a in doc["annotations"]:
        by_image.setdefault(a.get("image_id"), []).append(a)
    images = []
    for img in doc["images"]:
        try:
            w, h, file_name = int(img["width"]), int(img["height"]), img["file_name"]
        except (KeyError, TypeError, ValueError) as exc:
            raise CocoFormatError(f"{src}: image {img.get('id')!r} needs width, height, file_name ({exc})") from None
        persons = []
        for a in by_image.get(img["id"], []):
            if a.get("iscrowd", 0):
                continue
            try:
                kp = np.asarray(a["keypoints"], np.float64).reshape(17, 3)
                x, y, bw, bh = (float(v) for v in a["bbox"])
            except (KeyError, TypeError, ValueError) as exc:
                raise CocoFormatError(f"{src}: annotation {a.get('id')!r} needs 51 keypoints and a bbox ({exc})") from None
            x0, y0 = max(0.0, x), max(0.0, y)
            x1, y1 = min(float(w), x + bw), min(float(h), y + bh)
            cw, ch = x1 - x0, y1 - y0
            if cw < 2 or ch < 2 or cw * ch < 64:
                continue
            labelled = kp[:, 2] > 0
            if not (labelled[_L_HIP] and labelled[_R_HIP]):
                continue
            center = 0.5 * (kp[_L_HIP, :2] + kp[_R_HIP, :2])
            joints = np.repeat(center[None], sk.num_joints, axis=0)
            joints[tgt_idx] = kp[src_idx, :2]
            vis = np.zeros(sk.num_joints, bool)
            vis[tgt_idx] = labelled[src_idx]
            persons.append(PersonAnnotation(visible=vis, joints_2d=joints, center=center))
        if not persons or sum(int(p.visible.sum()) for p in persons) < 6:
            continue
        f = float(max(w, h))
        images.append(ImageAnnotation(
            id=str(img["id"]), file=os.path.relpath(image_root / file_name, out.parent), width=w, height=h,
            camera=Intrinsics(fx=f, fy=f, cx=(w - 1) / 2.0, cy=(h - 1) / 2.0), persons=persons))
    log.info("%s: kept %d of %d images", src, len(images), len(doc["images"]))
    ann = AnnotationSet(skeleton=sk.name, images=images,
                        info={"source": src.name, "intrinsics": "nominal (COCO has no calibration)"})
    write_annotations(out, ann)
    ann.root = out.parent
    return ann
