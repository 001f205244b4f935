"""Procedural multi-person 3D scenes on the Panoptic-15 skeleton, rendered with OpenCV.

People are built on a kinematic chain from joint angles (torso lean/twist, shoulder flexion/abduction,
elbow, hip flexion/abduction, knee) with anthropometric bone lengths scaled by body height
(1.5–1.95 m), stand on a floor plane in front of a slightly tilted camera and are rendered with
per-primitive painter's-algorithm occlusion (:mod:`das_core.data.render`).

Frames: the *world* frame is x right, y down, z forward with the floor at y = 0 and the camera centre at
(0, −camera_height, 0), pitched down about x; every returned 3D point is in the camera optical frame
(x right, y down, z forward), metres.

Visibility written to annotations: a joint is visible iff it projects inside the image (the Panoptic
convention, DAS_SPEC §2.1: the 3D label is exact even when the joint is hidden). Occlusion by *other*
people is computed from a label map rendered with the same primitives and returned separately
(``occluded``); ``SceneConfig.occluded_invisible`` folds it into ``visible``.

Determinism: image ``index`` of split ``split`` with seed ``seed`` uses
``numpy.random.SeedSequence([seed, SPLIT_CODES[split], index])``; the split code is part of the entropy,
so train / val / test never share a random stream.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

import cv2
import numpy as np

from das_core.camera import Intrinsics
from das_core.data.backgrounds import PhotoLibrary
from das_core.data.camera_effects import apply_camera_effects
from das_core.data.render import (
    PART_BOTTOM,
    PART_TOP,
    Appearance,
    BodyGeometry,
    draw_people,
    joint_occlusion,
    render_background,
)

__all__ = [
    "EXTRA_POSE_KINDS",
    "FREE_ARM_RANGES",
    "POSE_KINDS",
    "REALISM_FEATURES",
    "SPLIT_CODES",
    "PoseAngles",
    "SceneConfig",
    "SyntheticScene",
    "SyntheticSequence",
    "make_person",
    "make_scene",
    "make_sequence",
    "sample_pose",
    "scene_rng",
    "with_free_arms",
]

SPLIT_CODES: dict[str, int] = {"train": 0, "val": 1, "test": 2, "demo": 3}
POSE_KINDS: tuple[str, ...] = ("standing", "walking", "arms_raised", "crouching", "sitting")
# Drawn only when asked for (``SceneConfig.everyday_pose_prob``), so the default mix stays what it was.
EXTRA_POSE_KINDS: tuple[str, ...] = ("everyday", "dynamic")
NUM_JOINTS = 15
_NECK, _NOSE, _HIP, _LSH, _LEL, _LWR, _LHP, _LKN, _LAN, _RSH, _REL, _RWR, _RHP, _RKN, _RAN = range(15)

# Anthropometric segment lengths as fractions of body height (Drillis & Contini style tables).
_THIGH, _SHIN, _ANKLE_H = 0.245, 0.246, 0.039
_HIP_HALF = 0.085
_SPINE = 0.29          # mid-hip → neck (C7)
_SHOULDER_HALF = 0.129
_SHOULDER_DROP = 0.03  # shoulder joints sit below the neck point
_UPPER_ARM, _FOREARM = 0.186, 0.146
_FOOT = 0.10


def scene_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one image (see the module docstring)."""
    if split not in SPLIT_CODES:
        raise ValueError(f"unknown split {split!r}; choose from {sorted(SPLIT_CODES)}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed} index={index}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_CODES[split], int(index)]))


# ----------------------------------------------------------------------------------------------
# Kinematics
# ----------------------------------------------------------------------------------------------


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross is ~10x slower for single vectors)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _rotate(v: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues rotation of vector ``v`` about unit ``axis`` by ``angle`` radians."""
    c, s = math.cos(angle), math.sin(angle)
    return v * c + _cross(axis, v) * s + axis * float(axis @ v) * (1.0 - c)


@dataclass(frozen=True)
class PoseAngles:
    """Joint angles in radians. Flexion is forward, abduction outward; ``lean`` tilts the torso forward."""

    lean: float = 0.0
    side_lean: float = 0.0
    twist: float = 0.0
    shoulder_flex: tuple[float, float] = (0.0, 0.0)   # (left, right)
    shoulder_abd: tuple[float, float] = (0.1, 0.1)
    elbow: tuple[float, float] = (0.2, 0.2)
    arm_rot: tuple[float, float] = (0.0, 0.0)         # upper-arm rotation: > 0 turns a bent forearm across the body
    hip_flex: tuple[float, float] = (0.0, 0.0)
    hip_abd: tuple[float, float] = (0.03, 0.03)
    knee: tuple[float, float] = (0.05, 0.05)
    head_pitch: float = 0.0
    head_yaw: float = 0.0
    kind: str = "standing"  # which family of :data:`POSE_KINDS` produced the angles (sitting gets a seat)


def sample_pose(rng: np.random.Generator, kind: str | None = None, phase: float | None = None) -> PoseAngles:
    """Random plausible angles of one of :data:`POSE_KINDS` (``phase`` in radians drives walking)."""
    kind = kind or POSE_KINDS[int(rng.choice(len(POSE_KINDS), p=[0.3, 0.3, 0.15, 0.12, 0.13]))]
    j = lambda s: float(rng.normal(0.0, s))  # noqa: E731 - local jitter helper
    head: dict[str, Any] = dict(head_pitch=j(0.15), head_yaw=j(0.3), kind=kind)
    if kind == "standing":
        return PoseAngles(
            lean=j(0.05), side_lean=j(0.04), twist=j(0.15),
            shoulder_flex=(j(0.3), j(0.3)), shoulder_abd=(abs(j(0.25)) + 0.05, abs(j(0.25)) + 0.05),
            elbow=(abs(j(0.6)) + 0.1, abs(j(0.6)) + 0.1),
            hip_flex=(j(0.08), j(0.08)), hip_abd=(abs(j(0.08)) + 0.02, abs(j(0.08)) + 0.02),
            knee=(abs(j(0.08)), abs(j(0.08))), **head,
        )
    if kind == "walking":
        ph = float(rng.uniform(0, 2 * np.pi)) if phase is None else phase
        amp = float(rng.uniform(0.25, 0.45))
        sw = math.sin(ph)
        return PoseAngles(
            lean=0.05 + j(0.03), twist=0.08 * sw,
            shoulder_flex=(0.6 * amp * sw, -0.6 * amp * sw), shoulder_abd=(0.08, 0.08),
            elbow=(0.3 + 0.2 * max(0.0, sw), 0.3 + 0.2 * max(0.0, -sw)),
            hip_flex=(-amp * sw, amp * sw), hip_abd=(0.03, 0.03),
            knee=(0.1 + 0.6 * max(0.0, math.sin(ph + 1.2)), 0.1 + 0.6 * max(0.0, math.sin(ph + 1.2 + np.pi))),
            **head,
        )
    if kind == "arms_raised":
        up = rng.random(2) < 0.7
        return PoseAngles(
            lean=j(0.05), twist=j(0.15),
            shoulder_flex=tuple(float(rng.uniform(0.5, 2.9)) if u else j(0.2) for u in up),  # type: ignore[arg-type]
            shoulder_abd=tuple(float(rng.uniform(0.1, 1.4)) for _ in range(2)),  # type: ignore[arg-type]
            elbow=tuple(float(rng.uniform(0.0, 1.8)) for _ in range(2)),  # type: ignore[arg-type]
            hip_flex=(j(0.08), j(0.08)), hip_abd=(abs(j(0.1)), abs(j(0.1))), **head,
        )
    if kind == "crouching":
        flex = float(rng.uniform(1.0, 1.9))
        return PoseAngles(
            lean=float(rng.uniform(0.3, 0.8)), twist=j(0.1),
            shoulder_flex=(float(rng.uniform(0.0, 1.2)), float(rng.uniform(0.0, 1.2))), shoulder_abd=(0.15, 0.15),
            elbow=(float(rng.uniform(0.2, 1.5)), float(rng.uniform(0.2, 1.5))),
            hip_flex=(flex + j(0.1), flex + j(0.1)), hip_abd=(float(rng.uniform(0.05, 0.35)),) * 2,
            knee=(min(2.5, 2 * flex + j(0.1)), min(2.5, 2 * flex + j(0.1))), **head,
        )
    if kind == "sitting":
        return PoseAngles(
            lean=float(rng.uniform(-0.15, 0.3)), twist=j(0.1),
            shoulder_flex=(float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9))), shoulder_abd=(0.1, 0.1),
            elbow=(float(rng.uniform(0.5, 1.6)), float(rng.uniform(0.5, 1.6))),
            hip_flex=(float(rng.uniform(1.3, 1.7)), float(rng.uniform(1.3, 1.7))),
            hip_abd=(float(rng.uniform(0.05, 0.3)),) * 2,
            knee=(float(rng.uniform(1.3, 1.8)), float(rng.uniform(1.3, 1.8))), **head,
        )
    if kind == "everyday":
        return _everyday_pose(rng, head, j)
    if kind == "dynamic":
        return _dynamic_pose(rng, head)
    raise ValueError(f"unknown pose kind {kind!r}; choose from {POSE_KINDS + EXTRA_POSE_KINDS}")


# What people in sports photos and on the move do, which the other families lack: the legs apart and unequal
# (running, lunging, kicking), the torso bent far forward, and any angle in its anatomical range ("free"). Drawn only
# when asked for (``SceneConfig.dynamic_pose_prob``).
_DYNAMIC = ("running", "lunge", "bending", "free")


def _dynamic_pose(rng: np.random.Generator, head: dict[str, Any]) -> PoseAngles:
    """Running, lunging / kicking, bending over, or free angles; the left/right roles swap at random."""
    sub = _DYNAMIC[int(rng.choice(len(_DYNAMIC), p=[0.3, 0.25, 0.2, 0.25]))]
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731 - one range draw
    pair = lambda lo, hi: (u(lo, hi), u(lo, hi))  # noqa: E731 - one draw per side
    head = {**head, "kind": "dynamic"}
    if sub == "running":
        swing = u(0.6, 1.2)
        legs = ((swing, u(1.2, 2.1)), (u(-0.5, -0.1), u(0.2, 0.9)))  # (hip flex, knee) of swing and stance leg
        arm = u(0.4, 0.9)
        arms = ((-arm, u(1.2, 1.9)), (arm, u(1.2, 1.9)))             # (shoulder flex, elbow), opposite the legs
        lean, side, twist = u(0.1, 0.4), u(-0.08, 0.08), u(-0.3, 0.3)
        abd_legs, abd_arms = pair(0.0, 0.12), pair(0.05, 0.3)
    elif sub == "lunge":
        legs = ((u(0.7, 1.7), u(0.0, 1.3)), (u(-0.5, 0.0), u(0.1, 0.9)))
        arms = ((u(-0.5, 1.6), u(0.0, 1.6)), (u(-0.5, 1.6), u(0.0, 1.6)))
        lean, side, twist = u(-0.1, 0.5), u(-0.25, 0.25), u(-0.5, 0.5)
        abd_legs, abd_arms = pair(0.0, 0.4), pair(0.1, 1.4)
    elif sub == "bending":
        lean = u(0.7, 1.4)
        knee = u(0.0, 0.6)
        legs = ((u(-0.1, 0.2), knee), (u(-0.1, 0.2), knee + u(-0.1, 0.1)))
        arms = ((u(0.2, 1.8), u(0.0, 0.9)), (u(0.2, 1.8), u(0.0, 0.9)))  # hanging down or reaching forward
        side, twist = u(-0.15, 0.15), u(-0.4, 0.4)
        abd_legs, abd_arms = pair(0.02, 0.3), pair(0.0, 0.5)
        head = {**head, "head_pitch": u(-0.7, 0.0)}  # looking up from the bent torso
    else:
        legs = ((u(-0.4, 1.6), u(0.0, 2.2)), (u(-0.4, 1.6), u(0.0, 2.2)))
        arms = ((u(-0.6, 3.0), u(0.0, 2.4)), (u(-0.6, 3.0), u(0.0, 2.4)))
        lean, side, twist = u(-0.2, 0.9), u(-0.3, 0.3), u(-0.6, 0.6)
        abd_legs, abd_arms = pair(0.0, 0.6), pair(0.0, 1.6)
        head = {**head, "head_pitch": u(-0.5, 0.5), "head_yaw": u(-0.9, 0.9)}
    if rng.random() < 0.5:  # which side leads
        legs, arms = legs[::-1], arms[::-1]
    return PoseAngles(
        lean=lean, side_lean=side, twist=twist,
        shoulder_flex=(arms[0][0], arms[1][0]), shoulder_abd=abd_arms, elbow=(arms[0][1], arms[1][1]),
        arm_rot=pair(-0.8, 0.8) if sub == "free" else (0.0, 0.0),
        hip_flex=(legs[0][0], legs[1][0]), hip_abd=abd_legs, knee=(legs[0][1], legs[1][1]), **head,
    )


# What real people do with their arms when they stand about (photos, streets, rooms), which the other families
# lack: (shoulder flex range, shoulder abduction range, elbow range, upper-arm rotation range) per arm.
_EVERYDAY_ARMS = {
    "across": ((0.1, 0.7), (0.0, 0.2), (1.3, 2.1), (0.7, 1.3)),   # arms crossed, hands together in front
    "phone": ((0.3, 0.8), (0.0, 0.25), (1.9, 2.5), (0.2, 0.7)),   # a hand at the chest or the face
    "hip": ((-0.2, 0.1), (0.5, 0.9), (1.3, 1.9), (-1.4, -0.8)),   # a hand on the hip, elbow out
    "hang": ((-0.2, 0.25), (0.05, 0.3), (0.1, 0.6), (-0.3, 0.3)),
}


# Each arm of a "free arms" person, drawn on its own (radians): forward / up to overhead, out to the side, elbow
# straight to well bent, the upper arm turned across the body or out.
FREE_ARM_RANGES = {"shoulder_flex": (-0.5, 2.6), "shoulder_abd": (0.0, 1.5), "elbow": (0.0, 2.2), "arm_rot": (-0.6, 1.0)}


def with_free_arms(rng: np.random.Generator, angles: PoseAngles) -> PoseAngles:
    """``angles`` with both arms redrawn, each on its own, from :data:`FREE_ARM_RANGES`; the rest kept.

    Why: in every pose family the arms follow from the rest of the body (hanging when standing, swinging against
    the legs when walking, forward when sitting), so a network can place synthetic arms from the body's context
    without looking at them — and erasing an arm from the image barely moves the shipped network's wrist, on
    synthetic people as on real ones (docs/RESULTS.md, "Real arms fail where synthetic ones are easiest"). Arms
    drawn apart from the pose leave it only the arm's own pixels to go by. (``SceneConfig.free_arms_prob``.)
    """
    def pair(field: str) -> tuple[float, float]:
        lo, hi = FREE_ARM_RANGES[field]
        return float(rng.uniform(lo, hi)), float(rng.uniform(lo, hi))

    return replace(angles, shoulder_flex=pair("shoulder_flex"), shoulder_abd=pair("shoulder_abd"),
                   elbow=pair("elbow"), arm_rot=pair("arm_rot"))


def _everyday_pose(rng: np.random.Generator, head: dict[str, Any], j: Any) -> PoseAngles:
    """Standing legs, each arm one of :data:`_EVERYDAY_ARMS` (crossed, phone, on the hip, hanging)."""
    names = list(_EVERYDAY_ARMS)
    arms = [_EVERYDAY_ARMS[names[int(rng.choice(len(names), p=[0.3, 0.25, 0.2, 0.25]))]] for _ in range(2)]
    pick = lambda k: tuple(float(rng.uniform(*a[k])) for a in arms)  # noqa: E731 - per-arm range draw
    return PoseAngles(
        lean=j(0.05), side_lean=j(0.04), twist=j(0.15),
        shoulder_flex=pick(0), shoulder_abd=pick(1), elbow=pick(2), arm_rot=pick(3),  # type: ignore[arg-type]
        hip_flex=(j(0.06), j(0.06)), hip_abd=(abs(j(0.08)) + 0.02, abs(j(0.08)) + 0.02),
        knee=(abs(j(0.08)), abs(j(0.08))), **{**head, "kind": "everyday"},
    )


def make_person(
    height: float, angles: PoseAngles, position: np.ndarray, heading: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Joints of one person standing on the floor, world frame (x right, y down, z forward), metres.

    Args:
        height: body height in metres.
        position: (2,) floor position (x, z) of the root's vertical projection.
        heading: facing direction, radians; 0 faces +z (away from the camera), π faces the camera.
    Returns:
        joints (15, 3), head centre (3,), feet (2, 3) — world frame.
    """
    up = np.array([0.0, -1.0, 0.0])
    fwd = np.array([math.sin(heading), 0.0, math.cos(heading)])
    left = _cross(up, fwd)  # with y down: a person facing the camera has their left on image right
    hgt = float(height)
    j = np.zeros((NUM_JOINTS, 3))
    # legs hang from the hips (root at the origin for now); side s = +1 left, −1 right
    feet = np.zeros((2, 3))
    for side, (hp, kn, an), idx in ((1.0, (_LHP, _LKN, _LAN), 0), (-1.0, (_RHP, _RKN, _RAN), 1)):
        j[hp] = side * left * _HIP_HALF * hgt
        axis_lat = left  # flexion rotates about the lateral axis (forward = positive)
        d = -up
        d = _rotate(d, axis_lat, -angles.hip_flex[idx])   # rotating −up about +left by −θ swings it forward
        d = _rotate(d, fwd, -side * angles.hip_abd[idx])   # abduction: outward
        j[kn] = j[hp] + d * _THIGH * hgt
        shin = _rotate(d, axis_lat, angles.knee[idx])     # knee bends backward
        j[an] = j[kn] + shin * _SHIN * hgt
        foot_dir = fwd - 0.25 * up
        foot_dir = foot_dir / np.linalg.norm(foot_dir)
        feet[idx] = j[an] + foot_dir * _FOOT * hgt - up * _ANKLE_H * hgt * 0.5
    # torso: lean forward about the lateral axis, side lean about forward, twist about the spine
    spine = _rotate(up, left, angles.lean)  # positive lean tips the neck forward
    spine = _rotate(spine, fwd, angles.side_lean)
    j[_NECK] = spine * _SPINE * hgt
    t_left = _rotate(left, spine, angles.twist)
    t_fwd = _cross(t_left, spine)
    for side, (sh, el, wr), idx in ((1.0, (_LSH, _LEL, _LWR), 0), (-1.0, (_RSH, _REL, _RWR), 1)):
        j[sh] = j[_NECK] + side * t_left * _SHOULDER_HALF * hgt - spine * _SHOULDER_DROP * hgt
        d = -spine
        d = _rotate(d, t_left, -angles.shoulder_flex[idx])
        d = _rotate(d, t_fwd, -side * angles.shoulder_abd[idx])
        j[el] = j[sh] + d * _UPPER_ARM * hgt
        # the elbow bends the forearm towards the front of the body
        bend_axis = _cross(d, t_fwd)
        n = np.linalg.norm(bend_axis)
        bend_axis = bend_axis / n if n > 1e-6 else t_left
        if angles.arm_rot[idx]:  # turning the upper arm about itself turns the plane the elbow bends in
            bend_axis = _rotate(bend_axis, d, side * angles.arm_rot[idx])
        fore = _rotate(d, bend_axis, -angles.elbow[idx])
        if fore @ t_fwd < d @ t_fwd - 1e-9:  # pick the rotation sense that moves the hand forward
            fore = _rotate(d, bend_axis, angles.elbow[idx])
        j[wr] = j[el] + fore * _FOREARM * hgt
    h_fwd = _rotate(_rotate(t_fwd, t_left, angles.head_pitch), spine, angles.head_yaw)
    head = j[_NECK] + spine * 0.105 * hgt + h_fwd * 0.005 * hgt
    j[_NOSE] = head + h_fwd * 0.055 * hgt - spine * 0.01 * hgt
    # stand on the floor: lift so the lowest foot point touches y = 0 (y is down)
    lowest = max(float(j[_LAN, 1]), float(j[_RAN, 1])) + _ANKLE_H * hgt
    lowest = max(lowest, float(feet[:, 1].max()))
    offset = np.array([position[0], -lowest, position[1]])
    return j + offset, head + offset, feet + offset


# ----------------------------------------------------------------------------------------------
# Scenes
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SceneConfig:
    """Ranges of the random scene. Sizes in pixels, distances in metres, angles in degrees."""

    min_size: int = 512       # long side range of the image
    max_size: int = 704
    aspects: tuple[float, ...] = (16 / 9, 16 / 10, 5 / 3, 4 / 3, 1.0, 3 / 4, 9 / 16)
    aspect_probs: tuple[float, ...] = (0.3, 0.2, 0.15, 0.15, 0.08, 0.07, 0.05)
    hfov_range: tuple[float, float] = (35.0, 100.0)   # tele … wide
    nonsquare_prob: float = 0.2
    principal_jitter: float = 0.04  # std of (cx, cy) offset as a fraction of the image size
    people_range: tuple[int, int] = (1, 8)
    depth_range: tuple[float, float] = (1.5, 12.0)
    height_range: tuple[float, float] = (1.5, 1.95)
    camera_height_range: tuple[float, float] = (1.1, 2.0)
    pitch_range: tuple[float, float] = (-2.0, 14.0)   # positive = looking down
    occluded_invisible: bool = False
    # Realism (the defaults are the basic recipe, image for image; ``SceneConfig.realistic()`` turns them on)
    child_prob: float = 0.0                              # share of people drawn from child_height_range
    child_height_range: tuple[float, float] = (1.0, 1.5)
    closeup_prob: float = 0.0                            # one person close to the camera (often cut by the frame)
    closeup_depth_range: tuple[float, float] = (0.9, 2.5)
    eye_level_prob: float = 0.0                          # share of close-ups shot level from head height (portraits)
    crowd_prob: float = 0.0                              # a crowd instead: many small people, a third seated (stands)
    crowd_people_range: tuple[int, int] = (14, 30)
    crowd_depth_range: tuple[float, float] = (4.0, 22.0)
    clothing: bool = False                               # fabric patterns, skirts/coats, long hair, hats, bags
    hands: bool = False                                  # hands beyond the wrists (else a disc on each wrist)
    everyday_pose_prob: float = 0.0                      # share of people with crossed arms, phones, hands on hips
    dynamic_pose_prob: float = 0.0                       # share of people running, lunging, bending over, free angles
    free_arms_prob: float = 0.0                          # share of people whose arms are drawn apart from their pose
    volume_shading: bool = False                         # people shaded dark at the rim, lit inside (render.py _BANDS)
    tapered_limbs: bool = False                          # limbs narrowing from shoulder / hip to wrist / ankle (render.py _TAPER)
    waistline_prob: float = 0.0                          # share of people whose top ends at a waistband above the hips
    shadows: bool = False                                # contact shadows on the floor
    max_objects: int = 0                                 # furniture boxes and poles (behind or in front of people)
    high_fixture_share: float = 0.15                     # of those objects: lamps / shelves / cameras 1.8-3.2 m up
    background_dir: str | None = None                    # folder of photos without people (PhotoLibrary)
    photo_background_prob: float = 0.0                   # the whole background is a photo crop
    photo_texture_prob: float = 0.0                      # the procedural room is textured by a photo
    camera_effects: bool = False                         # blur, exposure, white balance, noise, JPEG
    min_unoccluded_joints: int = 0                       # label a person only if this many joints show

    @classmethod
    def realistic(cls, background_dir: str | None = None, disable: tuple[str, ...] = (), **overrides: Any) -> SceneConfig:
        """The recipe for real-camera transfer: every :data:`REALISM_FEATURES` on except those in ``disable``.

        ``background_dir`` is needed for the photo features; without it they are off.
        """
        unknown = sorted(set(disable) - set(REALISM_FEATURES))
        if unknown:
            raise ValueError(f"unknown realism feature(s) {unknown}; choose from {list(REALISM_FEATURES)}")
        values: dict[str, Any] = {}
        for feature, settings in REALISM_FEATURES.items():
            if feature not in disable and not (feature == "photos" and background_dir is None):
                values.update(settings)
        if background_dir is not None and "photos" not in disable:
            values["background_dir"] = str(background_dir)
        values.update(overrides)
        names = {f.name for f in fields(cls)}
        bad = sorted(set(values) - names)
        if bad:
            raise ValueError(f"unknown SceneConfig field(s) {bad}")
        return cls(**values)

    def __post_init__(self) -> None:
        if not (16 <= self.min_size <= self.max_size):
            raise ValueError(f"need 16 <= min_size <= max_size, got {self.min_size}, {self.max_size}")
        if len(self.aspects) != len(self.aspect_probs) or not math.isclose(sum(self.aspect_probs), 1.0):
            raise ValueError("aspects and aspect_probs must have equal length and probabilities sum to 1")
        for name in ("people_range", "crowd_people_range"):
            lo, hi = getattr(self, name)
            if not (1 <= lo <= hi):
                raise ValueError(f"{name} must satisfy 1 <= lo <= hi, got {(lo, hi)}")
        for f in fields(self):
            if f.name.endswith("_prob") and not (0.0 <= getattr(self, f.name) <= 1.0):
                raise ValueError(f"{f.name} is a probability in [0, 1], got {getattr(self, f.name)}")
        if not (0.0 <= self.high_fixture_share <= 0.65):
            raise ValueError(f"high_fixture_share must be in [0, 0.65] (the rest are poles and boxes), "
                             f"got {self.high_fixture_share}")
        for name in ("depth_range", "crowd_depth_range"):
            lo, hi = getattr(self, name)
            if not (0.5 <= lo < hi):
                raise ValueError(f"{name} must satisfy 0.5 <= lo < hi, got {(lo, hi)}")


# The realism recipe, feature by feature (what ``SceneConfig.realistic(disable=...)`` switches; ablations
# in docs/RESULTS.md). "camera" randomises what a network could otherwise learn depth from besides a person's
# size and the focal length: camera height and pitch (the floor-contact / horizon cue) and the principal point.
REALISM_FEATURES: dict[str, dict[str, Any]] = {
    "camera": {"hfov_range": (35.0, 110.0), "principal_jitter": 0.08, "camera_height_range": (0.3, 2.6),
               "pitch_range": (-20.0, 30.0)},
    "people": {"people_range": (1, 12), "depth_range": (1.0, 14.0), "height_range": (1.5, 2.0), "child_prob": 0.15,
               "closeup_prob": 0.3, "eye_level_prob": 0.5, "crowd_prob": 0.08},
    "clothing": {"clothing": True},
    # a person hidden behind furniture or others is drawn but not labelled: no reward for hallucinating people
    "scene": {"shadows": True, "max_objects": 6, "min_unoccluded_joints": 4},
    "photos": {"photo_background_prob": 0.45, "photo_texture_prob": 0.25},
    "effects": {"camera_effects": True},
}


@dataclass
class SyntheticScene:
    """One rendered image and its ground truth.

    image: (H, W, 3) uint8 RGB. camera: intrinsics in pixels of ``image``.
    joints_3d: (N, 15, 3) camera frame, metres. visible: (N, 15) bool (see module docstring).
    occluded: (N, 15) bool, hidden behind another person. track_ids: (N,) int64.
    """

    image: np.ndarray
    camera: Intrinsics
    joints_3d: np.ndarray
    visible: np.ndarray
    occluded: np.ndarray
    track_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))

    @property
    def joints_2d(self) -> np.ndarray:
        """(N, 15, 2) pinhole projection in pixels of ``image``."""
        if len(self.joints_3d) == 0:
            return np.zeros((0, NUM_JOINTS, 2))
        return self.camera.project(self.joints_3d)


