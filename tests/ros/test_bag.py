"""das bag: rosbag2 in → MCAP with poses + markers out, through exactly FramePipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
from ros_helpers import SKELETON, FakeEstimator
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from das_ros import bag
from das_ros.pipeline import PipelineSettings

TS = get_typestore(Stores.ROS2_HUMBLE)
T = TS.types


def _header(i: int) -> object:
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=100, nanosec=i * 10**8),
                                    frame_id="cam_optical")


def write_input_bag(path: Path, storage: StoragePlugin, n: int = 4, compressed: bool = False,
                    corrupt_frame: int | None = None) -> None:
    rng = np.random.default_rng(0)
    w, h = 64, 48
    with Writer(path, version=8, storage_plugin=storage) as writer:
        img_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
        img_topic = "/cam/image_raw/compressed" if compressed else "/cam/image_raw"
        c_img = writer.add_connection(img_topic, img_type, typestore=TS)
        c_info = writer.add_connection("/cam/camera_info", "sensor_msgs/msg/CameraInfo", typestore=TS)
        info = T["sensor_msgs/msg/CameraInfo"](
            header=_header(0), height=h, width=w, distortion_model="plumb_bob", d=np.zeros(5),
            k=np.array([60.0, 0, 31.5, 0, 60.0, 23.5, 0, 0, 1]), r=np.eye(3).ravel(),
            p=np.array([60.0, 0, 31.5, 0, 0, 60.0, 23.5, 0, 0, 0, 1, 0]), binning_x=0, binning_y=0,
            roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        writer.write(c_info, 99 * 10**9, TS.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
        for i in range(n):
            rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            if compressed:
                import cv2

                ok, enc = cv2.imencode(".png", rgb)
                data = enc.ravel() if i != corrupt_frame else np.frombuffer(b"not an image", np.uint8)
                msg = T["sensor_msgs/msg/CompressedImage"](header=_header(i), format="png", data=data)
            else:
                step = w * 3 if i != corrupt_frame else w * 3 - 1  # a corrupt step → one bad frame
                msg = T["sensor_msgs/msg/Image"](header=_header(i), height=h, width=w, encoding="rgb8",
                                                 is_bigendian=0, step=step, data=rgb.ravel())
            writer.write(c_img, 100 * 10**9 + i * 10**8, TS.serialize_cdr(msg, img_type))


def read_output(path: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    with AnyReader([path]) as reader:  # no default typestore: definitions must come from the bag itself
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    return out


@pytest.mark.parametrize("storage", [StoragePlugin.SQLITE3, StoragePlugin.MCAP])
def test_bag_round_trip_writes_decodable_poses_and_markers(tmp_path: Path, storage: StoragePlugin) -> None:
    src, dst = tmp_path / "in", tmp_path / "out"
    write_input_bag(src, storage, n=4, corrupt_frame=2)
    summary = bag.process_bag(src, dst, image_topic="/cam/image_raw", camera_info_topic="/cam/camera_info",
                              estimator=FakeEstimator([(0.0, 0.2, 3.0), (1.0, 0.2, 5.0)]), skeleton=SKELETON,
                              copy_input=True, progress=False)
    assert summary.images == 4 and summary.published == 3
    assert summary.bad_frames == {"bad_image": 1}
    assert (dst / "metadata.yaml").is_file() and list(dst.glob("*.mcap"))
    assert not list(tmp_path.glob(".out.*")), "temporary directory left behind"
    out = read_output(dst)
    poses = out["/das/poses"]
    assert [t for t, _ in poses] == [100 * 10**9 + i * 10**8 for i in (0, 1, 3)]  # the input images' log times
    for t, msg in poses:
        assert msg.header.stamp.nanosec == t % 10**9 and msg.header.frame_id == "cam_optical"
        assert msg.skeleton == "panoptic15" and len(msg.persons) == 2
        assert sorted(p.id for p in msg.persons) == [1, 2]  # tracked: stable ids
        assert msg.persons[0].root.z == pytest.approx(3.0, abs=1e-5)
    assert len(out["/das/markers"]) == 3 and out["/das/markers"][0][1].markers[0].action == 3  # DELETEALL first
    assert len(out["/cam/image_raw"]) == 4 and len(out["/cam/camera_info"]) == 1


def test_bag_reads_compressed_images_and_embeds_humble_definitions(tmp_path: Path) -> None:
    src, dst = tmp_path / "in", tmp_path / "out"
    write_input_bag(src, StoragePlugin.MCAP, n=3, compressed=True, corrupt_frame=0)
    summary = bag.process_bag(src, dst, image_topic="/cam/image_raw/compressed",
                              camera_info_topic="/cam/camera_info", estimator=FakeEstimator(), skeleton=SKELETON,
                              distro="humble", progress=False)
    assert summary.published == 2 and summary.bad_frames == {"bad_image": 1}
    poses = read_output(dst)["/das/poses"]
    assert poses[0][1].image_width == 64 and len(poses[0][1].persons[0].joints) == SKELETON.num_joints


def test_bag_errors_name_the_missing_topic_and_existing_output(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_input_bag(src, StoragePlugin.MCAP, n=1)
    with pytest.raises(bag.BagError, match="/nope.*topics: /cam/camera_info"):
        bag.process_bag(src, tmp_path / "o", image_topic="/nope", camera_info_topic=None,
                        estimator=FakeEstimator(), skeleton=SKELETON, progress=False)
    with pytest.raises(bag.BagError, match="expected one of"):
        bag.process_bag(src, tmp_path / "o", image_topic="/cam/camera_info", camera_info_topic=None,
                        estimator=FakeEstimator(), skeleton=SKELETON, progress=False)
    with pytest.raises(bag.BagError, match="--camera-info-topic or --fallback-hfov"):
        bag.process_bag(src, tmp_path / "o", image_topic="/cam/image_raw", camera_info_topic=None,
                        estimator=FakeEstimator(), skeleton=SKELETON, progress=False)
    (tmp_path / "exists").mkdir()
    with pytest.raises(bag.BagError, match="exists"):
        bag.process_bag(src, tmp_path / "exists", image_topic="/cam/image_raw", camera_info_topic="/cam/camera_info",
                        estimator=FakeEstimator(), skeleton=SKELETON, progress=False)


def test_bag_fallback_hfov_works_without_camera_info(tmp_path: Path) -> None:
    src, dst = tmp_path / "in", tmp_path / "out"
    write_input_bag(src, StoragePlugin.MCAP, n=2)
    est = FakeEstimator()
    summary = bag.process_bag(src, dst, image_topic="/cam/image_raw", camera_info_topic=None, estimator=est,
                              skeleton=SKELETON, settings=PipelineSettings(fallback_hfov_deg=90.0), progress=False)
    assert summary.published == 2
    assert est.calls[0][1].fx == pytest.approx(32.0)  # (64 / 2) / tan(45°)


def test_cli_run_checks_topics_before_loading_a_model(tmp_path: Path) -> None:
    src = tmp_path / "in"
    write_input_bag(src, StoragePlugin.MCAP, n=1)
    parser = argparse.ArgumentParser()
    bag.add_arguments(parser)
    args = parser.parse_args([str(src), str(tmp_path / "o"), "--image-topic", "/missing", "--model", "none"])
    with pytest.raises(bag.BagError, match="/missing"):
        bag.run(args)
    args = parser.parse_args([str(src), str(tmp_path / "o"), "--image-topic", "/cam/image_raw",
                              "--set", "min_score=2"])
    with pytest.raises(ValueError, match="min_score"):
        bag.run(args)


def test_cli_runs_the_real_estimator_from_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The whole `das bag` path with das_core's Estimator (random ResNet-18 weights, tiny input size)."""
    import dataclasses

    torch = pytest.importorskip("torch")
    from das_core.checkpoint import save_checkpoint
    from das_core.config import InputConfig, load_config
    from das_core.model.das import DAS

    root = Path(__file__).resolve().parents[2]
    cfg = dataclasses.replace(load_config(root / "config" / "model" / "das_r18_fpn.yaml"),
                              input=InputConfig(short_side=64, long_side=96))
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "tiny", DAS.from_config(cfg).state_dict(), cfg, {})
    src, dst = tmp_path / "in", tmp_path / "out"
    write_input_bag(src, StoragePlugin.MCAP, n=2)
    parser = argparse.ArgumentParser()
    bag.add_arguments(parser)
    args = parser.parse_args([str(src), str(dst), "--image-topic", "/cam/image_raw", "--camera-info-topic",
                              "/cam/camera_info", "--model", str(tmp_path / "tiny"), "--device", "cpu",
                              "--no-progress", "--params", str(root / "config" / "das.yaml")])
    assert bag.run(args) == 0
    assert "2 images, 2 pose messages" in capsys.readouterr().out
    poses = read_output(dst)["/das/poses"]
    assert len(poses) == 2 and poses[0][1].skeleton == cfg.skeleton
    for _, msg in poses:
        for p in msg.persons:
            assert all(np.isfinite([j.position.x, j.position.y, j.position.z, j.u, j.v]).all() for j in p.joints)
