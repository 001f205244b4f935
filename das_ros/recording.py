"""Writing MCAP bags without a ROS installation: the one atomic writer, and the input messages that
``das demo`` and ``das infer`` record next to the node's outputs.

Messages are built through a factory (:mod:`das_ros.factory`), so the same builders serve rosbags
dataclasses here and rclpy messages in the node.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from das_core.atomic_file import publish_temp
from das_core.camera import Intrinsics
from das_core.persons import Persons

__all__ = [
    "APP_TOPICS",
    "CAMERA_INFO_TOPIC",
    "DEBUG_TOPIC",
    "IMAGE_TOPIC",
    "MARKERS_TOPIC",
    "POSES_TOPIC",
    "McapWriter",
    "camera_info_message",
    "debug_image_message",
    "header_message",
    "image_message",
    "record_frame",
]

log = logging.getLogger(__name__)

IMAGE_TOPIC, CAMERA_INFO_TOPIC = "/camera/image_raw", "/camera/camera_info"
POSES_TOPIC, MARKERS_TOPIC = "/das/poses", "/das/markers"
DEBUG_TOPIC, COMPRESSED_TYPE = "/das/debug_image/compressed", "sensor_msgs/msg/CompressedImage"
POSE_TYPE, MARKERS_TYPE = "das_ros/msg/MultiPerson3DPose", "visualization_msgs/msg/MarkerArray"
IMAGE_TYPE, CAMERA_INFO_TYPE = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"
# What das demo and das infer record: the input image + camera_info, poses, markers and the debug overlay.
APP_TOPICS: Mapping[str, str] = {IMAGE_TOPIC: IMAGE_TYPE, CAMERA_INFO_TOPIC: CAMERA_INFO_TYPE, POSES_TOPIC: POSE_TYPE,
                                 MARKERS_TOPIC: MARKERS_TYPE, DEBUG_TOPIC: COMPRESSED_TYPE}


class McapWriter:
    """A rosbag2 MCAP bag written into a temporary folder beside ``path`` and moved into place by ``close``,
    so a crash never leaves a half bag and an existing ``path`` is replaced only by a complete one.

    ``bare_file=True`` moves only the ``.mcap`` file to ``path`` (Foxglove and ``ros2 bag play FILE.mcap``
    open it); otherwise ``path`` becomes a rosbag2 folder with metadata.yaml. ``distro`` picks the bag
    format version (Humble reads version 8). As a context manager it closes on success and aborts on error.
    """

    def __init__(self, path: str | Path, ts: Any, *, topics: Mapping[str, str] | None = None,
                 bare_file: bool = False, distro: str = "jazzy") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        self.ts = ts
        self.bare_file = bare_file
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self.bagdir = self.tmpdir / (self.path.stem if bare_file else self.path.name)
        self.writer = Writer(self.bagdir, version=9 if distro == "jazzy" else 8, storage_plugin=StoragePlugin.MCAP)
        self.writer.open()
        self.types: dict[str, str] = {}
        self.conns: dict[str, Any] = {}
        for topic, msgtype in (topics or {}).items():
            self.add_topic(topic, msgtype)

    def add_topic(self, topic: str, msgtype: str) -> None:
        self.types[topic] = msgtype
        self.conns[topic] = self.writer.add_connection(topic, msgtype, typestore=self.ts)

    def write(self, topic: str, t_ns: int, msg: Any) -> None:
        self.write_raw(topic, t_ns, self.ts.serialize_cdr(msg, self.types[topic]))

    def write_raw(self, topic: str, t_ns: int, raw: bytes | memoryview) -> None:
        """Already serialised CDR (e.g. copied from an input bag)."""
        self.writer.write(self.conns[topic], int(t_ns), raw)

    def close(self) -> Path:
        try:
            self.writer.close()
            if self.bare_file:
                files = sorted(self.bagdir.glob("*.mcap"))
                if len(files) != 1:
                    raise RuntimeError(f"expected one .mcap file in {self.bagdir}, found {len(files)}")
                publish_temp(files[0], self.path)
            else:
                if self.path.is_dir():
                    shutil.rmtree(self.path)
                elif self.path.exists():
                    self.path.unlink()
                os.replace(self.bagdir, self.path)
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        return self.path

    def abort(self) -> None:
        """Drop the partial bag (after an error)."""
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - already failing; the temp folder goes either way
            log.debug("closing the partial bag failed", exc_info=True)
        finally:
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> McapWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def header_message(make: Any, stamp_s: float, frame_id: str) -> Any:
    """``std_msgs/Header`` at ``stamp_s`` seconds."""
    ns = int(round(stamp_s * 1e9))
    return make("std_msgs/msg/Header", stamp=make("builtin_interfaces/msg/Time", sec=ns // 10**9,
                                                  nanosec=ns % 10**9), frame_id=frame_id)


def image_message(make: Any, header: Any, rgb: np.ndarray) -> Any:
    """(H, W, 3) uint8 RGB → ``sensor_msgs/Image`` (rgb8)."""
    from das_ros.conversions import rgb_to_image_fields

    fields = rgb_to_image_fields(rgb)
    fields["data"] = np.frombuffer(fields["data"], np.uint8)
    return make(IMAGE_TYPE, header=header, **fields)


def debug_image_message(make: Any, header: Any, rgb: np.ndarray, persons: Persons, skeleton: Any,
                        joint_confidence_threshold: float) -> Any:
    """The node's debug overlay (``das_core.overlay.draw_persons``) as a JPEG ``sensor_msgs/CompressedImage``
    (the ``compressed`` transport of the node's ``debug_image`` topic; ~20× smaller than raw in a bag)."""
    from das_core.overlay import draw_persons
    from das_ros.conversions import rgb_to_compressed_fields

    fields = rgb_to_compressed_fields(draw_persons(rgb, persons, skeleton, joint_confidence_threshold))
    fields["data"] = np.frombuffer(fields["data"], np.uint8)
    return make(COMPRESSED_TYPE, header=header, **fields)


def camera_info_message(make: Any, header: Any, intrinsics: Intrinsics, width: int, height: int) -> Any:
    """``sensor_msgs/CameraInfo`` of an undistorted pinhole camera (K, P from ``intrinsics``, R = I)."""
    k = intrinsics.matrix()
    p = np.concatenate([k, np.zeros((3, 1))], axis=1)
    return make(CAMERA_INFO_TYPE, header=header, height=int(height), width=int(width), distortion_model="plumb_bob",
                d=[0.0] * 5, k=k.ravel().tolist(), r=np.eye(3).ravel().tolist(), p=p.ravel().tolist())


def record_frame(bag: McapWriter, make: Any, t_ns: int, header: Any, image_msg: Any, info_msg: Any, rgb: np.ndarray,
                 result: Any, persons: Persons | None, skeleton: Any, joint_confidence_threshold: float) -> None:
    """One frame of an app's bag: the input image and camera_info always; the poses, markers and debug
    overlay of ``persons`` when the pipeline's ``result`` published them."""
    bag.write(IMAGE_TOPIC, t_ns, image_msg)
    bag.write(CAMERA_INFO_TOPIC, t_ns, info_msg)
    if not result.ok or persons is None:
        return
    bag.write(POSES_TOPIC, t_ns, result.poses)
    if result.markers is not None:
        bag.write(MARKERS_TOPIC, t_ns, result.markers)
    bag.write(DEBUG_TOPIC, t_ns, debug_image_message(make, header, rgb, persons, skeleton, joint_confidence_threshold))