def _world_to_camera(pitch: float, cam_height: float) -> tuple[np.ndarray, np.ndarray]:
    """R, C with ``p_cam = R (p_world − C)``; the camera looks along +z tilted down by ``pitch``."""
    c, s = math.cos(pitch), math.sin(pitch)
    rot = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])
    return rot, np.array([0.0, -cam_height, 0.0])


def _sample_camera(rng: np.random.Generator, cfg: SceneConfig) -> tuple[int, int, Intrinsics]:
    long_side = int(rng.integers(cfg.min_size, cfg.max_size + 1))
    aspect = cfg.aspects[int(rng.choice(len(cfg.aspects), p=list(cfg.aspect_probs)))]
    if aspect >= 1:
        w, h = long_side, int(round(long_side / aspect))
    else:
        w, h = int(round(long_side * aspect)), long_side
    w, h = max(16, w - w % 2), max(16, h - h % 2)
    # horizontal FOV for landscape, the same focal-length range applied to the long side for portrait
    hfov = math.radians(float(rng.uniform(*cfg.hfov_range)))
    f = (max(w, h) / 2.0) / math.tan(hfov / 2.0)
    fx = fy = f
    if rng.random() < cfg.nonsquare_prob:
        fy = f * float(rng.uniform(0.96, 1.04))
    cx = (w - 1) / 2.0 + float(np.clip(rng.normal(0, cfg.principal_jitter), -0.1, 0.1)) * w
    cy = (h - 1) / 2.0 + float(np.clip(rng.normal(0, cfg.principal_jitter), -0.1, 0.1)) * h
    return w, h, Intrinsics(fx=fx, fy=fy, cx=cx, cy=cy)


