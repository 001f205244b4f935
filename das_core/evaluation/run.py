"""Evaluate a checkpoint on an annotation file (docs/DATA_FORMAT.md) and print / write the metrics.

Examples:
  das evaluate --checkpoint runs/synthetic_r18/final --data data/synth/test.json --protocol synthetic
  das evaluate --checkpoint panoptic --data panoptic_haggling.json --protocol panoptic --json out.json
  das evaluate --checkpoint mupots --data mupots.json --protocol mupots --mode matched

Protocols (DAS_SPEC §9; numbers in das_core.evaluation.metrics):
  synthetic  one-to-one 2D-matched root-aligned / absolute MPJPE (mm), PCK_abs@150 mm, root-depth error,
             detection precision / recall.
  panoptic   root-aligned MPJPE (mm) as in the DAS Panoptic evaluator (§9.1).
  mupots     PCK_rel / PCK_abs / AUC at 150 mm under both matching rules: "toolkit/…" (official toolkit,
             2D proximity) and "das/…" (DAS evaluator, 3D depth-ratio + bone-length matching, 250 mm gate).
             MuPoTS sequences are the first folder of each image's file path (TS1/…, TS2/…).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from das_core.config import ModelConfig
from das_core.data.annotations import AnnotationSet, ImageAnnotation, read_annotations
from das_core.evaluation.metrics import FrameResult, mupots_pck, panoptic_mpjpe, synthetic_metrics
from das_core.persons import Persons
from das_core.skeletons import get_skeleton

__all__ = ["PROTOCOLS", "add_arguments", "compute_metrics", "evaluate_estimator", "evaluate_model", "frame_result", "run",
           "run_estimator"]

logger = logging.getLogger(__name__)

PROTOCOLS = ("synthetic", "panoptic", "mupots")
_MUPOTS_JOINTS = 17  # the MuPoTS model has 21 outputs; only the first 17 are evaluated (DAS_SPEC §1.3)


def load_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; a missing or unreadable file is an error naming it."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: image missing or not readable by OpenCV")
    return np.ascontiguousarray(image[..., ::-1])


def frame_result(image: ImageAnnotation, persons: Persons, sequence: str = "") -> FrameResult:
    """Ground truth (3D people only) and predictions of one image as a :class:`FrameResult`."""
    people = [p for p in image.persons if p.joints_3d is not None]
    k = persons.num_joints
    if people:
        gt_3d = np.stack([p.joints_3d for p in people if p.joints_3d is not None])
        # stored 2D joints win (e.g. Panoptic's lens-distorted projections), else the pinhole projection
        gt_2d = np.stack([p.joints_2d if p.joints_2d is not None else image.camera.project(gt_3d[i])
                          for i, p in enumerate(people)])
        vis = np.stack([p.visible for p in people])
    else:
        gt_3d, gt_2d, vis = np.zeros((0, k, 3)), np.zeros((0, k, 2)), np.zeros((0, k), bool)
    return FrameResult(gt_3d=gt_3d, gt_visible=vis, pred_3d=persons.joints_3d, gt_2d=gt_2d,
                       pred_2d=persons.joints_2d, pred_scores=persons.scores, sequence=sequence)


def compute_metrics(frames: list[FrameResult], protocol: str, skeleton: str, mode: str = "all") -> dict[str, float]:
    """Metrics of one protocol over a list of frames (see the module docstring for the keys)."""
    root = get_skeleton(skeleton).root
    if protocol == "synthetic":
        return synthetic_metrics(frames, root=root)
    if protocol == "panoptic":
        return panoptic_mpjpe(frames, root=root)
    if protocol == "mupots":
        cut = [FrameResult(f.gt_3d[:, :_MUPOTS_JOINTS], f.gt_visible[:, :_MUPOTS_JOINTS], f.pred_3d[:, :_MUPOTS_JOINTS],
                           None if f.gt_2d is None else f.gt_2d[:, :_MUPOTS_JOINTS],
                           None if f.pred_2d is None else f.pred_2d[:, :_MUPOTS_JOINTS], f.pred_scores, f.sequence)
               for f in frames]
        out: dict[str, float] = {}
        for matching in ("toolkit", "das"):
            out.update({f"{matching}/{k}": v for k, v in mupots_pck(cut, matching=matching, mode=mode).items()})
        return out
    raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")


def run_estimator(estimator: Any, annotations: AnnotationSet,
                  max_images: int | None = None) -> list[tuple[ImageAnnotation, Persons, str]]:
    """``estimator(image, intrinsics) -> Persons`` on every image: (annotation, prediction, sequence) each.

    The sequence is the first folder of the image's path ("" for a flat split), as the MuPoTS protocol groups.
    """
    images = annotations.images[: max_images] if max_images else annotations.images
    out = []
    for image in images:
        persons = estimator(load_image(annotations.image_path(image)), image.camera)
        parts = PurePosixPath(image.file).parts
        out.append((image, persons, parts[0] if len(parts) > 1 else ""))
    return out


def evaluate_estimator(estimator: Any, annotations: AnnotationSet, protocol: str, mode: str = "all",
                       max_images: int | None = None) -> dict[str, float]:
    """Run ``estimator(image, intrinsics) -> Persons`` over every image and compute the metrics."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {list(PROTOCOLS)}, got {protocol!r}")
    runs = run_estimator(estimator, annotations, max_images)
    frames = [frame_result(image, persons, sequence) for image, persons, sequence in runs]
    metrics = compute_metrics(frames, protocol, annotations.skeleton, mode)
    metrics["num_images"] = float(len(frames))
    return metrics


