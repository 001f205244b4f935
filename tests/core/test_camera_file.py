"""Camera files: ROS camera_info YAML, plain JSON, K matrices; clear errors; FOV only when asked."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from das_core.camera import CameraError, Intrinsics
from das_core.camera_file import intrinsics_for_image, load_intrinsics
from das_core.overlay import draw_persons, track_color_u8
from das_core.persons import Persons
from das_core.skeletons import get_skeleton

ROS_YAML = """image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [525.0, 0.0, 319.5, 0.0, 520.0, 239.5, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}
"""


def test_ros_camera_info_yaml_is_read_with_its_image_size(tmp_path: Path) -> None:
    p = tmp_path / "cam.yaml"
    p.write_text(ROS_YAML)
    cam, size = load_intrinsics(p)
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (525.0, 520.0, 319.5, 239.5) and size == (640, 480)


def test_plain_json_and_k_matrix(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"fx": 900, "fy": 900, "cx": 640, "cy": 360}))
    assert load_intrinsics(tmp_path / "a.json")[0] == Intrinsics(900.0, 900.0, 640.0, 360.0)
    (tmp_path / "b.yaml").write_text("K: [[800, 0, 320], [0, 810, 240], [0, 0, 1]]\n")
    assert load_intrinsics(tmp_path / "b.yaml")[0].fy == 810.0


def test_bad_camera_files_name_the_file_and_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_intrinsics(tmp_path / "missing.yaml")
    (tmp_path / "zero.yaml").write_text(ROS_YAML.replace("525.0", "0.0"))
    with pytest.raises(CameraError, match="zero.yaml: .*uncalibrated"):
        load_intrinsics(tmp_path / "zero.yaml")
    (tmp_path / "empty.json").write_text("{}")
    with pytest.raises(CameraError, match="empty.json: no intrinsics found"):
        load_intrinsics(tmp_path / "empty.json")


def test_calibration_of_another_size_is_scaled_and_fov_needs_to_be_asked_for() -> None:
    cam = Intrinsics(525.0, 520.0, 319.5, 239.5)
    scaled = intrinsics_for_image(1280, 960, cam, (640, 480), None)
    assert math.isclose(scaled.fx, 1050.0) and math.isclose(scaled.cx, 639.5)
    with pytest.raises(CameraError, match="--hfov"):
        intrinsics_for_image(640, 480, None, None, None)
    assert math.isclose(intrinsics_for_image(640, 480, None, None, 90.0).fx, 320.0)


def test_overlay_draws_in_the_track_colour_and_leaves_the_input_untouched() -> None:
    sk = get_skeleton("panoptic15")
    img = np.zeros((120, 160, 3), np.uint8)
    uv = np.stack([np.linspace(40, 120, 15), np.linspace(20, 100, 15)], axis=1)[None].astype(np.float32)
    p = Persons(np.array([0.9], np.float32), np.full((1, 15, 3), 2.0, np.float32), uv,
                np.ones((1, 15), np.float32), np.array([3]))
    out = draw_persons(img, p, sk)
    assert img.sum() == 0 and out.shape == img.shape
    assert (out.reshape(-1, 3) == np.array(track_color_u8(3), np.uint8)).all(axis=1).any()