def _sample_appearance(rng: np.random.Generator) -> Appearance:
    def color(lo: float = 20, hi: float = 235) -> tuple[int, int, int]:
        return tuple(int(v) for v in rng.uniform(lo, hi, 3))  # type: ignore[return-value]

    tone = rng.uniform(0.25, 1.0)
    skin = tuple(int(v) for v in (np.array([90, 55, 35]) + tone * np.array([150, 140, 120])))
    return Appearance(
        top=color(), bottom=color(10, 200), skin=skin,  # type: ignore[arg-type]
        shoes=color(10, 120), hair=color(5, 120), short_sleeves=bool(rng.random() < 0.4), seat=color(30, 200),
        build=float(rng.uniform(0.85, 1.2)),
    )


# Neutral clothing colours (RGB) that real crowds mostly wear: black, greys, navy, denim, beige, white, brown, olive.
_NEUTRALS = np.array([[25, 25, 28], [60, 60, 65], [110, 110, 115], [170, 170, 170], [35, 45, 80], [70, 95, 140],
                      [200, 185, 160], [235, 235, 230], [90, 65, 45], [85, 90, 55]], np.float64)


def _sample_appearance_realistic(rng: np.random.Generator) -> Appearance:
    """Wider skin tones and builds, mostly neutral clothes, skirts and coats, long hair, hats and bags."""

    def garment() -> tuple[int, int, int]:
        if rng.random() < 0.6:
            base = _NEUTRALS[int(rng.integers(len(_NEUTRALS)))] + rng.normal(0, 12, 3)
        else:
            base = rng.uniform(15, 240, 3)
        return tuple(int(v) for v in np.clip(base, 5, 250))  # type: ignore[return-value]

    tone = rng.uniform(0.05, 1.0)
    skin = tuple(int(v) for v in np.clip(np.array([70, 45, 30]) + tone * np.array([175, 160, 140])
                                         + rng.normal(0, 6, 3), 0, 255))
    build = float(rng.uniform(0.8, 1.45))
    hair = tuple(int(v) for v in np.clip(rng.choice([[20, 15, 12], [60, 40, 25], [120, 85, 50], [180, 150, 100],
                                                     [150, 150, 150]]) + rng.normal(0, 10, 3), 0, 255))
    lower = str(rng.choice(["trousers", "skirt", "coat"], p=[0.65, 0.15, 0.2]))
    bag = None if rng.random() < 0.75 else str(rng.choice(["handbag", "backpack"]))
    return Appearance(
        top=garment(), bottom=garment(), skin=skin, shoes=garment(), hair=hair,  # type: ignore[arg-type]
        short_sleeves=bool(rng.random() < 0.35), seat=garment(), build=build,
        torso_width=float(1.05 + 0.25 * (build - 0.8) / 0.65 + rng.uniform(0.0, 0.1)), lower=lower,
        long_hair=bool(rng.random() < 0.3), hat=garment() if rng.random() < 0.12 else None, bag=bag,
        bag_color=garment(), face=True,
    )


