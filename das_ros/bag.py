"""Run the node's pipeline on a rosbag2 (MCAP or sqlite3) and write the results to an MCAP bag.

Exactly the node's ``FramePipeline`` (conversion, CameraInfo handling, estimator, tracker, messages,
markers), driven by the bag's messages in log-time order; CameraInfo is cached like in the node. The output
bag holds das_ros/msg/MultiPerson3DPose (definition embedded, so ``ros2 bag play`` and Foxglove decode it)
and visualization_msgs/msg/MarkerArray, stamped with the input images' log times, and optionally the
input image and camera_info messages. It is written to a temporary directory and renamed when complete.

examples:
  das bag recording/ poses_bag --image-topic /camera/color/image_raw \\
      --camera-info-topic /camera/color/camera_info --model checkpoints/das_r50 --device cuda
  das bag rec.mcap out --image-topic /cam/image_raw/compressed --fallback-hfov 70 --model ckpt --copy-input
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from das_core.skeletons import Skeleton
from das_ros import params as P
from das_ros.factory import RosbagsFactory
from das_ros.interfaces import DISTROS, typestore
from das_ros.pipeline import (
    BAD_FRAME_REASONS,
    EstimatorFn,
    FramePipeline,
    PipelineSettings,
    load_estimator,
    skeleton_of,
)
from das_ros.recording import CAMERA_INFO_TYPE, MARKERS_TYPE, POSE_TYPE, McapWriter

__all__ = ["BagError", "BagSummary", "add_arguments", "process_bag", "run"]

log = logging.getLogger(__name__)

IMAGE_TYPES = {"sensor_msgs/msg/Image": False, "sensor_msgs/msg/CompressedImage": True}


class BagError(ValueError):
    """The input bag cannot be processed as asked (missing topic, wrong type, output exists)."""


@dataclass
class BagSummary:
    images: int = 0
    published: int = 0
    persons: int = 0
    bad_frames: dict[str, int] = field(default_factory=dict)
    output: Path | None = None


def _open_reader(src: Path, ts: Any) -> Any:
    """An opened ``AnyReader`` (as a context manager); a corrupt or truncated bag is a ``BagError`` naming it."""
    from rosbags.highlevel import AnyReader, AnyReaderError

    reader = AnyReader([src], default_typestore=ts)
    try:
        reader.open()
    except AnyReaderError as exc:
        raise BagError(f"{src}: cannot read the input bag (corrupt or truncated?): {exc}") from None
    return contextlib.closing(reader)


def _topics(reader: Any) -> dict[str, str]:
    return {c.topic: c.msgtype for c in reader.connections}


def _check_topics(src: Path, topics: dict[str, str], image_topic: str, camera_info_topic: str | None,
                  settings: PipelineSettings) -> bool:
    """``BagError`` unless the input topics exist with the right types; whether the images are compressed."""
    listing = ", ".join(f"{t} [{m}]" for t, m in sorted(topics.items())) or "none"
    if image_topic not in topics:
        raise BagError(f"image topic {image_topic!r} is not in {src}; topics: {listing}")
    if topics[image_topic] not in IMAGE_TYPES:
        raise BagError(f"topic {image_topic!r} has type {topics[image_topic]}, expected one of "
                       f"{sorted(IMAGE_TYPES)}")
    if camera_info_topic is not None:
        if camera_info_topic not in topics:
            raise BagError(f"camera_info topic {camera_info_topic!r} is not in {src}; topics: {listing}")
        if topics[camera_info_topic] != CAMERA_INFO_TYPE:
            raise BagError(f"topic {camera_info_topic!r} has type {topics[camera_info_topic]}, "
                           f"expected {CAMERA_INFO_TYPE}")
    elif settings.fallback_hfov_deg <= 0:
        raise BagError("no camera_info topic given: pass --camera-info-topic or --fallback-hfov")
    return IMAGE_TYPES[topics[image_topic]]


def process_bag(
    input_path: str | Path,
    output_path: str | Path,
    *,
    image_topic: str,
    camera_info_topic: str | None,
    estimator: EstimatorFn,
    skeleton: Skeleton,
    settings: PipelineSettings | None = None,
    poses_topic: str = "/das/poses",
    markers_topic: str | None = "/das/markers",
    copy_input: bool = False,
    distro: str = "jazzy",
    overwrite: bool = False,
    limit: int | None = None,
    progress: bool = True,
) -> BagSummary:
    """Read ``input_path``, run ``FramePipeline`` on every image of ``image_topic``, write ``output_path``.

    ``distro`` picks the message definitions embedded in the output (Marker differs between Humble and
    Jazzy). Raises ``BagError`` for a missing/mistyped topic or an existing output (unless ``overwrite``),
    ``FileNotFoundError`` for a missing input.
    """
    from tqdm import tqdm

    src, dst = Path(input_path), Path(output_path)
    if not src.exists():
        raise FileNotFoundError(f"input bag {src} does not exist")
    if dst.exists() and not overwrite:
        raise BagError(f"output {dst} exists (use --overwrite to replace it)")
    settings = settings or PipelineSettings()
    ts = typestore(distro)
    summary = BagSummary()

    with _open_reader(src, ts) as reader:
        compressed = _check_topics(src, _topics(reader), image_topic, camera_info_topic, settings)
        pipeline = FramePipeline(estimator, skeleton, RosbagsFactory(ts), settings)
        wanted = [c for c in reader.connections if c.topic in (image_topic, camera_info_topic)]
        n_images = sum(c.msgcount for c in wanted if c.topic == image_topic)
        total = n_images if limit is None else min(limit, n_images)

        with McapWriter(dst, ts, distro=distro) as writer:
            writer.add_topic(poses_topic, POSE_TYPE)
            if markers_topic:
                writer.add_topic(markers_topic, MARKERS_TYPE)
            if copy_input:
                for c in wanted:
                    if c.topic not in writer.types:
                        writer.add_topic(c.topic, c.msgtype)
            bar = tqdm(total=total, unit="img", desc="das bag", disable=not progress)
            for conn, t_log, raw in reader.messages(connections=wanted):
                if conn.topic == image_topic and limit is not None and summary.images >= limit:
                    break
                if copy_input:
                    writer.write_raw(conn.topic, t_log, raw)  # CDR of Image/CameraInfo: same in every distro
                msg = reader.deserialize(raw, conn.msgtype)
                if conn.topic == camera_info_topic:
                    pipeline.set_camera_info(msg)
                    continue
                summary.images += 1
                bar.update(1)
                result = pipeline.process(msg, compressed=compressed)
                if not result.ok:
                    count = pipeline.counters[result.reason or ""]
                    if count == 1 or count % 100 == 0:
                        log.warning("frame at %d ns skipped (%s, %d so far): %s", t_log, result.reason, count,
                                    result.error)
                    continue
                writer.write(poses_topic, t_log, result.poses)
                if markers_topic and result.markers is not None:
                    writer.write(markers_topic, t_log, result.markers)
                summary.published += 1
                summary.persons += len(result.persons) if result.persons is not None else 0
            bar.close()
    summary.bad_frames = {k: v for k, v in pipeline.counters.items() if k in BAD_FRAME_REASONS}
    summary.output = dst
    return summary


def _read_params_file(path: str) -> dict[str, Any]:
    """Flat parameters from a ROS 2 params YAML (``/**`` or the first node's ``ros__parameters``)."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict) or not data:
        raise BagError(f"{path}: not a ROS 2 parameters file")
    node = data.get("/**", next(iter(data.values())))
    if not isinstance(node, dict) or "ros__parameters" not in node:
        raise BagError(f"{path}: no ros__parameters section")
    return P.flatten(node["ros__parameters"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="input rosbag2: a directory with metadata.yaml (MCAP or sqlite3), or a bare .mcap file")
    parser.add_argument("output", help="output bag directory (MCAP), written atomically")
    parser.add_argument("--image-topic", required=True, help="sensor_msgs/Image or CompressedImage topic")
    parser.add_argument("--camera-info-topic", help="sensor_msgs/CameraInfo topic (the latest one is used)")
    parser.add_argument("--fallback-hfov", type=float, default=None,
                        help="horizontal field of view (deg) used while no CameraInfo is known")
    parser.add_argument("--model", default=None, help="checkpoint path (default: the params file's 'model')")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N (default: the params file's, else auto)")
    parser.add_argument("--backend", default=None, choices=P.by_name("backend").choices)
    parser.add_argument("--precision", default=None, choices=P.by_name("precision").choices)
    parser.add_argument("--params", default=None, help="ROS 2 parameters YAML (e.g. config/das.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override one node parameter (repeatable), e.g. --set tracking.max_distance=0.8")
    parser.add_argument("--poses-topic", default="/das/poses")
    parser.add_argument("--markers-topic", default="/das/markers")
    parser.add_argument("--no-markers", action="store_true", help="do not write markers")
    parser.add_argument("--copy-input", action="store_true", help="also copy the image and camera_info messages")
    parser.add_argument("--distro", choices=DISTROS, default="jazzy",
                        help="ROS distro whose message definitions the output embeds")
    parser.add_argument("--limit", type=int, default=None, help="process at most this many images")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    values: dict[str, Any] = _read_params_file(args.params) if args.params else {}
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep:
            raise BagError(f"--set expects NAME=VALUE, got {item!r}")
        values[name.strip()] = value
    if args.fallback_hfov is not None:
        values["fallback_hfov_deg"] = args.fallback_hfov
    if args.no_markers:
        values["publish_markers"] = False
    for key in ("model", "device", "backend", "precision"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    flat = P.validate_all(values)
    settings = PipelineSettings.from_params(flat)

    # Check the bag before loading the (slow) model, so topic mistakes fail at once.
    src = Path(args.input)
    if not src.exists():
        raise FileNotFoundError(f"input bag {src} does not exist")
    with _open_reader(src, typestore(args.distro)) as reader:
        topics = _topics(reader)
    for t in (args.image_topic, args.camera_info_topic):
        if t is not None and t not in topics:
            raise BagError(f"topic {t!r} is not in {src}; topics: {', '.join(sorted(topics)) or 'none'}")

    est = load_estimator(str(flat["model"]), str(flat["device"]), str(flat["backend"]), str(flat["precision"]),
                         input_scale=float(flat["input_scale"]), threads=int(flat["threads"]),
                         int8_calibration=str(flat["int8_calibration"]))
    summary = process_bag(
        src, args.output, image_topic=args.image_topic, camera_info_topic=args.camera_info_topic, estimator=est,
        skeleton=skeleton_of(est), settings=settings, poses_topic=args.poses_topic,
        markers_topic=None if args.no_markers else args.markers_topic, copy_input=args.copy_input,
        distro=args.distro, overwrite=args.overwrite, limit=args.limit, progress=not args.no_progress,
    )
    bad = ", ".join(f"{k}={v}" for k, v in sorted(summary.bad_frames.items())) or "none"
    print(f"{summary.images} images, {summary.published} pose messages, {summary.persons} persons, "
          f"bad frames: {bad} -> {summary.output}")
    return 0 if summary.published or not summary.images else 1
