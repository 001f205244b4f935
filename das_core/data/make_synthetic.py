"""Render a synthetic multi-person 3D dataset (JPEG images + one das annotation JSON).

Examples:
  das make-synthetic --out data/synth --split train --num 4000 --seed 0 --workers 16
  das make-synthetic --out data/synth --split val --num 200 --seed 0 --min-size 640 --max-size 640

Writes ``OUT/SPLIT/NNNNNN.jpg`` and ``OUT/SPLIT.json`` (docs/DATA_FORMAT.md). Image ``i`` of a split is a
pure function of (seed, split, i, size options), so splits never share a random stream and re-running
with more ``--num`` extends a dataset without changing the existing images.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing as mp
import os
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

import cv2
import yaml

from das_core.data.annotations import AnnotationSet, ImageAnnotation, PersonAnnotation, write_annotations
from das_core.data.backgrounds import PhotoLibrary
from das_core.data.synthetic import SPLIT_CODES, SceneConfig, make_scene

__all__ = ["add_arguments", "generate", "run", "scene_config"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (images in OUT/SPLIT/, annotations OUT/SPLIT.json)")
    parser.add_argument("--split", default="train", choices=["train", "val", "test"])
    parser.add_argument("--num", type=int, default=100, help="number of images")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (per-image seed = f(seed, split, index))")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)), help="processes")
    parser.add_argument("--min-size", type=int, default=512, help="smallest long image side (px)")
    parser.add_argument("--max-size", type=int, default=704, help="largest long image side (px)")
    parser.add_argument("--max-people", type=int, default=8, help="at most this many people per image")
    parser.add_argument("--quality", type=int, default=92, help="JPEG quality")
    parser.add_argument("--occluded-invisible", action="store_true",
                        help="mark joints hidden behind another person invisible (default: inside image = visible)")
    parser.add_argument("--preset", choices=["basic", "realistic"], default="basic",
                        help="scene recipe: basic (capsule people on procedural rooms) or realistic (wider cameras "
                             "and people, eye-level close-ups and crowds, clothing and faces, furniture, photo "
                             "backgrounds, camera effects with night frames; docs/RESULTS.md)")
    parser.add_argument("--backgrounds", default=None,
                        help="folder of photos WITHOUT people for --preset realistic (backgrounds and textures)")
    parser.add_argument("--disable", default="",
                        help="comma-separated realism features to leave out (ablations): "
                             "camera, people, clothing, scene, photos, effects")
    parser.add_argument("--scene", action="append", default=[], metavar="FIELD=VALUE",
                        help="override one SceneConfig field of the recipe, VALUE in YAML (ablations, e.g. "
                             "--scene crowd_prob=0 --scene high_fixture_share=0); repeatable")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")


def _render_one(job: tuple[int, str, int, SceneConfig, str, int]) -> dict:
    seed, split, index, cfg, image_dir, quality = job
    scene = make_scene(seed, split, index, cfg)
    name = f"{index:06d}.jpg"
    ok, buf = cv2.imencode(".jpg", scene.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for image {index}")
    tmp = Path(image_dir) / f".{name}.tmp"
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, Path(image_dir) / name)
    h, w = scene.image.shape[:2]
    return {
        "index": index, "name": name, "width": w, "height": h, "camera": scene.camera,
        "joints_3d": scene.joints_3d, "visible": scene.visible, "track_ids": scene.track_ids,
    }


def generate(out: str | Path, split: str, num: int, seed: int, cfg: SceneConfig, workers: int = 1,
             quality: int = 92, progress: bool = True) -> Path:
    """Render ``num`` images of ``split`` into ``out``; return the annotation file path."""
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}")
    if num < 0:
        raise ValueError(f"--num must be >= 0, got {num}")
    out = Path(out)
    image_dir = out / split
    image_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(seed, split, i, cfg, str(image_dir), quality) for i in range(num)]
    results: list[dict] = []
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a hard dependency, keep the command usable anyway
        progress = False
    bar = tqdm(total=num, desc=f"render {split}", unit="img", disable=not progress)
    if workers <= 1 or num < 4:
        for job in jobs:
            results.append(_render_one(job))
            bar.update(1)
    else:
        # OpenCV's own threads would fight the process pool for the cores
        # Not "fork": a fork after OpenCV / torch started their thread pools can copy a held lock and deadlock
        # the workers (seen in the test suite); forkserver children start from a clean process.
        ctx = mp.get_context("spawn" if os.name == "nt" else "forkserver")
        with ctx.Pool(workers, initializer=cv2.setNumThreads, initargs=(1,)) as pool:
            for res in pool.imap_unordered(_render_one, jobs, chunksize=max(1, min(16, num // (workers * 4)))):
                results.append(res)
                bar.update(1)
    bar.close()
    results.sort(key=lambda r: r["index"])
    images = []
    for r in results:
        persons = [
            PersonAnnotation(visible=r["visible"][p], joints_3d=r["joints_3d"][p], track_id=int(r["track_ids"][p]))
            for p in range(len(r["joints_3d"]))
        ]
        images.append(ImageAnnotation(id=f"{split}/{r['name']}", file=f"{split}/{r['name']}", width=r["width"],
                                      height=r["height"], camera=r["camera"], persons=persons))
    info = {"source": "das synthetic", "seed": seed, "split": split, "min_size": cfg.min_size,
            "max_size": cfg.max_size, "visibility": "occluded-invisible" if cfg.occluded_invisible else "inside-image",
            "scene_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()}}
    ann_path = out / f"{split}.json"
    write_annotations(ann_path, AnnotationSet(skeleton="panoptic15", images=images, info=info))
    log.info("wrote %d images and %s", len(images), ann_path)
    return ann_path


def scene_config(args: argparse.Namespace) -> SceneConfig:
    """The :class:`SceneConfig` the command-line options describe."""
    common = {"min_size": args.min_size, "max_size": args.max_size, "occluded_invisible": args.occluded_invisible}
    disable = tuple(f for f in args.disable.split(",") if f)
    if args.preset == "basic":
        if args.backgrounds or disable:
            raise ValueError("--backgrounds and --disable need --preset realistic")
        return _overridden(SceneConfig(people_range=(1, args.max_people), **common), getattr(args, "scene", []))
    if args.backgrounds and "photos" not in disable:
        PhotoLibrary(args.backgrounds)  # a missing or empty folder is named now, not in a render worker
    cfg = SceneConfig.realistic(args.backgrounds, disable=disable, **common)
    if args.max_people != 8:  # an explicit --max-people wins over the preset's crowd size
        cfg = replace(cfg, people_range=(1, args.max_people))
    return _overridden(cfg, getattr(args, "scene", []))


def _overridden(cfg: SceneConfig, items: list[str]) -> SceneConfig:
    """``cfg`` with each ``FIELD=VALUE`` of ``--scene`` applied (an unknown field or a bad value is an error)."""
    names = {f.name for f in fields(SceneConfig)}
    changes: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or key not in names:
            raise ValueError(f"--scene {item!r}: expected FIELD=VALUE with FIELD one of {sorted(names)}")
        value = yaml.safe_load(text)
        current = getattr(cfg, key)
        if isinstance(current, tuple):
            value = tuple(value) if isinstance(value, list) else value
        if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if current is not None and not isinstance(value, type(current)):
            raise ValueError(f"--scene {item!r}: {key} is a {type(current).__name__}, got {value!r}")
        changes[key] = value
    return replace(cfg, **changes) if changes else cfg


def run(args: argparse.Namespace) -> int:
    cfg = scene_config(args)
    path = generate(args.out, args.split, args.num, args.seed, cfg, workers=args.workers, quality=args.quality,
                    progress=not args.no_progress)
    print(path)
    return 0
