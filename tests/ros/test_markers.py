"""Persons → MarkerArray: DELETEALL first, bones/joints/text per person, ids and colours from the track id."""

from __future__ import annotations

import numpy as np
from ros_helpers import SKELETON, header, persons

from das_core.persons import Persons
from das_ros.factory import namespace_factory
from das_ros.markers import (
    DELETEALL,
    LINE_LIST,
    SPHERE_LIST,
    TEXT_VIEW_FACING,
    MarkerSettings,
    build_marker_array,
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
    assert [m.id for m in body] == [15, 16, 17, 27, 28, 29]  # 3·track_id + offset: stable across frames
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
