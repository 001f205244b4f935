"""``Persons`` → ``das_ros/msg/MultiPerson3DPose`` (no rclpy import; built through a message factory).

Never NaN or Inf: the pipeline drops persons whose score or root is non-finite before this point, and here
every joint that is non-finite or below the confidence threshold is sent with ``valid = false`` and zeros.

Covariances (``position_covariance``, ``root_covariance``: row-major 3×3, m², optical frame, as in
``sensor_msgs/NavSatFix``) follow ``sensor_msgs/Imu``'s rule for a missing estimate: element 0 is −1 and the
rest 0 when the persons carry no covariance or it is not finite; an invalid joint's covariance is all zero.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from das_core.persons import Persons
from das_core.skeletons import Skeleton
from das_ros.factory import MessageFactory
from das_ros.tracker import OFF

__all__ = ["NO_COVARIANCE", "build_pose_message", "covariance_field"]

POSE_TYPE = "das_ros/msg/MultiPerson3DPose"
# sensor_msgs/Imu's "no estimate" marker.
NO_COVARIANCE = (-1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def _finite(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else 0.0


def covariance_field(cov: np.ndarray | None) -> list[float]:
    """(3, 3) covariance → the 9 row-major floats of a message; :data:`NO_COVARIANCE` if missing or not finite."""
    if cov is None:
        return list(NO_COVARIANCE)
    flat = np.asarray(cov, dtype=np.float64).reshape(9)
    if not np.isfinite(flat).all():
        return list(NO_COVARIANCE)
    return [float(c) for c in flat]


def build_pose_message(
    make: MessageFactory,
    persons: Persons,
    header: Any,
    skeleton: Skeleton,
    image_size: tuple[int, int],
    *,
    states: np.ndarray | None = None,
    joint_confidence_threshold: float = 0.0,
) -> Any:
    """One ``MultiPerson3DPose`` for one image.

    Args:
        make: message factory (``das_ros.factory``).
        persons: N persons, K = ``skeleton.num_joints`` joints, metres in the optical frame, pixels of the
            input image. ``track_ids`` < 0 (untracked) are replaced by the index in the frame.
        header: the input image's header object, copied as is (stamp = acquisition time, optical frame).
        image_size: (width, height) in pixels of the input image.
        states: (N,) tracking states (``das_ros.tracker``); None means tracking is off.
        joint_confidence_threshold: joints below it are sent with ``valid = false``.
    """
    n, k = len(persons), skeleton.num_joints
    if n and persons.num_joints != k:
        raise ValueError(f"persons have {persons.num_joints} joints but skeleton {skeleton.name} has {k}")
    valid = persons.valid_joints(joint_confidence_threshold)
    j3 = np.asarray(persons.joints_3d, dtype=np.float64)
    j2 = np.asarray(persons.joints_2d, dtype=np.float64)
    conf = np.asarray(persons.joint_confidence, dtype=np.float64)
    cov = persons.joint_covariance
    root = skeleton.root

    out_persons = []
    for i in range(n):
        joints = []
        for j in range(k):
            ok = bool(valid[i, j])
            x, y, z = (j3[i, j] if ok else (0.0, 0.0, 0.0))
            u, v = (j2[i, j] if ok else (0.0, 0.0))
            joints.append(make(
                "das_ros/msg/Keypoint3D",
                position=make("geometry_msgs/msg/Point", x=float(x), y=float(y), z=float(z)),
                u=float(u), v=float(v), confidence=min(1.0, max(0.0, _finite(conf[i, j]))), valid=ok,
                position_covariance=covariance_field(None if cov is None else cov[i, j]) if ok else [0.0] * 9,
            ))
        # The pipeline guarantees a finite root; guard anyway so this function alone never emits NaN.
        rx, ry, rz = (_finite(c) for c in j3[i, root])
        if valid[i].any():
            lo, hi = j2[i][valid[i]].min(axis=0), j2[i][valid[i]].max(axis=0)
        else:
            lo = hi = np.zeros(2)
        tid = int(persons.track_ids[i])
        out_persons.append(make(
            "das_ros/msg/Person3DPose",
            id=tid if tid >= 0 else i,
            tracking_state=int(states[i]) if states is not None else OFF,
            score=min(1.0, max(0.0, _finite(persons.scores[i]))),
            root=make("geometry_msgs/msg/Point", x=rx, y=ry, z=rz),
            root_covariance=covariance_field(None if cov is None else cov[i, root]),
            joints=joints,
            x_min=float(lo[0]), y_min=float(lo[1]), x_max=float(hi[0]), y_max=float(hi[1]),
        ))
    return make(
        POSE_TYPE,
        header=header,
        skeleton=skeleton.name,
        joint_names=list(skeleton.joint_names),
        root_index=root,
        bones=[int(i) for pair in skeleton.bones for i in pair],
        image_width=int(image_size[0]),
        image_height=int(image_size[1]),
        persons=out_persons,
    )
