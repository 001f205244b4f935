"""Persons → MultiPerson3DPose: header copied, fixed joint order, never NaN, invalid joints flagged."""

from __future__ import annotations

import math

import numpy as np
from ros_helpers import SKELETON, header, persons

from das_core.persons import Persons
from das_ros.factory import namespace_factory
from das_ros.messages import build_pose_message
from das_ros.tracker import CONFIRMED

make = namespace_factory()
K = SKELETON.num_joints


def all_numbers(msg) -> list[float]:
    out = []
    for p in msg.persons:
        out += [p.score, p.root.x, p.root.y, p.root.z, p.x_min, p.y_min, p.x_max, p.y_max]
        for j in p.joints:
            out += [j.position.x, j.position.y, j.position.z, j.u, j.v, j.confidence, *j.position_covariance]
        out += list(p.root_covariance)
    return out


def with_covariance(p: Persons) -> Persons:
    """Depth-dominated covariances: σ 2 cm across, 30 cm along z, person i's joint j scaled by (1 + j/10)."""
    base = np.diag([0.02**2, 0.02**2, 0.3**2]).astype(np.float32)
    scale = (1.0 + np.arange(p.num_joints) / 10.0)[None, :, None, None]
    p.joint_covariance = np.broadcast_to(base * scale, (len(p), p.num_joints, 3, 3)).astype(np.float32).copy()
    return p


def test_header_skeleton_and_sizes_are_filled() -> None:
    h = header(sec=42, nanosec=7, frame_id="cam_optical")
    msg = build_pose_message(make, persons(), h, SKELETON, (640, 480), states=np.array([CONFIRMED, 1]))
    assert msg.header is h  # copied verbatim from the image
    assert msg.skeleton == "panoptic15" and msg.joint_names == list(SKELETON.joint_names)
    assert msg.root_index == SKELETON.root and len(msg.bones) == 2 * len(SKELETON.bones)
    assert (msg.image_width, msg.image_height) == (640, 480)
    p = msg.persons[0]
    assert p.id == 5 and p.tracking_state == CONFIRMED and len(p.joints) == K
    assert math.isclose(p.root.z, 3.0, rel_tol=1e-6) and all(j.valid for j in p.joints)
    assert (p.x_min, p.y_min, p.x_max, p.y_max) == (10.0, 5.0, 50.0, 40.0)


def test_empty_frame_still_gives_a_message() -> None:
    msg = build_pose_message(make, Persons.empty(K), header(), SKELETON, (64, 48))
    assert msg.persons == [] and msg.joint_names == list(SKELETON.joint_names)


def test_non_finite_or_low_confidence_joints_are_invalid_zeros_never_nan() -> None:
    p = persons(2)
    p.joints_3d[0, 3] = np.nan
    p.joints_2d[0, 4] = np.inf
    p.joint_confidence[0, 5] = np.nan
    p.joint_confidence[1, 6] = 0.05
    p.joints_3d[1, 7, 2] = -1.0  # behind the camera
    p.scores[1] = np.nan
    msg = build_pose_message(make, p, header(), SKELETON, (64, 48), joint_confidence_threshold=0.1)
    assert all(math.isfinite(x) for x in all_numbers(msg))
    j0, j1 = msg.persons[0].joints, msg.persons[1].joints
    for j in (j0[3], j0[4], j0[5], j1[6], j1[7]):
        assert not j.valid and (j.position.x, j.position.y, j.position.z, j.u, j.v) == (0, 0, 0, 0, 0)
    assert j1[6].confidence == np.float32(0.05)  # the confidence of a finite low joint is still reported
    assert msg.persons[1].score == 0.0


def test_untracked_persons_use_their_index_as_id() -> None:
    p = persons(2)
    p.track_ids[:] = -1
    msg = build_pose_message(make, p, header(), SKELETON, (64, 48))
    assert [q.id for q in msg.persons] == [0, 1] and msg.persons[0].tracking_state == 0


def test_person_without_valid_joints_has_a_zero_box() -> None:
    p = persons(1)
    p.joint_confidence[:] = 0.0
    q = build_pose_message(make, p, header(), SKELETON, (64, 48)).persons[0]
    assert (q.x_min, q.y_min, q.x_max, q.y_max) == (0.0, 0.0, 0.0, 0.0)


def test_covariance_fields_are_row_major_m2_in_the_optical_frame() -> None:
    p = with_covariance(persons(2))
    p.joint_covariance[0, 4, 0, 2] = 0.01  # an asymmetric entry shows the order: row 0, column 2
    msg = build_pose_message(make, p, header(frame_id="cam_optical"), SKELETON, (64, 48))
    assert msg.header.frame_id == "cam_optical"  # the covariance is in the frame of the positions
    j = msg.persons[0].joints[4]
    assert len(j.position_covariance) == 9 and j.position_covariance[2] == np.float32(0.01)
    assert j.position_covariance[6] == 0.0
    np.testing.assert_allclose(np.reshape(msg.persons[1].joints[3].position_covariance, (3, 3)),
                               p.joint_covariance[1, 3])
    np.testing.assert_allclose(msg.persons[1].root_covariance, p.joint_covariance[1, SKELETON.root].reshape(9))
    assert all(math.isfinite(x) for x in all_numbers(msg))


def test_invalid_joints_have_zero_covariance_and_missing_covariance_is_minus_one() -> None:
    p = with_covariance(persons(2))
    p.joint_confidence[0, 5] = 0.01
    p.joint_covariance[1, 6, 2, 2] = np.nan
    msg = build_pose_message(make, p, header(), SKELETON, (64, 48), joint_confidence_threshold=0.1)
    assert list(msg.persons[0].joints[5].position_covariance) == [0.0] * 9  # invalid: zeros, like its position
    assert list(msg.persons[1].joints[6].position_covariance) == [-1.0] + [0.0] * 8  # sensor_msgs/Imu rule
    assert all(math.isfinite(x) for x in all_numbers(msg))
    bare = build_pose_message(make, persons(1), header(), SKELETON, (64, 48))  # persons without covariance
    assert list(bare.persons[0].root_covariance) == [-1.0] + [0.0] * 8
    assert all(list(j.position_covariance) == [-1.0] + [0.0] * 8 for j in bare.persons[0].joints)
