"""Run DAS on images, folders of images or videos: overlays, a JSON of every person, optionally an MCAP bag.

Every frame goes through the node's own ``das_ros.pipeline.FramePipeline`` (engine → filtering → tracker →
messages → markers), so what ``das infer`` finds is what the ROS 2 node would publish for the same image
and intrinsics. Images are independent (no tracking: ids are the index in the image); the frames of a
video are tracked (stable ids across frames).

Absolute depth needs the intrinsics of the image you feed: give ``--camera FILE`` (a ROS camera_info
YAML from camera_calibration, or YAML/JSON with fx/fy/cx/cy or K; scaled when the calibration is for
another image size). ``--hfov DEG`` (horizontal field of view) works without a calibration, but every
distance then scales with that guess: a focal length 10 % too long gives depths 10 % too far.

JSON (``--json``, default OUT/persons.json): ``{"checkpoint", "skeleton", "joint_names", "root_index",
"units", "frames": [{"file", "frame", "width", "height", "intrinsics": {fx, fy, cx, cy, skew, source},
"persons": [{"track_id", "score", "root", "joints_3d", "joints_2d", "confidence", "root_covariance",
"joints_covariance"}]}]}``; 3D joints in metres in the camera optical frame (x right, y down, z forward), 2D
joints in pixels of the input image, covariances row-major 3×3 in m² in the same frame (9 numbers per joint,
the messages' ``position_covariance``: the model's 1σ belief, ``[-1, 0, …]`` when there is no estimate),
``frame`` is the video frame index (null for images), ``track_id`` is null for images; a frame the
pipeline had to skip has no persons and an ``error``.

examples:
  das infer photo.jpg --camera camera_info.yaml
  das infer shots/ --hfov 70 --out shots_out
  das infer walk.mp4 --camera cam.json --mcap walk_poses.mcap --device cuda
  das infer a.png b.png --camera cam.yaml --checkpoint checkpoints/das_r50 --json people.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from das_core.atomic_file import atomic_write_bytes, atomic_write_text, publish_temp
from das_core.camera import CameraError, Intrinsics
from das_core.persons import Persons
from das_ros.interfaces import typestore
from das_ros.messages import covariance_field
from das_ros.recording import (
    APP_TOPICS,
    McapWriter,
    camera_info_message,
    header_message,
    image_message,
    record_frame,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "InferError",
    "InferSummary",
    "OutputError",
    "VideoSink",
    "add_arguments",
    "collect_inputs",
    "ensure_output_dir",
    "infer",
    "load_demo_estimator",
    "persons_to_json",
    "read_image",
    "run",
    "shipped_checkpoint",
    "write_png",
    "write_strip",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")


class InferError(ValueError):
    """An input cannot be used (unreadable image or video, empty folder, unknown file type)."""


class OutputError(RuntimeError):
    """An output cannot be written (folder not creatable or not writable, codec failure)."""


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------


def shipped_checkpoint() -> Path:
    """``das_core/assets/das_demo`` next to the installed package (NAME of NAME.safetensors + NAME.yaml)."""
    import das_core

    return Path(das_core.__file__).resolve().parent / "assets" / "das_demo"


def _check_checkpoint(path: str | Path | None) -> Path:
    """The checkpoint to load, with an error that says how to get one when its files are missing."""
    from das_core.checkpoint import checkpoint_paths

    shipped = path is None
    name = shipped_checkpoint() if shipped else Path(path)  # type: ignore[arg-type]
    st, ym = checkpoint_paths(name)
    missing = [p for p in (st, ym) if not p.is_file()]
    if not missing:
        return st.with_suffix("")
    if shipped:
        raise FileNotFoundError(
            f"the shipped demo checkpoint is missing ({', '.join(str(p) for p in missing)}). Make it: render "
            "synthetic data with `das make-synthetic --preset realistic` and train config/train/realistic_r34s.yaml "
            "with `das train` (scripts/gpu/train_realistic.sh runs both on a GPU), then copy the run's "
            f"final.safetensors and final.yaml to {st} and {ym}; or pass --checkpoint NAME for NAME.safetensors + "
            "NAME.yaml"
        )
    raise FileNotFoundError(
        f"checkpoint file(s) not found: {', '.join(str(p) for p in missing)} (--checkpoint NAME expects "
        "NAME.safetensors and NAME.yaml side by side)"
    )


def load_demo_estimator(path: str | Path | None, device: str = "auto", backend: str = "eager",
                        precision: str = "fp32", *, input_scale: float = 1.0, threads: int = 0,
                        int8_calibration: str = "") -> Any:
    """``Estimator.from_checkpoint`` for ``path`` (None = the shipped demo checkpoint), errors with a fix.

    ``input_scale``, ``threads``, ``int8_calibration``: as the node's parameters (``das_ros.pipeline.load_estimator``).

    Raises:
        FileNotFoundError: the checkpoint's files are missing (says how to make or choose one).
        CheckpointError: corrupt files or weights that do not fit the config (names the file or keys).
    """
    from das_core.checkpoint import CheckpointError
    from das_ros.pipeline import load_estimator

    name = _check_checkpoint(path)
    try:
        return load_estimator(str(name), device, backend, precision, input_scale=input_scale, threads=threads,
                              int8_calibration=int8_calibration)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} — pass a valid checkpoint with --checkpoint NAME") from None


# ----------------------------------------------------------------------------------------------
# Outputs: atomic files, videos, strips
# ----------------------------------------------------------------------------------------------


def ensure_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Create ``path`` if needed and prove it is writable; one clear ``OutputError`` otherwise."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".das_write_test.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(f"cannot write to output folder {out}: {reason}; choose another folder with "
                          f"{option}") from None
    return out


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """(H, W, 3) uint8 RGB → PNG, atomically."""
    ok, enc = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OutputError(f"OpenCV could not encode a {rgb.shape} image as PNG for {path}")
    return atomic_write_bytes(path, enc.tobytes())


def write_strip(path: str | Path, frames: Sequence[np.ndarray], max_frames: int = 6, height: int = 240) -> Path:
    """Up to ``max_frames`` evenly spaced (H, W, 3) RGB frames side by side, each scaled to ``height`` px."""
    if not frames:
        raise ValueError("write_strip: no frames")
    idx = np.unique(np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int))
    tiles = []
    for i in idx:
        f = frames[int(i)]
        h = min(height, f.shape[0])
        w = max(1, round(f.shape[1] * h / f.shape[0]))
        tiles.append(cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA))
    tiles = [cv2.resize(t, (round(t.shape[1] * tiles[0].shape[0] / t.shape[0]), tiles[0].shape[0]))
             if t.shape[0] != tiles[0].shape[0] else t for t in tiles]
    gap = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
    row = [tiles[0]]
    for t in tiles[1:]:
        row += [gap, t]
    return write_png(path, np.concatenate(row, axis=1))


def _thumbnail(rgb: np.ndarray, height: int = 240) -> np.ndarray:
    if rgb.shape[0] <= height:
        return rgb.copy()
    w = max(1, round(rgb.shape[1] * height / rgb.shape[0]))
    return cv2.resize(rgb, (w, height), interpolation=cv2.INTER_AREA)


class VideoSink:
    """Overlay frames → an mp4 (``cv2.VideoWriter``, fourcc mp4v) written to a temp file and renamed on close.

    If OpenCV has no encoder for it (``ok`` is False after the first frame or at close), ``close`` returns
    None and the caller falls back to a PNG strip. Frames are RGB uint8, all of one size.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        self.fps = fps if math.isfinite(fps) and fps > 0 else 15.0
        self.writer: Any = None
        self.ok = True
        self.frames = 0
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=self.path.suffix or ".mp4",
                                   dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)

    def write(self, rgb: np.ndarray) -> None:
        if not self.ok:
            return
        if self.writer is None:
            h, w = rgb.shape[:2]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter.fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                log.warning("OpenCV cannot encode mp4 (mp4v) here; writing a PNG strip instead of %s", self.path)
                self.ok = False
                return
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file; the final path, or None when no video could be written."""
        if self.writer is not None:
            self.writer.release()
        try:
            if self.ok and self.frames and self.tmp.stat().st_size > 0:
                publish_temp(self.tmp, self.path)
                return self.path
            return None
        finally:
            self.tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Input:
    path: Path
    kind: str  # "image" | "video"


def collect_inputs(paths: Sequence[str | Path]) -> list[_Input]:
    """Files and folders → the images and videos to process, in the given order (folders sorted by name).

    Raises:
        FileNotFoundError: a path does not exist.
        InferError: a folder has no images or videos.
    """
    items: list[_Input] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder (das infer takes images, folders or videos)")
        if p.is_dir():
            found = [_Input(f, "video" if f.suffix.lower() in VIDEO_EXTENSIONS else "image")
                     for f in sorted(p.iterdir())
                     if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS]
            if not found:
                raise InferError(f"{p}: folder has no images ({', '.join(IMAGE_EXTENSIONS)}) or videos "
                                 f"({', '.join(VIDEO_EXTENSIONS)})")
            items += found
        else:
            items.append(_Input(p, "video" if p.suffix.lower() in VIDEO_EXTENSIONS else "image"))
    return items


def read_image(path: str | Path) -> np.ndarray:
    """An image file → (H, W, 3) uint8 RGB (grey and alpha images converted; 16-bit scaled to 8-bit)."""
    p = Path(path)
    try:
        buf = np.fromfile(p, np.uint8)  # cv2.imread cannot report why it failed; read the bytes ourselves
    except OSError as exc:
        raise InferError(f"{p}: cannot read the file: {exc.strerror or exc}") from None
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None:
        raise InferError(f"{p}: not a readable image (OpenCV cannot decode it; remove it from the inputs); "
                         f"supported images: "
                         f"{', '.join(IMAGE_EXTENSIONS)}; videos: {', '.join(VIDEO_EXTENSIONS)}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _video_frames(path: Path, limit: int | None) -> tuple[float, int, Iterator[np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InferError(f"{path}: OpenCV cannot open this video (unsupported codec or not a video)")
    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if limit is not None:
        count = min(count, limit) if count > 0 else limit

    def frames() -> Iterator[np.ndarray]:
        n = 0
        try:
            while limit is None or n < limit:
                ok, bgr = cap.read()
                if not ok:
                    break
                n += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()
        if n == 0:
            raise InferError(f"{path}: the video has no readable frames")

    return (fps if math.isfinite(fps) and fps > 0 else 30.0), count, frames()


# ----------------------------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------------------------


def _r(x: np.ndarray | list[float], nd: int = 4) -> Any:
    return np.round(np.asarray(x, np.float64), nd).tolist()


def persons_to_json(persons: Persons, root: int, tracked: bool) -> list[dict[str, Any]]:
    """Persons → JSON-ready dicts (metres, pixels, confidences rounded to 0.1 mm / 0.01 px / 1e-4; m² to 1e-10)."""
    return [
        {
            "track_id": int(persons.track_ids[i]) if tracked else None,
            "score": round(float(persons.scores[i]), 4),
            "root": _r(persons.joints_3d[i, root]),
            "joints_3d": _r(persons.joints_3d[i]),
            "joints_2d": _r(persons.joints_2d[i], 2),
            "confidence": _r(persons.joint_confidence[i]),
            "root_covariance": _r(covariance_field(_cov(persons, i, root)), 10),
            "joints_covariance": [_r(covariance_field(_cov(persons, i, j)), 10) for j in range(persons.num_joints)],
        }
        for i in range(len(persons))
    ]


def _cov(persons: Persons, i: int, j: int) -> np.ndarray | None:
    return None if persons.joint_covariance is None else persons.joint_covariance[i, j]


def _intrinsics_json(k: Intrinsics, source: str) -> dict[str, Any]:
    return {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy, "skew": k.skew, "source": source}


# ----------------------------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------------------------


@dataclass
class InferSummary:
    frames: int = 0
    persons: int = 0
    bad_frames: dict[str, int] = field(default_factory=dict)
    outputs: list[Path] = field(default_factory=list)
    json_path: Path | None = None
    mcap_path: Path | None = None


def _unique_stem(path: Path, used: set[str]) -> str:
    stem, n = path.stem, 1
    while stem in used:
        n += 1
        stem = f"{path.stem}_{n}"
    used.add(stem)
    return stem


class _Inferrer:
    """State shared by every input of one ``infer`` call: the outputs, the bag clock, the JSON records."""

    def __init__(self, estimator: Any, out: Path, settings: Any, *, camera: Intrinsics | None,
                 camera_size: tuple[int, int] | None, source: str, hfov_deg: float | None, bag: McapWriter | None,
                 make: Any, overlays: bool, tracking: bool, max_frames: int | None, frame_id: str, bar: Any) -> None:
        from das_ros.pipeline import skeleton_of

        self.estimator, self.out, self.settings = estimator, out, settings
        self.camera, self.camera_size, self.source, self.hfov_deg = camera, camera_size, source, hfov_deg
        self.bag, self.make, self.overlays, self.tracking = bag, make, overlays, tracking
        self.max_frames, self.frame_id, self.bar = max_frames, frame_id, bar
        self.skeleton = skeleton_of(estimator)
        self.summary = InferSummary()
        self.records: list[dict[str, Any]] = []
        self.used: set[str] = set()
        self.cameras: dict[tuple[int, int], Intrinsics] = {}
        self.t_bag = 0.0  # bag time (s): images 0.1 s apart, video frames at their rate, one after another

    def intrinsics(self, w: int, h: int) -> Intrinsics:
        if (w, h) not in self.cameras:  # once per size: scaling a calibration logs a warning
            from das_core.camera_file import intrinsics_for_image

            self.cameras[(w, h)] = intrinsics_for_image(w, h, self.camera, self.camera_size, self.hfov_deg)
        return self.cameras[(w, h)]

    def run_input(self, item: _Input) -> None:
        """One image or video through a fresh ``FramePipeline`` (tracking across a video's frames only)."""
        from dataclasses import replace

        from das_ros.pipeline import BAD_FRAME_REASONS, FramePipeline

        video = item.kind == "video"
        if video:
            fps, count, frames = _video_frames(item.path, self.max_frames)
            self.bar.total += count
        else:
            fps, frames = 10.0, iter([read_image(item.path)])
            self.bar.total += 1
        self.bar.refresh()
        s = self.settings if (video and self.tracking) else replace(self.settings, tracking=False)
        pipeline = FramePipeline(self.estimator, self.skeleton, self.make, s)
        stem = _unique_stem(item.path, self.used)
        sink = VideoSink(self.out / f"{stem}_overlay.mp4", fps) if (video and self.overlays) else None
        strip = _StripThumbnails()
        try:
            for index, rgb in enumerate(frames):
                drawn = self.run_frame(pipeline, item, index if video else None, rgb, fps)
                if drawn is None:
                    continue
                if sink is not None:
                    sink.write(drawn)
                    strip.add(index, drawn)
                else:
                    self.summary.outputs.append(write_png(self.out / f"{stem}_overlay.png", drawn))
        finally:
            if sink is not None:
                done = sink.close()
                if done is not None:
                    self.summary.outputs.append(done)
                if strip.kept:
                    self.summary.outputs.append(write_strip(self.out / f"{stem}_strip.png", strip.kept))
        for key in BAD_FRAME_REASONS:
            if pipeline.counters[key]:
                self.summary.bad_frames[key] = self.summary.bad_frames.get(key, 0) + pipeline.counters[key]

    def run_frame(self, pipeline: Any, item: _Input, index: int | None, rgb: np.ndarray, fps: float) -> np.ndarray | None:
        """One frame: pipeline, bag, JSON record; returns the overlay to write (None without overlays)."""
        from das_core.overlay import draw_persons

        h, w = rgb.shape[:2]
        k = self.intrinsics(w, h)
        header = header_message(self.make, self.t_bag, self.frame_id)
        t_ns = int(round(self.t_bag * 1e9))
        self.t_bag += 1.0 / fps
        info = camera_info_message(self.make, header, k, w, h)
        msg = image_message(self.make, header, rgb)
        pipeline.set_camera_info(info)
        result = pipeline.process(msg)
        self.bar.update(1)
        self.summary.frames += 1
        persons: Persons | None = result.persons if result.ok else None
        if self.bag is not None:
            record_frame(self.bag, self.make, t_ns, header, msg, info, rgb, result, persons, self.skeleton,
                         pipeline.settings.joint_confidence_threshold)
        if persons is None:
            log.warning("%s%s: skipped (%s): %s", item.path, f" frame {index}" if index is not None else "",
                        result.reason, result.error)
        else:
            self.summary.persons += len(persons)
        tracked = index is not None and self.tracking
        self.records.append({
            "file": str(item.path), "frame": index, "width": w, "height": h,
            "intrinsics": _intrinsics_json(k, self.source),
            "persons": persons_to_json(persons, self.skeleton.root, tracked) if persons else [],
            **({} if result.ok else {"error": f"{result.reason}: {result.error}"}),
        })
        if not self.overlays:
            return None
        thr = self.settings.joint_confidence_threshold
        return draw_persons(rgb, persons, self.skeleton, thr) if persons is not None else rgb

    def document(self, checkpoint: str) -> dict[str, Any]:
        sk = self.skeleton
        return {
            "checkpoint": checkpoint,
            "skeleton": sk.name,
            "joint_names": list(sk.joint_names),
            "root_index": sk.root,
            "units": {"joints_3d": "metres, camera optical frame (x right, y down, z forward)",
                      "joints_2d": "pixels of the input image (pixel centres)", "confidence": "0..1"},
            "frames": self.records,
        }


class _StripThumbnails:
    """Thumbnails of a video's overlays for the strip, bounded for long videos: every ``stride``-th frame,
    halving the set (and doubling the stride) when it is full."""

    def __init__(self, limit: int = 256) -> None:
        self.kept: list[np.ndarray] = []
        self.stride, self.limit = 1, limit

    def add(self, index: int, drawn: np.ndarray) -> None:
        if index % self.stride == 0:
            self.kept.append(_thumbnail(drawn))
            if len(self.kept) >= self.limit:
                self.kept, self.stride = self.kept[::2], self.stride * 2


def infer(
    paths: Sequence[str | Path],
    estimator: Any,
    out_dir: str | Path,
    *,
    camera: Intrinsics | None = None,
    camera_size: tuple[int, int] | None = None,
    camera_source: str = "",
    hfov_deg: float | None = None,
    json_path: str | Path | None = None,
    mcap_path: str | Path | None = None,
    overlays: bool = True,
    tracking: bool = True,
    settings: Any = None,
    max_frames: int | None = None,
    frame_id: str = "camera_color_optical_frame",
    progress: bool = True,
    checkpoint: str = "",
) -> InferSummary:
    """Run ``estimator`` through ``FramePipeline`` on every input and write overlays, JSON and an MCAP.

    ``camera``/``camera_size`` (from :func:`~das_core.camera_file.load_intrinsics`) or ``hfov_deg`` give
    each image's intrinsics (:func:`~das_core.camera_file.intrinsics_for_image`). ``tracking`` applies
    to videos only. Raises ``FileNotFoundError``/``InferError`` for inputs, ``CameraError`` without
    intrinsics, ``OutputError`` for an unwritable output.
    """
    from tqdm import tqdm

    from das_ros.factory import RosbagsFactory
    from das_ros.pipeline import PipelineSettings

    if camera is None and hfov_deg is None:
        raise CameraError("no intrinsics: pass --camera FILE (ROS camera_info YAML or JSON) or --hfov DEGREES")
    inputs = collect_inputs(paths)
    out = ensure_output_dir(out_dir)
    ts = typestore()
    source = camera_source if camera is not None else f"--hfov {hfov_deg:g} deg guess"
    bag = McapWriter(mcap_path, ts, topics=APP_TOPICS, bare_file=True) if mcap_path else None
    bar = tqdm(total=0, unit="frame", desc="das infer", disable=not progress)
    run = _Inferrer(estimator, out, settings or PipelineSettings(), camera=camera, camera_size=camera_size,
                    source=source, hfov_deg=hfov_deg, bag=bag, make=RosbagsFactory(ts), overlays=overlays,
                    tracking=tracking, max_frames=max_frames, frame_id=frame_id, bar=bar)
    try:
        for item in inputs:
            run.run_input(item)
        if bag is not None:
            run.summary.mcap_path = bag.close()
            bag = None
    finally:
        bar.close()
        if bag is not None:
            bag.abort()
    jpath = Path(json_path) if json_path else out / "persons.json"
    run.summary.json_path = atomic_write_text(jpath, json.dumps(run.document(checkpoint), indent=1) + "\n")
    return run.summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders of images, or videos")
    cam = parser.add_mutually_exclusive_group()
    cam.add_argument("--camera", metavar="FILE",
                     help="intrinsics: ROS camera_info YAML, or YAML/JSON with fx/fy/cx/cy or K")
    cam.add_argument("--hfov", type=float, metavar="DEG",
                     help="no calibration: guess intrinsics from this horizontal field of view (absolute depth "
                          "then scales with the guess)")
    parser.add_argument("--checkpoint", default=None, metavar="NAME",
                        help="NAME.safetensors + NAME.yaml (default: the shipped demo checkpoint)")
    parser.add_argument("--out", default="infer_out", help="output folder for overlays and JSON (default: %(default)s)")
    parser.add_argument("--json", default=None, metavar="FILE", help="JSON output (default: OUT/persons.json)")
    parser.add_argument("--mcap", default=None, metavar="OUT.mcap",
                        help="also write an MCAP file with image, camera_info, poses and markers")
    parser.add_argument("--no-overlay", action="store_true", help="do not write overlay images/videos")
    parser.add_argument("--no-tracking", action="store_true", help="videos: no track ids across frames")
    parser.add_argument("--min-score", type=float, default=None, help="drop persons below this score (default 0.1)")
    parser.add_argument("--max-frames", type=int, default=None, help="videos: process at most this many frames")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default: %(default)s)")
    parser.add_argument("--backend", default="eager", help="inference backend (default: %(default)s)")
    parser.add_argument("--precision", default="fp32",
                        help="fp32, fp16, bf16; int8 with --backend onnx on the CPU (default: %(default)s)")
    parser.add_argument("--input-scale", type=float, default=1.0, metavar="S",
                        help="network input size relative to the checkpoint's: 0.8 = faster, less accurate "
                             "(docs/PERFORMANCE.md, CPU; default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU inference threads (torch and onnxruntime); 0 = their defaults")
    parser.add_argument("--int8-calibration", default="", metavar="DIR",
                        help="--precision int8: folder of >= 20 images to calibrate and check on (default: "
                             "rendered synthetic scenes)")
    parser.add_argument("--frame-id", default="camera_color_optical_frame",
                        help="frame_id written into the MCAP (default: %(default)s, config/das.rviz's fixed frame)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from das_core.camera_file import load_intrinsics
    from das_ros.pipeline import PipelineSettings

    # Cheap checks first, so a typo fails before the model loads.
    collect_inputs(args.paths)
    camera, size, source = None, None, ""
    if args.camera:
        camera, size = load_intrinsics(args.camera)
        source = f"--camera {args.camera}"
    elif args.hfov is None:
        raise CameraError("no intrinsics: pass --camera FILE (ROS camera_info YAML or JSON) or --hfov DEGREES "
                          "(a guess: absolute depth then scales with it)")
    else:
        Intrinsics.from_fov(640, 480, args.hfov)  # range check (CameraError names the value)
        log.warning("no camera calibration: intrinsics from --hfov %g deg; absolute depth (distance) is only as "
                    "good as this guess (a focal length 10%% too long puts everyone 10%% too far). Pass "
                    "--camera FILE for metric depth.", args.hfov)
    if args.max_frames is not None and args.max_frames < 1:
        raise ValueError(f"--max-frames must be >= 1, got {args.max_frames}")
    ensure_output_dir(args.out)
    if args.json:
        ensure_output_dir(Path(args.json).resolve().parent, "--json")
    if args.mcap:
        if Path(args.mcap).suffix.lower() != ".mcap":
            raise ValueError(f"--mcap expects a file name ending in .mcap (Foxglove and ros2 bag play open it), "
                             f"got {args.mcap!r}")
        ensure_output_dir(Path(args.mcap).resolve().parent, "--mcap")
    settings = PipelineSettings()
    if args.min_score is not None:
        if not 0.0 <= args.min_score <= 1.0:
            raise ValueError(f"--min-score must be in [0, 1], got {args.min_score}")
        from dataclasses import replace

        settings = replace(settings, min_score=args.min_score)
    est = load_demo_estimator(args.checkpoint, args.device, args.backend, args.precision,
                              input_scale=args.input_scale, threads=args.threads,
                              int8_calibration=args.int8_calibration)
    if args.checkpoint is None:
        log.warning("using the shipped demo checkpoint, trained on synthetic people only: expect poor results on "
                    "real photos; pass --checkpoint for a real model (docs/OFFICIAL.md converts the authors' one)")
    summary = infer(args.paths, est, args.out, camera=camera, camera_size=size, camera_source=source,
                    hfov_deg=args.hfov, json_path=args.json, mcap_path=args.mcap, overlays=not args.no_overlay,
                    tracking=not args.no_tracking, settings=settings, max_frames=args.max_frames,
                    frame_id=args.frame_id, progress=not args.no_progress,
                    checkpoint=str(_check_checkpoint(args.checkpoint)))
    bad = ", ".join(f"{k}={v}" for k, v in sorted(summary.bad_frames.items())) or "none"
    print(f"{summary.frames} frames, {summary.persons} persons, bad frames: {bad}")
    print(f"JSON: {summary.json_path}")
    if summary.outputs:
        print(f"overlays: {len(summary.outputs)} files in {args.out}")
    if summary.mcap_path:
        print(f"MCAP: {summary.mcap_path}")
    return 0 if summary.frames and not summary.bad_frames else 1