@functools.lru_cache(maxsize=4)
def _library(folder: str) -> PhotoLibrary:
    """One decoded photo library per folder and process (workers each load theirs once)."""
    return PhotoLibrary(folder)


def _fabric(rng: np.random.Generator, h: int, w: int, period: float, library: PhotoLibrary | None) -> np.ndarray:
    """(H, W, 3) float32 multiplicative fabric pattern: stripes, checks, blotches or a photo texture."""
    kinds = ["stripes", "checks", "blotches"] + (["photo"] if library is not None else [])
    kind = kinds[int(rng.integers(len(kinds)))]
    if kind == "photo" and library is not None:
        lum = library.texture(rng, w, h) ** float(rng.uniform(0.5, 1.0))
        return np.repeat(lum[..., None], 3, axis=2)
    if kind == "blotches":
        gh, gw = min(48, max(2, int(h / period))), min(48, max(2, int(w / period)))
        small = rng.normal(0, 1, (gh, gw, 3)).astype(np.float32)
        big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        return 1.0 + big * float(rng.uniform(0.1, 0.3))
    y = np.arange(h, dtype=np.float32) / period
    x = np.arange(w, dtype=np.float32) / period
    angle = float(rng.choice([0.0, math.pi / 2])) + float(rng.normal(0, 0.15))
    ca, sa = np.float32(math.cos(angle)), np.float32(math.sin(angle))
    duty = float(rng.uniform(0.3, 0.6))
    band = np.mod(np.add.outer(y * sa, x * ca), 1.0) < duty
    if kind == "checks":
        band ^= np.mod(np.add.outer(y * ca, -x * sa), 1.0) < duty
    other = rng.uniform(0.35, 1.5, 3).astype(np.float32)
    lut = np.stack([np.ones(3, np.float32), other])
    return lut[band.astype(np.uint8)]


