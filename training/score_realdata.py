#!/usr/bin/env python3
"""Score a checkpoint on the real-image development set (``../shared/realdata``): evaluation only.

Runs the checkpoint on every annotated image with one global setting (the checkpoint's own
``decode.score_thr``; no per-image tuning), then writes a JSON of every figure (per dataset, overall, per
image and per 3D frame; the rules are repeated in its ``rules`` block, see ``das_core.evaluation.realdata``)
and an overlay sheet of all images (white crosses: ground-truth joints; skeletons: predictions, joints with
confidence ≥ 0.3 solid, the others faint), and prints a summary table.

2D-only images have no calibration: they are run with a 60° horizontal field of view, which scales
predicted depth but not the 2D figures. The Human3.6M and MPI-INF-3DHP frames use their calibrated
intrinsics (``cameras.json``).

examples:
  python training/score_realdata.py
  python training/score_realdata.py --checkpoint runs/real_r34/final --out runs/real_r34/realdata
  python training/score_realdata.py --json docs/results/realdata_shipped.json --sheet docs/images/realdata_shipped.jpg
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a source checkout without installing

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from das_core.checkpoint import checkpoint_paths  # noqa: E402
from das_core.evaluation.realdata import (  # noqa: E402
    CONFIDENCE_THRESHOLD,
    RealDataError,
    format_table,
    headline,
    load_realdata,
    overlay_sheet,
    score_predictions,
)
from das_core.file_digest import file_sha256  # noqa: E402
from das_core.skeletons import get_skeleton  # noqa: E402

log = logging.getLogger("score_realdata")
SHIPPED = REPO / "das_core" / "assets" / "das_demo"


def load_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise RealDataError(f"{path}: image missing or not readable")
    return np.ascontiguousarray(image[..., ::-1])


def _display(path: Path) -> str:
    """``path`` relative to the repository when inside it (so that recorded JSONs do not name a checkout)."""
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(SHIPPED), metavar="NAME",
                        help="NAME(.safetensors) with NAME.yaml beside it (default: the shipped das_demo)")
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "realdata"),
                        help="the development set folder (default: ../shared/realdata next to the repository)")
    parser.add_argument("--out", default="realdata_out", help="output folder (default: %(default)s)")
    parser.add_argument("--json", default=None, metavar="FILE", help="figures (default: OUT/realdata.json)")
    parser.add_argument("--sheet", default=None, metavar="FILE", help="overlay sheet, .jpg (default: OUT/realdata_sheet.jpg)")
    parser.add_argument("--datasets", nargs="+", default=None, metavar="NAME", help="only these datasets")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, auto (default: %(default)s)")
    parser.add_argument("--no-sheet", action="store_true", help="skip the overlay sheet")
    parser.add_argument("--input-scale", type=float, default=1.0,
                        help="network input size × this (Estimator input_scale; the same for every image)")
    parser.add_argument("--flip-test", action="store_true",
                        help="average each image's predictions with its mirror image's (Estimator flip_test)")
    parser.add_argument("--without-update", action="store_true",
                        help="diagnostic: decode the pre-update offsets U⁰ (the recursive update switched off), to see "
                             "whether the update helps or hurts on real images (eager backend)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from das_core.engine.estimator import Estimator

    weights, yaml_file = checkpoint_paths(Path(args.checkpoint))
    missing = [str(p) for p in (weights, yaml_file) if not p.is_file()]
    if missing:
        log.error("checkpoint file(s) not found: %s (--checkpoint NAME expects NAME.safetensors and NAME.yaml "
                  "side by side)", ", ".join(missing))
        return 2
    try:
        estimator = Estimator.from_checkpoint(weights.with_suffix(""), device=args.device, input_scale=args.input_scale,
                                              flip_test=args.flip_test)
        if args.without_update:
            estimator.backend.model.update = None  # DAS then returns U⁰ (das_core/model/das.py)
        skeleton = get_skeleton(estimator.cfg.skeleton)
        images = load_realdata(args.data, skeleton, args.datasets)
    except (RealDataError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out / "realdata.json"
    sheet_path = Path(args.sheet) if args.sheet else out / "realdata_sheet.jpg"

    t0 = time.perf_counter()
    predictions, frames, infer_s, infer_cpu_s = [], [], 0.0, 0.0
    for img in images:
        rgb = load_rgb(img.path)
        t, c = time.perf_counter(), time.process_time()
        predictions.append(estimator(rgb, img.camera()))
        infer_s += time.perf_counter() - t
        infer_cpu_s += time.process_time() - c  # all threads; depends less on other jobs than wall time
        frames.append(rgb)
    result: dict[str, Any] = {
        "checkpoint": _display(weights),
        "checkpoint_sha256": file_sha256(weights),
        "data": str(Path(args.data).resolve()),
        "score_thr": float(estimator.cfg.decode.score_thr),
        "input_scale": args.input_scale,
        "flip_test": args.flip_test,
        "without_update": args.without_update,
        "skeleton": skeleton.name,
        "device": str(estimator.device),
        "torch": torch.__version__,
        "inference_seconds": round(infer_s, 2),
        "inference_cpu_seconds": round(infer_cpu_s, 2),
        "torch_threads": torch.get_num_threads(),
    }
    scores = score_predictions(images, predictions, skeleton)
    result.update({"headline": headline(scores), **scores})
    result["total_seconds"] = round(time.perf_counter() - t0, 2)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", json_path)

    if not args.no_sheet:
        by_path = {img.path: rgb for img, rgb in zip(images, frames, strict=True)}
        found = {r["image"]: f"{r['oks']['true_positives']}/{r['gt_persons']} "
                             f"(box {r['root_in_box']['true_positives']})" for r in result["images"]}
        captions = [f"{img.name.split('/')[0]} {found[img.name]}" for img in images]
        sheet = overlay_sheet(images, predictions, skeleton, by_path.__getitem__, captions=captions,
                              min_confidence=CONFIDENCE_THRESHOLD)
        sheet_path.parent.mkdir(parents=True, exist_ok=True)
        ok, buf = cv2.imencode(".jpg", sheet[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
        if not ok:
            log.error("JPEG encoding of the sheet failed")
            return 1
        sheet_path.write_bytes(buf.tobytes())
        log.info("wrote %s (%d kB)", sheet_path, len(buf) // 1024)
    print(format_table(result))
    print("\nheadline: " + json.dumps(result["headline"]))
    print(f"\n{len(images)} images, inference {infer_s:.1f} s ({infer_cpu_s:.1f} s CPU time), "
          f"total {result['total_seconds']:.1f} s on {estimator.device}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