def evaluate_model(model: nn.Module, cfg: ModelConfig, data: str | Path, protocol: str = "synthetic",
                   device: torch.device | str = "cpu", mode: str = "all", max_images: int | None = None) -> dict[str, float]:
    """Evaluate an in-memory model (e.g. during training) on one annotation file."""
    from das_core.engine.estimator import Estimator

    annotations = read_annotations(data)
    _check_skeleton(annotations, cfg, data)
    estimator = Estimator.from_model(model, cfg, device=device)
    return evaluate_estimator(estimator, annotations, protocol, mode, max_images)


def _check_skeleton(annotations: AnnotationSet, cfg: ModelConfig, data: str | Path) -> None:
    if annotations.skeleton != cfg.skeleton:
        raise ValueError(f"{data}: annotations use skeleton {annotations.skeleton!r}, the model {cfg.skeleton!r}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="NAME (or NAME.safetensors / NAME.yaml)")
    parser.add_argument("--data", required=True, help="annotation JSON (docs/DATA_FORMAT.md)")
    parser.add_argument("--protocol", default="synthetic", choices=PROTOCOLS)
    parser.add_argument("--mode", default="all", choices=["all", "matched"],
                        help="MuPoTS: count undetected people as wrong (all) or skip them (matched)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 …")
    parser.add_argument("--precision", default="fp32", help="fp32, bf16 or fp16 (eager backend)")
    parser.add_argument("--max-images", type=int, default=None, help="evaluate only the first N images")
    parser.add_argument("--flip-test", action="store_true",
                        help="average each image's predictions with its mirror image's (Estimator flip_test)")
    parser.add_argument("--json", default=None, metavar="OUT", help="also write the metrics to this JSON file")


def run(args: argparse.Namespace) -> int:
    from das_core.engine.estimator import Estimator

    annotations = read_annotations(args.data)
    estimator = Estimator.from_checkpoint(args.checkpoint, device=args.device, precision=args.precision,
                                          flip_test=args.flip_test)
    _check_skeleton(annotations, estimator.cfg, args.data)
    metrics = evaluate_estimator(estimator, annotations, args.protocol, args.mode, args.max_images)
    width = max(len(k) for k in metrics)
    for k, v in metrics.items():
        print(f"{k:<{width}}  {v:.4f}" if not float(v).is_integer() else f"{k:<{width}}  {int(v)}")
    if args.json:
        doc = {"checkpoint": str(args.checkpoint), "data": str(args.data), "protocol": args.protocol,
               "mode": args.mode, "flip_test": args.flip_test, "metrics": metrics}
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    return 0