def _apply_textures(rng: np.random.Generator, image: np.ndarray, labels: np.ndarray, parts: np.ndarray,
                    bodies: list[BodyGeometry], camera: Intrinsics, library: PhotoLibrary | None) -> None:
    """Lay a fabric pattern over some people's tops and bottoms, in place (plain garments stay plain)."""
    h, w = labels.shape
    for i, body in enumerate(bodies):
        z = float(body.joints[_HIP, 2])
        if z < 0.3:
            continue
        px_per_m = camera.focal / z
        uv = camera.project(body.joints[body.joints[:, 2] > 0.2])
        if len(uv) == 0:
            continue
        margin = 0.3 * body.height * px_per_m
        x0, y0 = (np.floor(uv.min(axis=0) - margin)).astype(int)
        x1, y1 = (np.ceil(uv.max(axis=0) + margin)).astype(int)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        for part in (PART_TOP, PART_BOTTOM):
            if rng.random() < 0.45:
                continue
            mask = (labels[y0:y1, x0:x1] == i + 1) & (parts[y0:y1, x0:x1] == part)
            rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
            if len(rows) == 0:
                continue
            r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
            mask = mask[r0:r1, c0:c1]
            period = max(2.0, float(rng.uniform(0.02, 0.12)) * px_per_m)
            pattern = _fabric(rng, r1 - r0, c1 - c0, period, library)
            crop = image[y0 + r0:y0 + r1, x0 + c0:x0 + c1]
            crop[mask] = np.clip(crop[mask].astype(np.float32) * pattern[mask], 0, 255).astype(np.uint8)


