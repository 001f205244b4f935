"""Intrinsics and the resize record: one pixel convention, exact inverses, clear refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from das_core.camera import CameraError, Intrinsics, ResizeRecord, keep_ratio_scale


@pytest.mark.parametrize("fx", [0.0, -100.0, float("nan"), float("inf")])
def test_unusable_focal_length_is_refused(fx: float) -> None:
    with pytest.raises(CameraError):
        Intrinsics(fx=fx, fy=500.0, cx=320.0, cy=240.0)


def test_uncalibrated_k_is_refused_with_a_reason() -> None:
    with pytest.raises(CameraError, match="uncalibrated"):
        Intrinsics.from_matrix([0.0] * 9)


def test_project_backproject_round_trip_with_skew_and_non_square_pixels() -> None:
    cam = Intrinsics(fx=800.0, fy=760.0, cx=310.0, cy=255.0, skew=3.0)
    pts = np.random.default_rng(0).uniform([-2, -1, 1.5], [2, 1, 12], size=(50, 3))
    back = cam.backproject(cam.project(pts), pts[:, 2])
    np.testing.assert_allclose(back, pts, atol=1e-9)


def test_scaled_intrinsics_agree_with_the_resize_record() -> None:
    cam = Intrinsics(fx=1000.0, fy=990.0, cx=955.0, cy=545.0)
    rec = ResizeRecord.for_image(1920, 1080, long_side=1333, short_side=640, size_divisor=32)
    assert (rec.resized_width, rec.resized_height) == (1138, 640)
    assert (rec.padded_width, rec.padded_height) == (1152, 640)
    pts = np.array([[0.3, -0.2, 4.0], [-1.0, 0.5, 7.5]])
    uv_net = cam.scaled(rec.sx, rec.sy).project(pts)
    np.testing.assert_allclose(rec.to_network(cam.project(pts)), uv_net, atol=1e-9)
    np.testing.assert_allclose(rec.to_original(uv_net), cam.project(pts), atol=1e-9)


def test_keep_ratio_scale_uses_the_tighter_side() -> None:
    assert math.isclose(keep_ratio_scale(1920, 1080, 1333, 640), 640 / 1080)
    assert math.isclose(keep_ratio_scale(4000, 1000, 1333, 640), 1333 / 4000)
    with pytest.raises(ValueError):
        keep_ratio_scale(0, 10, 1333, 640)


def test_focal_is_geometric_mean_and_fov_constructor_warns_nothing_silently() -> None:
    assert math.isclose(Intrinsics(400.0, 900.0, 0, 0).focal, 600.0)
    cam = Intrinsics.from_fov(640, 480, 90.0)
    assert math.isclose(cam.fx, 320.0) and cam.cx == 319.5
    with pytest.raises(CameraError):
        Intrinsics.from_fov(640, 480, 180.0)


def test_one_scaling_rule_for_infer_and_node_refuses_another_aspect_ratio_and_says_how_to_fix_it() -> None:
    """``das infer --camera`` and the node's CameraInfo scale a calibration by the same rule (issue 15.2)."""
    from types import SimpleNamespace

    from das_core.camera_file import intrinsics_for_image
    from das_ros.conversions import intrinsics_from_camera_info

    calib = Intrinsics(fx=1400.0, fy=1380.0, cx=955.0, cy=545.0)

    def infer(w: int, h: int) -> Intrinsics:
        return intrinsics_for_image(w, h, calib, (1920, 1080), None)

    def node(w: int, h: int) -> Intrinsics:
        info = SimpleNamespace(k=calib.matrix().reshape(-1).tolist(), width=1920, height=1080, roi=None,
                               binning_x=0, binning_y=0)
        return intrinsics_from_camera_info(info, w, h)

    for path in (infer, node):
        # a 1080p calibration on a 640×480 image: a crop or another camera, not a resize
        with pytest.raises(CameraError, match=r"aspect ratios differ.*recalibrate"):
            path(640, 480)
        # uniform resizes, including one whose height is rounded (853.33 → 853 wide for 480 high)
        assert path(640, 360) == calib.scaled(640 / 1920, 360 / 1080)
        assert path(853, 480) == calib.scaled(853 / 1920, 480 / 1080)
        assert path(1920, 1080) == calib
