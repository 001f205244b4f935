"""Does a checkpoint's depth follow a person's size and the intrinsics, or where the person is in the frame?

Example:
  python training/depth_invariance.py --checkpoint das_core/assets/das_demo --json docs/results/depth_invariance.json

The same frame is shown again (a) at half resolution with halved intrinsics, (b) as a 70 % centre crop with
the principal point shifted to match, and (c) as a 70 % crop that puts the person near a corner. A model
that predicts depth as (Z/f)·f from the person's appearance gives the same root depth each time; one that
learnt where people stand in its training scenes does not. For every person of the real 3D frames
(``../shared/realdata``: Human3.6M, MPI-INF-3DHP) and of rendered synthetic test scenes, the prediction
nearest the true root (2D) is compared with the whole frame's; the figure is |Z_variant / Z_whole − 1|.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from das_core.camera import Intrinsics  # noqa: E402
from das_core.data.synthetic import make_scene  # noqa: E402
from das_core.evaluation.realdata import load_realdata  # noqa: E402
from das_core.evaluation.run import load_image  # noqa: E402
from das_core.skeletons import get_skeleton  # noqa: E402

CROP = 0.7


def _variants(image: np.ndarray, k: Intrinsics, root_uv: np.ndarray) -> dict[str, tuple[np.ndarray, Intrinsics, np.ndarray]]:
    """name → (image, intrinsics, root pixel in that image)."""
    h, w = image.shape[:2]
    out = {"whole": (image, k, root_uv)}
    half = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    sx, sy = (w // 2) / w, (h // 2) / h
    out["half_resolution"] = (half, k.scaled(sx, sy), (root_uv + 0.5) * [sx, sy] - 0.5)
    cw, ch = int(w * CROP), int(h * CROP)
    # centre crop; then a crop whose corner region holds the person (as far off-centre as the frame allows)
    x0c, y0c = (w - cw) // 2, (h - ch) // 2
    x0o = int(np.clip(root_uv[0] - 0.2 * cw if root_uv[0] < w / 2 else root_uv[0] - 0.8 * cw, 0, w - cw))
    y0o = int(np.clip(root_uv[1] - 0.25 * ch if root_uv[1] < h / 2 else root_uv[1] - 0.75 * ch, 0, h - ch))
    for name, (x0, y0) in (("centre_crop_70", (x0c, y0c)), ("corner_crop_70", (x0o, y0o))):
        crop = np.ascontiguousarray(image[y0:y0 + ch, x0:x0 + cw])
        kc = Intrinsics(fx=k.fx, fy=k.fy, cx=k.cx - x0, cy=k.cy - y0, skew=k.skew)
        out[name] = (crop, kc, root_uv - [x0, y0])
    return out


def _root_depth(estimator, image: np.ndarray, k: Intrinsics, root_uv: np.ndarray, root: int) -> float | None:
    h, w = image.shape[:2]
    if not (0 <= root_uv[0] < w and 0 <= root_uv[1] < h):
        return None
    persons = estimator(image, k)
    if len(persons) == 0:
        return None
    d = np.linalg.norm(persons.joints_2d[:, root] - root_uv, axis=1)
    i = int(np.argmin(d))
    scale = max(h, w) * 0.08  # the prediction must sit on this person, not on a neighbour
    return float(persons.joints_3d[i, root, 2]) if d[i] < scale else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(Path(__file__).resolve().parents[1] / "das_core/assets/das_demo"))
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/realdata"))
    parser.add_argument("--synthetic", type=int, default=30, help="rendered test scenes (basic recipe, seed 0)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    from das_core.engine.estimator import Estimator

    estimator = Estimator.from_checkpoint(args.checkpoint, device=args.device)
    skeleton = get_skeleton(estimator.cfg.skeleton)
    root = skeleton.root
    cases = []  # (source, image, K, root pixel)
    if Path(args.data).is_dir():
        for img in load_realdata(args.data, skeleton):
            for p in img.persons:
                if p.root_3d is not None:
                    cases.append((f"real/{img.dataset}", load_image(img.path), img.camera(), img.camera().project(p.root_3d[None])[0]))
    for i in range(args.synthetic):
        scene = make_scene(0, "test", i)
        for j in range(len(scene.joints_3d)):
            uv = scene.camera.project(scene.joints_3d[j, root][None])[0]
            cases.append(("synthetic", scene.image, scene.camera, uv))
    rows = []
    for source, image, k, uv in cases:
        depths = {name: _root_depth(estimator, im, kk, ruv, root) for name, (im, kk, ruv) in _variants(image, k, uv).items()}
        if depths["whole"] is None:
            continue
        rows.append({"source": source, **{n: (None if z is None else abs(z / depths["whole"] - 1.0) * 100)
                                          for n, z in depths.items() if n != "whole"}, "whole_m": depths["whole"]})
    summary = {}
    for group in ("real", "synthetic"):
        sel = [r for r in rows if r["source"].startswith(group)]
        for name in ("half_resolution", "centre_crop_70", "corner_crop_70"):
            vals = [r[name] for r in sel if r[name] is not None]
            summary[f"{group}/{name}"] = {"people": len(vals), "median_pct": float(np.median(vals)) if vals else None,
                                          "p90_pct": float(np.percentile(vals, 90)) if vals else None,
                                          "max_pct": float(np.max(vals)) if vals else None}
    for key, s in summary.items():
        med = "–" if s["median_pct"] is None else f"{s['median_pct']:.1f} %"
        p90 = "–" if s["p90_pct"] is None else f"{s['p90_pct']:.1f} %"
        print(f"{key:32s} people {s['people']:3d}  |ΔZ| median {med:>8s}  p90 {p90:>8s}")
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "summary": summary, "rows": rows},
                                              indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