def _floor_to_image(points_xz: np.ndarray, rot: np.ndarray, centre: np.ndarray, camera: Intrinsics) -> np.ndarray | None:
    """(P, 2) floor points (world x, z) → (P, 2) pixels, or None when a point is behind the camera."""
    world = np.stack([points_xz[:, 0], np.zeros(len(points_xz)), points_xz[:, 1]], axis=1)
    cam = (world - centre) @ rot.T
    if np.any(cam[:, 2] < 0.2):
        return None
    return camera.project(cam)


def _draw_shadows(rng: np.random.Generator, image: np.ndarray, world: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
                  heights: list[float], rot: np.ndarray, centre: np.ndarray, camera: Intrinsics) -> None:
    """Soft dark contact ellipses on the floor under each person (in place), stretched away from the light."""
    h, w = image.shape[:2]
    stretch, angle = float(rng.uniform(1.0, 2.5)), float(rng.uniform(0, 2 * np.pi))
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    polys = []
    for (joints, _, _), hgt in zip(world, heights, strict=True):
        r = 0.22 * hgt
        ex, ez = r * stretch * np.cos(t), r * np.sin(t)
        xz = np.stack([joints[_HIP, 0] + ex * math.cos(angle) - ez * math.sin(angle),
                       joints[_HIP, 2] + ex * math.sin(angle) + ez * math.cos(angle)], axis=1)
        uv = _floor_to_image(xz, rot, centre, camera)
        if uv is not None and np.all(np.abs(uv) < 1e5):
            polys.append(uv)
    if not polys:
        return
    # work on the shadows' bounding box only (a full-frame blur and multiply would dominate the scene's cost)
    blur = max(1.0, 0.01 * w)
    pad = int(3 * blur) + 1
    lo = np.floor(np.min([p.min(axis=0) for p in polys], axis=0)).astype(int) - pad
    hi = np.ceil(np.max([p.max(axis=0) for p in polys], axis=0)).astype(int) + pad
    x0, y0, x1, y1 = max(0, lo[0]), max(0, lo[1]), min(w, hi[0]), min(h, hi[1])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    for p in polys:  # one call each: overlapping contours in one fillPoly call would cancel out
        cv2.fillPoly(mask, [np.round(p - [x0, y0]).astype(np.int32)], 1.0, cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), blur)
    strength = float(rng.uniform(0.25, 0.6))
    region = image[y0:y1, x0:x1]
    region[:] = np.clip(region * (1.0 - strength * mask[..., None]), 0, 255).astype(np.uint8)


def _sample_objects(rng: np.random.Generator, max_objects: int, placed: list[np.ndarray], half_fov: float,
                    rot: np.ndarray, centre: np.ndarray,
                    high_fixture_share: float) -> list[tuple[np.ndarray, tuple[int, int, int]]]:
    """Boxes (furniture) and poles on the floor and fixtures high up, as (8, 3) camera-frame corners and a colour.

    They are the hard negatives of rooms: limb-like poles, and small blobs at head height and above, where a
    network that has seen only people there puts tiny far-away people."""
    objects = []
    for _ in range(int(rng.integers(0, max_objects + 1))):
        z = float(np.exp(rng.uniform(math.log(1.0), math.log(15.0))))
        x = float(rng.uniform(-1.1, 1.1)) * z * math.tan(half_fov)
        if any(np.linalg.norm(np.array([x, z]) - p) < 0.45 for p in placed):
            continue
        kind = rng.random()
        lift = 0.0
        if kind < 0.35:  # a pole, lamp post or door frame: a limb-like hard negative
            sx = sz = float(rng.uniform(0.04, 0.15))
            sy = float(rng.uniform(0.8, 2.6))
        elif kind < 0.35 + high_fixture_share:  # a lamp, shelf, camera or sign on a wall or ceiling, 1.8-3.2 m up
            sx, sy, sz = float(rng.uniform(0.1, 0.6)), float(rng.uniform(0.08, 0.5)), float(rng.uniform(0.1, 0.4))
            lift = float(rng.uniform(1.8, 3.2))
        else:
            sx, sy, sz = float(rng.uniform(0.3, 1.6)), float(rng.uniform(0.3, 1.8)), float(rng.uniform(0.3, 1.0))
        yaw = float(rng.uniform(0, np.pi))
        c, s = math.cos(yaw), math.sin(yaw)
        corners = _floor_box(np.array([x, 0.0, z]), np.array([c, 0.0, s]), np.array([-s, 0.0, c]), sx / 2, sz / 2,
                             (-lift, -lift - sy))
        cam = (corners - centre) @ rot.T
        objects.append((cam, tuple(int(v) for v in rng.uniform(20, 235, 3))))
    return objects  # type: ignore[return-value]


def _light(rng: np.random.Generator) -> np.ndarray:
    v = np.array([rng.normal(0, 0.6), -abs(rng.normal(0.8, 0.3)), -abs(rng.normal(0.5, 0.3))])
    return v / np.linalg.norm(v)


