"""Persons → MarkerArray: DELETEALL first, bones/joints/text per person, ids and colours from the track id."""

from __future__ import annotations

import numpy as np
from ros_helpers import SKELETON, header, persons

from das_core.persons import Persons
from das_ros.factory import namespace_factory
from das_ros.markers import (
    DELETEALL,
    LINE_LIST,
    SPHERE,
    SPHERE_LIST,
    TEXT_VIEW_FACING,
    MarkerSettings,
    build_marker_array,
    covariance_ellipsoid,
    track_color,
)

make = namespace_factory()


def test_every_array_starts_with_deleteall_in_our_namespace() -> None:
    h = header()
    arr = build_marker_array(make, Persons.empty(SKELETON.num_joints), h, SKELETON)
    assert len(arr.markers) == 1
    m = arr.markers[0]
    assert m.action == DELETEALL and m.ns == "das" and m.header is h


def test_one_line_list_sphere_list_and_text_per_person() -> None:
    h = header()
    arr = build_marker_array(make, persons(2), h, SKELETON, MarkerSettings(lifetime=0.25))
    body = arr.markers[1:]
    assert [m.type for m in body] == [LINE_LIST, SPHERE_LIST, TEXT_VIEW_FACING] * 2
    assert all(m.header is h and m.action == 0 for m in body)
    assert [m.id for m in body] == [20, 21, 22, 36, 37, 38]  # 4·track_id + offset: stable across frames
    assert len(body[0].points) == 2 * len(SKELETON.bones) and len(body[1].points) == SKELETON.num_joints
    assert body[2].text == "5" and body[5].text == "9"
    assert body[0].lifetime.sec == 0 and body[0].lifetime.nanosec == 250_000_000
    r, g, b = track_color(5)
    assert (body[0].color.r, body[0].color.g, body[0].color.b) == (r, g, b) and track_color(5) != track_color(9)
    text_y = body[2].pose.position.y
    assert text_y < min(p.y for p in body[1].points)  # above the head (optical y points down)


def test_invalid_joints_are_left_out_of_bones_and_spheres() -> None:
    p = persons(1)
    neck = SKELETON.joint_names.index("neck")
    p.joint_confidence[0, neck] = 0.0
    p.joints_3d[0, 1] = np.nan
    arr = build_marker_array(make, p, header(), SKELETON)
    bones, spheres = arr.markers[1], arr.markers[2]
    used = sum(1 for a, b in SKELETON.bones if neck not in (a, b) and 1 not in (a, b))
    assert len(bones.points) == 2 * used and len(spheres.points) == SKELETON.num_joints - 2
    assert all(np.isfinite([q.x, q.y, q.z]).all() for q in bones.points + spheres.points)


def test_person_without_valid_joints_draws_nothing() -> None:
    p = persons(1)
    p.joint_confidence[:] = 0
    assert len(build_marker_array(make, p, header(), SKELETON).markers) == 1


def _quat_matrix(q) -> np.ndarray:
    x, y, z, w = q.x, q.y, q.z, q.w
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def test_uncertainty_markers_are_off_by_default() -> None:
    p = persons(2)
    p.joint_covariance = np.broadcast_to(np.diag([1e-4, 1e-4, 0.09]), (2, SKELETON.num_joints, 3, 3)).copy()
    assert SPHERE not in [getattr(m, "type", None) for m in build_marker_array(make, p, header(), SKELETON).markers]


def test_root_ellipsoid_axes_and_orientation_come_from_the_covariance() -> None:
    rng = np.random.default_rng(3)
    rot = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    sig = np.array([0.02, 0.05, 0.4])  # metres along the three principal axes
    cov = rot @ np.diag(sig**2) @ rot.T
    p = persons(1)
    p.joint_covariance = np.zeros((1, SKELETON.num_joints, 3, 3))
    p.joint_covariance[0, SKELETON.root] = cov
    arr = build_marker_array(make, p, header(), SKELETON, MarkerSettings(uncertainty=True))
    (ell,) = [m for m in arr.markers if getattr(m, "type", None) == SPHERE]
    assert ell.id == 4 * 5 + 3 and 0 < ell.color.a < 1
    root = p.joints_3d[0, SKELETON.root]
    np.testing.assert_allclose([ell.pose.position.x, ell.pose.position.y, ell.pose.position.z], root, rtol=1e-6)
    np.testing.assert_allclose([ell.scale.x, ell.scale.y, ell.scale.z], 2 * sig, rtol=1e-9)  # 1σ: diameter 2σ
    axes = _quat_matrix(ell.pose.orientation)  # marker x, y, z axes in the optical frame
    # the marker's scaled sphere is exactly the covariance's 1σ ellipsoid
    np.testing.assert_allclose(axes @ np.diag((ell.scale.x / 2, ell.scale.y / 2, ell.scale.z / 2)) ** 2 @ axes.T,
                               cov, atol=1e-12)


def test_covariance_ellipsoid_refuses_what_cannot_be_drawn() -> None:
    assert covariance_ellipsoid(np.full((3, 3), np.nan)) is None
    assert covariance_ellipsoid(np.diag([-0.1, 0.01, 0.02])) is None
    assert covariance_ellipsoid(np.zeros((3, 3))) is None
    size, q = covariance_ellipsoid(np.diag([0.04, 0.01, 0.09]))
    np.testing.assert_allclose(size, [0.2, 0.4, 0.6])
    assert abs(np.linalg.norm(q) - 1) < 1e-12
