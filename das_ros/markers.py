"""``Persons`` → ``visualization_msgs/MarkerArray`` skeletons for RViz (no rclpy import).

Per person: one LINE_LIST (bones between valid joints), one SPHERE_LIST (valid joints), one
TEXT_VIEW_FACING (track id above the head), all in the track's colour; optionally (``uncertainty``) a translucent
SPHERE at the root, scaled and turned into the 1σ ellipsoid of the root's position covariance. Every array starts with a
DELETEALL in our namespace, so people who left disappear at once and markers never flicker (RViz applies
the whole array before drawing); the lifetime is a safety net for when the node stops publishing.
Header = the image header (acquisition stamp, optical frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from das_core.overlay import track_color
from das_core.persons import Persons
from das_core.skeletons import Skeleton
from das_ros.factory import MessageFactory

__all__ = ["MarkerSettings", "build_marker_array", "covariance_ellipsoid", "track_color"]

# visualization_msgs/Marker constants (identical in Humble and Jazzy).
SPHERE, LINE_LIST, SPHERE_LIST, TEXT_VIEW_FACING = 2, 5, 7, 9
ADD, DELETEALL = 0, 3
# Marker ids: 4 per person (bones, joints, text, root ellipsoid), derived from the track id so RViz keeps
# identities.
MARKERS_PER_PERSON = 4
UNCERTAINTY_ALPHA = 0.3


@dataclass(frozen=True)
class MarkerSettings:
    ns: str = "das"
    lifetime: float = 0.5  # seconds, 0 = forever
    line_width: float = 0.03  # metres
    joint_size: float = 0.06  # metres
    text_size: float = 0.15  # metres
    joint_confidence_threshold: float = 0.5
    uncertainty: bool = False  # draw the root's 1σ covariance ellipsoid


def covariance_ellipsoid(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(3, 3) covariance → (diameters (3,) = 2σ along each principal axis, quaternion (x, y, z, w)).

    The quaternion turns the marker's x, y, z axes onto the eigenvectors (ascending eigenvalues), so a SPHERE
    marker with this orientation and scale is the 1σ ellipsoid. None for a missing, non-finite or not
    positive semi-definite covariance (nothing honest to draw).
    """
    c = np.asarray(cov, dtype=np.float64).reshape(3, 3)
    if not np.isfinite(c).all():
        return None
    vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
    if vals[0] < -1e-9 * max(1.0, abs(vals[-1])) or vals[-1] <= 0:
        return None
    if np.linalg.det(vecs) < 0:  # eigh may return a reflection; a rotation is needed
        vecs[:, 2] = -vecs[:, 2]
    return 2.0 * np.sqrt(np.clip(vals, 0.0, None)), Rotation.from_matrix(vecs).as_quat()


def _duration(make: MessageFactory, seconds: float) -> Any:
    sec = int(seconds)
    return make("builtin_interfaces/msg/Duration", sec=sec, nanosec=int(round((seconds - sec) * 1e9)) % 1_000_000_000)


def build_marker_array(
    make: MessageFactory,
    persons: Persons,
    header: Any,
    skeleton: Skeleton,
    settings: MarkerSettings | None = None,
) -> Any:
    """One ``MarkerArray``: DELETEALL, then 3 markers per person. ``persons.track_ids`` < 0 → frame index."""
    s = settings or MarkerSettings()
    valid = persons.valid_joints(s.joint_confidence_threshold)
    j3 = np.asarray(persons.joints_3d, dtype=np.float64)
    identity = make("geometry_msgs/msg/Pose",
                    position=make("geometry_msgs/msg/Point", x=0.0, y=0.0, z=0.0),
                    orientation=make("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0))
    lifetime = _duration(make, s.lifetime)
    root_cov = persons.root_covariance(skeleton.root) if s.uncertainty else None
    markers = [make("visualization_msgs/msg/Marker", header=header, ns=s.ns, id=0, action=DELETEALL)]

    def point(p: np.ndarray) -> Any:
        return make("geometry_msgs/msg/Point", x=float(p[0]), y=float(p[1]), z=float(p[2]))

    for i in range(len(persons)):
        if not valid[i].any():
            continue
        tid = int(persons.track_ids[i]) if int(persons.track_ids[i]) >= 0 else i
        r, g, b = track_color(tid)
        color = make("std_msgs/msg/ColorRGBA", r=float(r), g=float(g), b=float(b), a=1.0)
        base = tid * MARKERS_PER_PERSON

        def marker(offset: int, mtype: int, scale: tuple[float, float, float], color: Any = color,
                   base: int = base, **fields: Any) -> Any:
            return make("visualization_msgs/msg/Marker", header=header, ns=s.ns, id=base + offset, type=mtype,
                        action=ADD, pose=fields.pop("pose", identity),
                        scale=make("geometry_msgs/msg/Vector3", x=scale[0], y=scale[1], z=scale[2]),
                        color=color, lifetime=lifetime, **fields)

        bone_points = []
        for ja, jb in skeleton.bones:
            if valid[i, ja] and valid[i, jb]:
                bone_points += [point(j3[i, ja]), point(j3[i, jb])]
        if bone_points:
            markers.append(marker(0, LINE_LIST, (s.line_width, 0.0, 0.0), points=bone_points))
        markers.append(marker(1, SPHERE_LIST, (s.joint_size,) * 3,
                              points=[point(j3[i, j]) for j in np.flatnonzero(valid[i])]))
        # Text above the highest valid joint (smallest y: the optical frame's y points down).
        top = j3[i][valid[i]]
        top = top[np.argmin(top[:, 1])].copy()
        top[1] -= 2 * s.text_size
        text_pose = make("geometry_msgs/msg/Pose", position=point(top),
                         orientation=make("geometry_msgs/msg/Quaternion", x=0.0, y=0.0, z=0.0, w=1.0))
        markers.append(marker(2, TEXT_VIEW_FACING, (0.0, 0.0, s.text_size), pose=text_pose, text=str(tid)))
        ellipsoid = None if root_cov is None else covariance_ellipsoid(root_cov[i])
        if ellipsoid is not None and np.isfinite(j3[i, skeleton.root]).all():
            size, q = ellipsoid
            pose = make("geometry_msgs/msg/Pose", position=point(j3[i, skeleton.root]),
                        orientation=make("geometry_msgs/msg/Quaternion", x=float(q[0]), y=float(q[1]),
                                         z=float(q[2]), w=float(q[3])))
            faint = make("std_msgs/msg/ColorRGBA", r=float(r), g=float(g), b=float(b), a=UNCERTAINTY_ALPHA)
            markers.append(marker(3, SPHERE, (float(size[0]), float(size[1]), float(size[2])), color=faint,
                                  pose=pose))
    return make("visualization_msgs/msg/MarkerArray", markers=markers)