def _finish(
    rng: np.random.Generator, image: np.ndarray, camera: Intrinsics, bodies: list[BodyGeometry],
    appearances: list[Appearance], cfg: SceneConfig, track_ids: np.ndarray,
    objects: list[tuple[np.ndarray, tuple[int, int, int]]] | None = None, library: PhotoLibrary | None = None,
) -> SyntheticScene:
    h, w = image.shape[:2]
    parts = np.zeros((h, w), np.uint8) if cfg.clothing else None
    labels = draw_people(image, bodies, appearances, camera, _light(rng), ambient=float(rng.uniform(0.45, 0.7)),
                         parts=parts, objects=objects)
    if parts is not None:
        _apply_textures(rng, image, labels, parts, bodies, camera, library)
    # global lighting: brightness / contrast gain on the whole frame (cheap LUT)
    gain, bias = float(rng.uniform(0.75, 1.2)), float(rng.uniform(-20, 20))
    lut = np.clip(np.arange(256) * gain + bias, 0, 255).astype(np.uint8)
    image = cv2.LUT(image, lut)
    if cfg.camera_effects:
        image = apply_camera_effects(image, rng)
    if not bodies:
        z = np.zeros((0, NUM_JOINTS), bool)
        return SyntheticScene(image, camera, np.zeros((0, NUM_JOINTS, 3)), z, z.copy(), track_ids)
    joints = np.stack([b.joints for b in bodies])
    uv = camera.project(joints)
    inside = (uv[..., 0] >= -0.5) & (uv[..., 0] <= w - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= h - 0.5)
    inside &= joints[..., 2] > 0.1
    occluded = joint_occlusion(labels, uv)
    visible = inside & ~occluded if cfg.occluded_invisible else inside
    keep = visible.any(axis=1)
    if cfg.min_unoccluded_joints > 0:
        keep &= (inside & ~occluded).sum(axis=1) >= cfg.min_unoccluded_joints
    return SyntheticScene(image, camera, joints[keep], visible[keep], occluded[keep], track_ids[keep])


def _seat(joints: np.ndarray, height: float, heading: float) -> np.ndarray:
    """(8, 3) world corners of a box seat under a sitting person's hips (top just below the hips)."""
    fwd = np.array([math.sin(heading), 0.0, math.cos(heading)])
    side = np.array([fwd[2], 0.0, -fwd[0]])
    hip = joints[_HIP] - fwd * 0.06 * height
    top = hip[1] + 0.055 * height  # y is down: the seat surface is a little lower than the hip joints
    return _floor_box(hip, side, fwd, 0.21, 0.21, (top, 0.0))


def _floor_box(base: np.ndarray, side: np.ndarray, fwd: np.ndarray, half_side: float, half_fwd: float,
               heights: tuple[float, float]) -> np.ndarray:
    """(8, 3) world corners of an upright box: its footprint about ``base`` along ``side`` / ``fwd``, at two heights y."""
    corners = []
    for y in heights:
        for a, b in ((-1, -1), (-1, 1), (1, 1), (1, -1)):
            p = base + side * a * half_side + fwd * b * half_fwd
            corners.append([p[0], y, p[2]])
    return np.asarray(corners)


def _bodies_to_camera(world: list[tuple[np.ndarray, np.ndarray, np.ndarray]], heights: list[float],
                      rot: np.ndarray, centre: np.ndarray) -> list[BodyGeometry]:
    return [
        BodyGeometry(joints=(j - centre) @ rot.T, head=(hd - centre) @ rot.T, feet=(ft - centre) @ rot.T, height=hgt)
        for (j, hd, ft), hgt in zip(world, heights, strict=True)
    ]


def make_scene(seed: int, split: str, index: int, cfg: SceneConfig | None = None) -> SyntheticScene:
    """Render image ``index`` of ``split`` (deterministic in ``(seed, split, index, cfg)``)."""
    cfg = cfg or SceneConfig()
    rng = scene_rng(seed, split, index)
    w, h, camera = _sample_camera(rng, cfg)
    # drawn only when the recipe has close-ups / crowds, so the basic recipe's random stream is untouched
    closeup = cfg.closeup_prob > 0 and rng.random() < cfg.closeup_prob
    eye_level = closeup and rng.random() < cfg.eye_level_prob
    crowd = not closeup and cfg.crowd_prob > 0 and rng.random() < cfg.crowd_prob
    cam_height = float(rng.uniform(*cfg.camera_height_range))
    pitch = math.radians(float(rng.uniform(*cfg.pitch_range)))
    if eye_level:
        # a person in front of a camera at head height, looking level: head and torso in view, legs cut off
        # (portraits, a robot's eye level) — the framing real photos are full of and the floor camera misses
        cam_height = float(rng.uniform(1.15, 1.75))
        pitch = math.radians(float(rng.uniform(-8.0, 6.0)))
    rot, centre = _world_to_camera(pitch, cam_height)
    people_range = cfg.crowd_people_range if crowd else cfg.people_range
    depth_range = cfg.crowd_depth_range if crowd else cfg.depth_range
    n_target = int(rng.integers(people_range[0], people_range[1] + 1))
    half_fov = math.atan(((w - 1) / 2.0 + abs(camera.cx - (w - 1) / 2.0)) / camera.fx)
    placed: list[np.ndarray] = []
    world, heights = [], []
    seats: list[np.ndarray | None] = []
    z_lo = min(depth_range[0], cfg.closeup_depth_range[0]) if closeup else depth_range[0]
    for _ in range(n_target * 6):  # rejection sampling of non-overlapping floor positions
        if len(placed) >= n_target:
            break
        if closeup and not placed:  # the first person stands close, near the optical axis
            z = float(rng.uniform(*cfg.closeup_depth_range))
            x_lim = z * math.tan(half_fov) * 0.6
        else:
            # log-uniform depth: as many people between 1.5 and 3 m as between 6 and 12 m
            z = float(np.exp(rng.uniform(math.log(depth_range[0]), math.log(depth_range[1]))))
            x_lim = z * math.tan(half_fov) * 1.05
        x = float(rng.uniform(-x_lim, x_lim))
        pos = np.array([x, z])
        if any(np.linalg.norm(pos - p) < 0.55 for p in placed):
            continue
        if cfg.child_prob > 0 and rng.random() < cfg.child_prob:
            hgt = float(rng.uniform(*cfg.child_height_range))
        else:
            hgt = float(rng.uniform(*cfg.height_range))
        heading = float(rng.uniform(-np.pi, np.pi))
        # a crowd in the stands or on a square: many sit (seated people are what real crowds are full of)
        kind = "sitting" if crowd and rng.random() < 0.35 else None
        if kind is None and cfg.everyday_pose_prob > 0 and rng.random() < cfg.everyday_pose_prob:
            kind = "everyday"
        if kind is None and cfg.dynamic_pose_prob > 0 and rng.random() < cfg.dynamic_pose_prob:
            kind = "dynamic"
        angles = sample_pose(rng, kind)
        if cfg.free_arms_prob > 0 and rng.random() < cfg.free_arms_prob:
            angles = with_free_arms(rng, angles)
        person = make_person(hgt, angles, pos, heading)
        root_cam = (person[0][_HIP] - centre) @ rot.T
        if not (z_lo * 0.9 <= root_cam[2] <= depth_range[1] * 1.1):
            continue
        placed.append(pos)
        world.append(person)
        heights.append(hgt)
        seats.append(_seat(person[0], hgt, heading) if angles.kind == "sitting" else None)
    library = _library(cfg.background_dir) if cfg.background_dir else None
    image = _background(rng, cfg, library, w, h, camera, cam_height, pitch)
    if cfg.shadows:
        _draw_shadows(rng, image, world, heights, rot, centre, camera)
    bodies = _bodies_to_camera(world, heights, rot, centre)
    bodies = [b if st is None else replace(b, seat=(st - centre) @ rot.T) for b, st in zip(bodies, seats, strict=True)]
    objects = (_sample_objects(rng, cfg.max_objects, placed, half_fov, rot, centre, cfg.high_fixture_share)
               if cfg.max_objects else None)
    sample = _sample_appearance_realistic if cfg.clothing else _sample_appearance
    looks = [sample(rng) for _ in bodies]
    # No random draw for these: the rest of the scene stays what it was. Volume shading changes only the people's
    # pixels, never a label; hands and tapered limbs change silhouettes, and so occlusion flags.
    if cfg.hands or cfg.volume_shading or cfg.tapered_limbs:
        looks = [replace(a, hands=a.hands or cfg.hands, volume_shading=a.volume_shading or cfg.volume_shading,
                         tapered=a.tapered or cfg.tapered_limbs) for a in looks]
    if cfg.waistline_prob > 0:
        looks = [_with_waistline(a, cfg.waistline_prob) for a in looks]
    return _finish(rng, image, camera, bodies, looks, cfg, np.arange(len(bodies), dtype=np.int64), objects, library)


WAIST_RANGE = (0.08, 0.3)  # of the hip → shoulder line above the hip joints: low-rise trousers to a high waist


def _with_waistline(a: Appearance, prob: float) -> Appearance:
    """``a`` with, at odds ``prob``, its top ending at a waistband :data:`WAIST_RANGE` above the hip joints.

    Why: the basic body's top garment ends exactly at the hip joints, so the colour boundary between top and
    bottom *is* the hip line; on real people the waistband sits above the hip joints (by ~0.06 of the body height
    for an adult) and the shipped network put real hips 3.5-4 % of the height too high (docs/RESULTS.md, "Where
    the joints go"). The draw comes from a generator seeded by the person's own colours, not from the scene's
    stream, so every other random choice of the scene, and every label, stays what it was.
    """
    own = np.random.default_rng([*a.top, *a.bottom, *a.skin, *a.hair])
    if own.random() >= prob:
        return a
    return replace(a, waist=float(own.uniform(*WAIST_RANGE)))


def _background(rng: np.random.Generator, cfg: SceneConfig, library: PhotoLibrary | None, w: int, h: int,
                camera: Intrinsics, cam_height: float, pitch: float) -> np.ndarray:
    """A photo crop, the procedural room textured by a photo, or the procedural room (by the config's odds)."""
    u = float(rng.random()) if library is not None else 1.0
    if library is not None and u < cfg.photo_background_prob:
        return library.crop(rng, w, h)
    image = render_background(rng, w, h, camera, cam_height, pitch)
    if library is not None and u < cfg.photo_background_prob + cfg.photo_texture_prob:
        tex = library.texture(rng, w, h) ** float(rng.uniform(0.4, 1.0))
        image = np.clip(image * tex[..., None], 0, 255).astype(np.uint8)
    return image


# ----------------------------------------------------------------------------------------------
# Sequences (demo)
# ----------------------------------------------------------------------------------------------


@dataclass
class SyntheticSequence:
    """A short video of a moving crowd seen by a fixed camera.

    frames: list of :class:`SyntheticScene` (same ``camera`` for all), ``track_ids`` stable per person.
    fps: frames per second the motion was simulated at.
    """

    frames: list[SyntheticScene]
    camera: Intrinsics
    fps: float


def make_sequence(
    num_frames: int = 60,
    seed: int = 0,
    width: int = 640,
    height: int = 384,
    num_people: int = 5,
    fps: float = 15.0,
    hfov_deg: float = 70.0,
    cfg: SceneConfig | None = None,
) -> SyntheticSequence:
    """People walking on smooth curved paths, entering and leaving the view; fixed intrinsics.

    ``num_people`` walkers are on stage at any time on average; a walker that leaves the stage area is
    replaced by a new one (new track id) entering from a side.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    cfg = cfg or SceneConfig()
    rng = scene_rng(seed, "demo", 0)
    camera = Intrinsics.from_fov(width, height, hfov_deg)
    cam_height, pitch = 1.6, math.radians(8.0)
    rot, centre = _world_to_camera(pitch, cam_height)
    bg_rng = scene_rng(seed, "demo", 1)
    background = render_background(bg_rng, width, height, camera, cam_height, pitch)
    half = math.atan((width / 2.0) / camera.fx)
    dt = 1.0 / fps

    def new_walker(track: int, inside: bool) -> dict:
        z = float(rng.uniform(2.5, 10.0))
        x_edge = z * math.tan(half) + 0.8
        if inside:
            x = float(rng.uniform(-x_edge + 0.8, x_edge - 0.8))
            direction = float(rng.choice([-1.0, 1.0]))
        else:
            direction = float(rng.choice([-1.0, 1.0]))
            x = -direction * x_edge
        return {
            "id": track, "pos": np.array([x, z]), "heading": math.atan2(direction, float(rng.normal(0, 0.3))),
            "speed": float(rng.uniform(0.8, 1.5)), "turn": float(rng.normal(0, 0.15)),
            "phase": float(rng.uniform(0, 2 * np.pi)), "height": float(rng.uniform(*cfg.height_range)),
            "look": _sample_appearance(rng), "stride": float(rng.uniform(1.3, 1.6)),
        }

    walkers = [new_walker(i, inside=True) for i in range(num_people)]
    next_id = num_people
    frames: list[SyntheticScene] = []
    for _ in range(num_frames):
        bodies, looks, ids = [], [], []
        for wk in walkers:
            # a per-walker stream re-seeded every frame: gait amplitude and head pose stay that walker's own
            pose = sample_pose(np.random.default_rng([seed, wk["id"]]), "walking", phase=wk["phase"])
            j, hd, ft = make_person(wk["height"], pose, wk["pos"], wk["heading"])
            bodies.append(BodyGeometry((j - centre) @ rot.T, (hd - centre) @ rot.T, (ft - centre) @ rot.T, wk["height"]))
            looks.append(wk["look"])
            ids.append(wk["id"])
        frame_rng = scene_rng(seed, "demo", 2)  # the same lighting every frame (no flicker)
        scene = _finish(frame_rng, background.copy(), camera, bodies, looks, cfg, np.asarray(ids, np.int64))
        frames.append(scene)
        # advance: smooth heading drift, walking phase from distance travelled
        for wk in walkers:
            wk["turn"] = 0.9 * wk["turn"] + float(rng.normal(0, 0.05))
            wk["heading"] += wk["turn"] * dt
            step = wk["speed"] * dt
            wk["pos"] = wk["pos"] + step * np.array([math.sin(wk["heading"]), math.cos(wk["heading"])])
            wk["phase"] += 2 * np.pi * step / wk["stride"]
        for i, wk in enumerate(walkers):
            x, z = wk["pos"]
            if z < 1.5 or z > 13.0 or abs(x) > z * math.tan(half) + 1.5:
                walkers[i] = new_walker(next_id, inside=False)
                next_id += 1
    return SyntheticSequence(frames=frames, camera=camera, fps=fps)
