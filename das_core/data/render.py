"""Fast OpenCV rendering of synthetic people and backgrounds (no per-pixel Python).

People are drawn as shaded capsules (limbs), a convex torso, a head disc, hands and feet, z-ordered *per
primitive* by camera depth (painter's algorithm, far first), with anti-aliasing. The same primitives are
drawn (without anti-aliasing) into a label map holding ``person index + 1`` so occlusion by *other*
people can be read back at every joint pixel. Images are RGB uint8 (H, W, 3); 3D points are metres in
the camera optical frame; pixels follow the pixel-centre convention of :mod:`das_core.camera`.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from das_core.camera import Intrinsics
from das_core.data.camera_effects import gaussian_tile, noise_field

__all__ = [
    "PART_ACCESSORY", "PART_BOTTOM", "PART_HAIR", "PART_SHOES", "PART_SKIN", "PART_TOP",
    "Appearance", "BodyGeometry", "draw_people", "joint_occlusion", "render_background",
]

# Part codes of the optional part map (what each pixel of a person is: clothing textures are applied per part).
PART_TOP, PART_BOTTOM, PART_SKIN, PART_HAIR, PART_SHOES, PART_ACCESSORY = 1, 2, 3, 4, 5, 6
_LOWER_KINDS = ("trousers", "skirt", "coat")

# Sub-pixel precision for cv2 drawing (coordinates are passed as fixed point with this many bits).
_SHIFT = 4
_ONE = 1 << _SHIFT
_NEAR = 0.2  # metres: primitives with a point closer than this are not drawn
_OBJECT = 255  # label-map value of non-person objects (seats)
_VOLUME = 8  # kind flag: draw the primitive with volume shading (Appearance.volume_shading)
# Limb radius at its (proximal, distal) end as a share of the capsule radius (Appearance.tapered): a thigh is
# about twice as wide at the hip as at the ankle's end of the shin, a forearm narrows to the wrist.
_TAPER = {(3, 4): (1.1, 0.85), (9, 10): (1.1, 0.85), (4, 5): (0.95, 0.7), (10, 11): (0.95, 0.7),
          (6, 7): (1.15, 0.78), (12, 13): (1.15, 0.78), (7, 8): (0.95, 0.62), (13, 14): (0.95, 0.62)}
# Volume shading: (brightness factor, size, shift towards the light as a share of the radius) per band, rim first.
# A real limb, head or torso darkens towards its silhouette and is brightest off-axis towards the light; one
# flat colour with a single highlight stripe reads as a cut-out, not as a body.
_BANDS = ((0.72, 1.0, 0.0), (0.8, 0.86, 0.05), (0.88, 0.72, 0.1), (0.95, 0.58, 0.15), (1.02, 0.44, 0.2),
          (1.08, 0.3, 0.25))


@dataclass(frozen=True)
class Appearance:
    """Colours (RGB 0..255) of one person."""

    top: tuple[int, int, int]
    bottom: tuple[int, int, int]
    skin: tuple[int, int, int]
    shoes: tuple[int, int, int]
    hair: tuple[int, int, int]
    short_sleeves: bool = False
    seat: tuple[int, int, int] = (95, 75, 55)
    build: float = 1.0  # limb thickness multiplier
    # Silhouette beyond the basic capsule body (the defaults draw exactly the basic body):
    torso_width: float = 1.12                    # torso outline scale about its centre (coats, heavy builds)
    lower: str = "trousers"                      # "trousers" | "skirt" (hips→knees) | "coat" (shoulders→knees)
    long_hair: bool = False                      # hair falling from the head to the shoulders
    hat: tuple[int, int, int] | None = None      # a cap on the head, this colour
    bag: str | None = None                       # None | "handbag" (at a hip) | "backpack" (behind the torso)
    bag_color: tuple[int, int, int] = (60, 50, 40)
    face: bool = False                           # eyes and a mouth on the side of the head the nose points to
    hands: bool = False                          # a hand beyond each wrist, along the forearm (else a wrist disc)
    volume_shading: bool = False                 # limbs, head and torso shaded dark at the rim to lit inside
    tapered: bool = False                        # limbs wider at the shoulder / hip than at the wrist / ankle
    # Where the top ends, as a fraction of the hip → shoulder line above the hip joints, the bottom garment covering
    # the pelvis below it (a waistband); None: the top reaches the hip joints, the basic body's colour boundary.
    waist: float | None = None


@dataclass(frozen=True)
class BodyGeometry:
    """3D render points of one person, camera frame, metres.

    joints: (15, 3) Panoptic-15 joints; head: (3,) head centre; feet: (2, 3) toe points (left, right);
    height: body height in metres (limb radii are fractions of it); seat: optional (8, 3) box corners.
    """

    joints: np.ndarray
    head: np.ndarray
    feet: np.ndarray
    height: float
    seat: np.ndarray | None = None  # (8, 3) corners of a box the person sits on, or None


# Panoptic-15 indices used below (DAS_SPEC §1.1).
_NECK, _NOSE, _HIP, _LSH, _LEL, _LWR, _LHP, _LKN, _LAN, _RSH, _REL, _RWR, _RHP, _RKN, _RAN = range(15)


def _shade(color: tuple[int, int, int], factor: float) -> tuple[float, float, float]:
    return tuple(float(min(255.0, c * factor)) for c in color)  # type: ignore[return-value]


def draw_people(
    canvas: np.ndarray,
    bodies: list[BodyGeometry],
    appearances: list[Appearance],
    camera: Intrinsics,
    light: np.ndarray,
    ambient: float = 0.55,
    parts: np.ndarray | None = None,
    objects: list[tuple[np.ndarray, tuple[int, int, int]]] | None = None,
) -> np.ndarray:
    """Draw people onto ``canvas`` (H, W, 3) uint8 RGB in place; return the (H, W) uint8 label map.

    Args:
        light: (3,) unit vector towards the light, camera frame (used for cheap Lambert shading).
        ambient: share of unlit brightness.
        parts: optional (H, W) uint8 map, filled in place with the ``PART_*`` code of the front-most person
            surface (0 elsewhere), for per-garment textures.
        objects: optional non-person boxes ((8, 3) camera-frame corners, colour) depth-sorted with the people,
            so furniture can stand in front of a person as well as behind.
    Returns:
        labels: (H, W) uint8, 0 background, i + 1 where person i is the front-most drawn surface, 255 objects.
    """
    h, w = canvas.shape[:2]
    labels = np.zeros((h, w), np.uint8)
    light = np.asarray(light, np.float64)
    lit = 1.0 - ambient
    # (depth, kind, label, part, payload): kind 0 capsule, 1 disc, 2 convex polygon; payload in fixed-point px
    prims: list[tuple[float, int, int, int, tuple]] = []
    for i, (b, a) in enumerate(zip(bodies, appearances, strict=True)):
        own = _person_prims(i + 1, b, a, camera, light, ambient, lit)
        if a.volume_shading:  # the person's own surfaces; the seat under a sitter stays a flat object
            own = [(d, k | _VOLUME if lab != _OBJECT else k, lab, part, pl) for d, k, lab, part, pl in own]
        prims += own
    for corners, color in objects or ():
        if np.all(corners[:, 2] >= _NEAR):
            ouv = camera.project(corners)
            if np.all(np.abs(ouv) < 1e5):
                hull = cv2.convexHull(np.round(ouv * _ONE).astype(np.int32))
                prims.append((float(corners[:, 2].mean()), 2, _OBJECT, 0, (hull, _shade(color, ambient + lit * 0.7))))
    prims.sort(key=lambda x: -x[0])
    for _, kind, label, part, payload in prims:
        _draw_prim(canvas, labels, parts, kind, label, part, payload, light)
    return labels


def _person_prims(label: int, b: BodyGeometry, a: Appearance, camera: Intrinsics, light: np.ndarray,
                  ambient: float, lit: float) -> list[tuple[float, int, int, int, tuple]]:
    """The depth-tagged primitives of one person (capsule limbs, discs, torso and clothing polygons)."""
    f = camera.focal
    j, hgt, t = b.joints, b.height, a.build
    # render points: 0..14 joints, 15 head, 16/17 feet, 18 hair, 19/20 spine capsule ends, 21-24 hand capsule ends
    hair = b.head + (b.head - j[_NOSE]) * 0.35  # behind and above the face centre
    pts = np.concatenate([j, b.head[None], b.feet, hair[None],
                          (j[_NECK] * 0.8 + j[_HIP] * 0.2)[None], (j[_HIP] * 0.8 + j[_NECK] * 0.2)[None],
                          _hand_points(j, hgt)])
    z = pts[:, 2]
    uv = camera.project(np.concatenate([pts[:, :2], np.maximum(z, _NEAR)[:, None]], axis=1))
    ok = (z >= _NEAR) & np.all(np.abs(uv) < 1e5, axis=1)
    fx = np.round(uv * _ONE).astype(np.int64).tolist()
    arm_lo = a.skin if a.short_sleeves else a.top
    arm_lo_part = PART_SKIN if a.short_sleeves else PART_TOP
    caps = (
        (_LSH, _LEL, 0.030 * t, a.top, PART_TOP), (_RSH, _REL, 0.030 * t, a.top, PART_TOP),
        (_LEL, _LWR, 0.024 * t, arm_lo, arm_lo_part), (_REL, _RWR, 0.024 * t, arm_lo, arm_lo_part),
        (_LHP, _LKN, 0.050 * t, a.bottom, PART_BOTTOM), (_RHP, _RKN, 0.050 * t, a.bottom, PART_BOTTOM),
        (_LKN, _LAN, 0.036 * t, a.bottom, PART_BOTTOM), (_RKN, _RAN, 0.036 * t, a.bottom, PART_BOTTOM),
        (_LAN, 16, 0.026, a.shoes, PART_SHOES), (_RAN, 17, 0.026, a.shoes, PART_SHOES),
        (_NECK, 15, 0.032, a.skin, PART_SKIN),
        (19, 20, 0.085 * t, a.top, PART_TOP),  # a torso seen from the side still has thickness
    )
    ia = np.array([c[0] for c in caps])
    ib = np.array([c[1] for c in caps])
    d = pts[ib] - pts[ia]
    dn = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
    # Lambert-ish: a cylinder's brightest side faces the light; brightness ~ sin(limb, light)
    lam = np.sqrt(np.clip(1.0 - (dn @ light) ** 2, 0.0, 1.0))
    zm = 0.5 * (z[ia] + z[ib])
    prims: list[tuple[float, int, int, int, tuple]] = []
    for c_i, (pa, pb, r, col, part) in enumerate(caps):
        if ok[pa] and ok[pb]:
            rad = r * hgt * f / zm[c_i]
            ta, tb = _TAPER.get((pa, pb), (1.0, 1.0)) if a.tapered else (1.0, 1.0)
            ends = (rad * ta * zm[c_i] / z[pa], rad * tb * zm[c_i] / z[pb])  # each end at its own depth
            payload = (fx[pa], fx[pb], rad, _shade(col, ambient + lit * lam[c_i]))
            # With a waistline the spine capsule goes behind the torso outline, whose split colours it would
            # otherwise paint over (its round end reaches below the hips); seen from the side it still shows.
            depth = float(zm[c_i]) + (0.05 if a.waist is not None and (pa, pb) == (19, 20) else 0.0)
            prims.append((depth, 0, label, part, payload + (ends,) if ta != tb else payload))
    if a.hands:  # the wrist joint is where a real hand starts: its palm and fingers lie beyond it
        for pa, pb in ((21, 22), (23, 24)):
            if ok[pa] and ok[pb]:
                zh = 0.5 * (z[pa] + z[pb])
                prims.append((zh - 0.01, 0, label, PART_SKIN,
                              (fx[pa], fx[pb], 0.021 * hgt * f / zh, _shade(a.skin, ambient + lit * 0.9))))
        discs = []
    else:
        discs = [(_LWR, 0.03, a.skin, -0.01, PART_SKIN), (_RWR, 0.03, a.skin, -0.01, PART_SKIN)]
    discs += [(15, 0.064, a.skin, 0.0, PART_SKIN), (18, 0.062, a.hair, 0.02, PART_HAIR)]
    if a.hat is not None:  # a cap sits on top of the hair, slightly in front of it
        discs.append((18, 0.058, a.hat, 0.015, PART_ACCESSORY))
    for k, r, col, dz, part in discs:
        if ok[k]:
            prims.append((float(z[k]) + dz, 1, label, part, (fx[k], r * hgt * f / z[k], _shade(col, ambient + lit * 0.8),
                                                             _shade(col, ambient + lit * 1.15))))
    if a.face:
        prims += _face_prims(label, b, a, camera, ambient, lit)
    prims += _clothing_prims(label, pts, uv, ok, a, ambient, lit, light)
    if b.seat is not None and np.all(b.seat[:, 2] >= _NEAR):
        suv = camera.project(b.seat)
        if np.all(np.abs(suv) < 1e5):
            hull = cv2.convexHull(np.round(suv * _ONE).astype(np.int32))
            # drawn just behind its sitter (who always covers it) and labelled as an object, not a person
            prims.append((float(z.max()) + 0.05, 2, _OBJECT, 0, (hull, _shade(a.seat, ambient + lit * 0.6))))
    return prims


def _hand_points(j: np.ndarray, height: float) -> np.ndarray:
    """(4, 3) ends of the left and right hand capsules: from just past each wrist to a hand length (~0.1 of the
    body height) beyond it, along the forearm."""
    out = []
    for el, wr in ((_LEL, _LWR), (_REL, _RWR)):
        d = j[wr] - j[el]
        d = d / max(float(np.linalg.norm(d)), 1e-9)
        out += [j[wr] + d * 0.012 * height, j[wr] + d * 0.075 * height]
    return np.stack(out)


def _face_prims(label: int, b: BodyGeometry, a: Appearance, camera: Intrinsics, ambient: float,
                lit: float) -> list[tuple[float, int, int, int, tuple]]:
    """Two eyes and a mouth as small discs just in front of the head disc, where the nose points.

    Depth-sorted with everything else, so a face turned away lands behind its own head disc and is hidden;
    only drawn while the head faces the camera (a face seen edge-on would float beside the head).
    """
    hgt = b.height
    spine = b.head - b.joints[_NECK]
    spine = spine / max(float(np.linalg.norm(spine)), 1e-9)
    fwd = b.joints[_NOSE] - b.head
    fwd = fwd / max(float(np.linalg.norm(fwd)), 1e-9)
    to_camera = -b.head / max(float(np.linalg.norm(b.head)), 1e-9)
    if float(fwd @ to_camera) < 0.35 or b.head[2] < _NEAR:
        return []
    side = np.cross(spine, fwd)
    front = b.head + fwd * 0.058 * hgt
    dark = tuple(float(v) * 0.25 for v in a.hair)
    lips = _shade((int(a.skin[0] * 0.75) + 30, int(a.skin[1] * 0.55), int(a.skin[2] * 0.55)), ambient + lit * 0.7)
    # left eye, right eye, mouth
    pts = np.stack([front - side * 0.021 * hgt + spine * 0.012 * hgt, front + side * 0.021 * hgt + spine * 0.012 * hgt,
                    front - spine * 0.03 * hgt])
    uvs = camera.project(pts)
    prims: list[tuple[float, int, int, int, tuple]] = []
    for p, uv, r, col in zip(pts, uvs, (0.0065, 0.0065, 0.008), (dark, dark, lips), strict=True):
        if np.all(np.abs(uv) < 1e5):
            rad = r * hgt * camera.focal / float(p[2])
            if rad >= 0.6:  # below a pixel a feature is noise, not a face
                prims.append((float(b.head[2]) - 0.01, 1, label, PART_SKIN,
                              (np.round(uv * _ONE).astype(np.int64).tolist(), rad, col, col)))
    return prims


def _polygon(points_uv: np.ndarray) -> np.ndarray:
    return cv2.convexHull(np.round(points_uv * _ONE).astype(np.int32))


def _clothing_prims(label: int, pts: np.ndarray, uv: np.ndarray, ok: np.ndarray, a: Appearance, ambient: float,
                    lit: float, light: np.ndarray) -> list[tuple[float, int, int, int, tuple]]:
    """Torso outline, then the optional skirt / coat, long hair and bag polygons (image-space hulls)."""
    prims: list[tuple[float, int, int, int, tuple]] = []
    z = pts[:, 2]
    torso = [_LSH, _RSH, _RHP, _LHP]
    if not ok[torso].all():
        return prims
    tuv = uv[torso]
    cen = tuv.mean(axis=0)
    normal = np.cross(pts[_RSH] - pts[_LSH], pts[_LHP] - pts[_LSH])
    nn = float(np.linalg.norm(normal))
    lam_t = abs(float(normal @ light)) / nn if nn > 1e-9 else 0.5
    shade_top = _shade(a.top, ambient + lit * lam_t)
    zt = float(z[torso].mean())
    if a.waist is None:
        prims.append((zt, 2, label, PART_TOP, (_polygon(cen + (tuv - cen) * a.torso_width), shade_top)))
    else:  # the same outline, split at the waist: top above, the bottom garment's waistband and pelvis below,
        # down to the crotch (12 % of the torso's length below the hip joints, as trousers cover it)
        sh, hp = tuv[:2], tuv[[3, 2]]  # (left, right) shoulders and hips
        waist = hp + (sh - hp) * a.waist
        upper = np.concatenate([sh, waist])
        lower = np.concatenate([waist, hp, (hp + (hp - sh) * 0.12).mean(axis=0, keepdims=True)])
        prims.append((zt, 2, label, PART_TOP, (_polygon(cen + (upper - cen) * a.torso_width), shade_top)))
        prims.append((zt, 2, label, PART_BOTTOM, (_polygon(cen + (lower - cen) * a.torso_width),
                                                  _shade(a.bottom, ambient + lit * lam_t))))
    if a.lower in ("skirt", "coat") and ok[[_LKN, _RKN]].all():
        # a flared shell from the hips (or shoulders) to just below the knees, in front of the thighs
        knees = uv[[_LKN, _RKN]]
        kc = knees.mean(axis=0)
        hem = kc + (knees - kc) * 1.9 + (knees - uv[[_LHP, _RHP]]) * 0.15
        top_pts = uv[[_LSH, _RSH]] if a.lower == "coat" else uv[[_LHP, _RHP]]
        top_c = top_pts.mean(axis=0)
        poly = np.concatenate([top_c + (top_pts - top_c) * 1.2, hem])
        col, part = (shade_top, PART_TOP) if a.lower == "coat" else (_shade(a.bottom, ambient + lit * lam_t), PART_BOTTOM)
        depth = float(min(z[[_LHP, _RHP, _LKN, _RKN]].mean(), zt)) - 0.03
        prims.append((depth, 2, label, part, (_polygon(poly), col)))
    if a.long_hair and ok[[15, 18, _LSH, _RSH]].all():
        # hair from the crown down to the shoulders, behind the head and neck
        sh = uv[[_LSH, _RSH]]
        poly = np.concatenate([uv[[18]], uv[[15]] + (uv[[15]] - uv[[_NOSE]]) * 0.2,
                               sh.mean(axis=0) + (sh - sh.mean(axis=0)) * 0.55])
        prims.append((float(z[18]) + 0.04, 2, label, PART_HAIR, (_polygon(poly), _shade(a.hair, ambient + lit * 0.5))))
    if a.bag is not None:
        side = _LHP if a.bag == "handbag" else _NECK
        lo = _LKN if a.bag == "handbag" else _HIP
        if ok[[side, lo]].all():
            c0, c1 = uv[side], uv[side] * 0.45 + uv[lo] * 0.55
            half = 0.35 * float(np.linalg.norm(c1 - c0)) + 1.0
            perp = np.array([-(c1 - c0)[1], (c1 - c0)[0]])
            perp = perp / max(float(np.linalg.norm(perp)), 1e-6) * half
            poly = np.stack([c0 + perp, c0 - perp, c1 - perp, c1 + perp])
            # a backpack hangs behind the torso (visible from behind), a handbag at the hip in front
            depth = zt + (0.12 if a.bag == "backpack" else -0.05)
            prims.append((depth, 2, label, PART_ACCESSORY, (_polygon(poly), _shade(a.bag_color, ambient + lit * 0.6))))
    return prims


def _draw_prim(canvas: np.ndarray, labels: np.ndarray, parts: np.ndarray | None, kind: int, label: int, part: int,
               payload: tuple, light: np.ndarray) -> None:
    """One primitive: kind 0 a limb (pa, pb, radius, colour[, (end radii)]), 1 a disc (centre, radius, colour,
    highlight colour), 2 a convex hull (points, colour); ``_VOLUME`` or-ed into kind draws it as shaded bands."""
    if kind & _VOLUME:
        _draw_volume_prim(canvas, labels, parts, kind & ~_VOLUME, label, part, payload, light)
    elif kind == 0:
        _draw_limb(canvas, labels, parts, label, part, payload, light)
    elif kind == 1:
        _draw_disc(canvas, labels, parts, label, part, payload, light)
    else:
        _draw_hull(canvas, labels, parts, label, part, payload)


def _draw_limb(canvas: np.ndarray, labels: np.ndarray, parts: np.ndarray | None, label: int, part: int,
               payload: tuple, light: np.ndarray) -> None:
    pa, pb, rad, color = payload[:4]
    ends = payload[4] if len(payload) == 5 else None
    if ends is not None:  # a tapered limb: the hull of its two end discs
        _draw_hull(canvas, labels, parts, label, part, (_limb_hull(pa, pb, *ends), color))
    else:
        thick = max(1, int(round(2.0 * rad)))
        cv2.line(canvas, tuple(pa), tuple(pb), color, thick, cv2.LINE_AA, _SHIFT)
        cv2.line(labels, tuple(pa), tuple(pb), label, thick, cv2.LINE_8, _SHIFT)
        if parts is not None:
            cv2.line(parts, tuple(pa), tuple(pb), part, thick, cv2.LINE_8, _SHIFT)
    if rad > 2.5:  # a lighter, thinner stripe towards the light reads as a rounded surface
        offset = (int(float(light[0]) * rad * 0.35 * _ONE), int(float(light[1]) * rad * 0.35 * _ONE))
        _limb_band(canvas, pa, pb, rad, ends, 0.45, offset, _shade(color, 1.18))


def _draw_disc(canvas: np.ndarray, labels: np.ndarray, parts: np.ndarray | None, label: int, part: int,
               payload: tuple, light: np.ndarray) -> None:
    c, rad, col, highlight = payload
    r_fx = max(1, int(round(rad * _ONE)))
    cv2.circle(canvas, tuple(c), r_fx, col, -1, cv2.LINE_AA, _SHIFT)
    cv2.circle(labels, tuple(c), r_fx, label, -1, cv2.LINE_8, _SHIFT)
    if parts is not None:
        cv2.circle(parts, tuple(c), r_fx, part, -1, cv2.LINE_8, _SHIFT)
    if rad > 3.0:  # the highlight, shifted towards the light
        ox, oy = int(float(light[0]) * rad * 0.3 * _ONE), int(float(light[1]) * rad * 0.3 * _ONE)
        cv2.circle(canvas, (c[0] + ox, c[1] + oy), max(1, int(round(rad * 0.55 * _ONE))), highlight, -1,
                   cv2.LINE_AA, _SHIFT)


def _draw_hull(canvas: np.ndarray, labels: np.ndarray, parts: np.ndarray | None, label: int, part: int,
               payload: tuple) -> None:
    hull, color = payload
    cv2.fillConvexPoly(canvas, hull, color, cv2.LINE_AA, _SHIFT)
    cv2.fillConvexPoly(labels, hull, label, cv2.LINE_8, _SHIFT)
    if parts is not None:
        cv2.fillConvexPoly(parts, hull, part, cv2.LINE_8, _SHIFT)


_CIRCLE = np.stack([np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False)),
                    np.sin(np.linspace(0, 2 * np.pi, 16, endpoint=False))], axis=1)


def _limb_hull(pa: tuple[int, int] | list[int], pb: tuple[int, int] | list[int], ra: float, rb: float) -> np.ndarray:
    """Fixed-point convex hull of two discs (radii ra, rb in px, centres pa, pb in fixed point): a tapered capsule."""
    pts = np.concatenate([np.asarray(pa, np.float64) + _CIRCLE * max(ra, 0.5) * _ONE,
                          np.asarray(pb, np.float64) + _CIRCLE * max(rb, 0.5) * _ONE])
    return cv2.convexHull(np.round(pts).astype(np.int32))


def _limb_band(canvas: np.ndarray, pa: list[int], pb: list[int], rad: float, ends: tuple[float, float] | None,
               size: float, offset: tuple[int, int], color: tuple[float, float, float]) -> None:
    """The limb pa → pb at ``size`` × its radius (its end radii ``ends`` when tapered), moved by ``offset`` (fixed
    point), onto the canvas only: a highlight stripe or a shading band."""
    a, b = (pa[0] + offset[0], pa[1] + offset[1]), (pb[0] + offset[0], pb[1] + offset[1])
    if ends is None:
        cv2.line(canvas, a, b, color, max(1, int(round(2.0 * rad * size))), cv2.LINE_AA, _SHIFT)
    else:
        cv2.fillConvexPoly(canvas, _limb_hull(a, b, ends[0] * size, ends[1] * size), color, cv2.LINE_AA, _SHIFT)


def _draw_volume_prim(canvas: np.ndarray, labels: np.ndarray, parts: np.ndarray | None, kind: int, label: int,
                      part: int, payload: tuple, light: np.ndarray) -> None:
    """One primitive as nested bands (``_BANDS``); the label and part maps get exactly the plain primitive."""
    lx, ly = float(light[0]), float(light[1])
    base: tuple
    if kind == 0:
        pa, pb, rad, color = payload[:4]
        ends = payload[4] if len(payload) == 5 else None
        base = (pa, pb, rad, _shade(color, _BANDS[0][0])) + payload[4:]
    elif kind == 1:
        c, rad, color, _ = payload
        base = (c, rad, _shade(color, _BANDS[0][0]), color)
    else:
        hull, color = payload
        pts = hull.reshape(-1, 2).astype(np.float64)
        cen = pts.mean(axis=0)
        rad = float(np.abs(pts - cen).max()) / _ONE
        base = (hull, _shade(color, _BANDS[0][0]))
    if rad < 3.0:  # a few pixels across: bands would only blur it
        _draw_prim(canvas, labels, parts, kind, label, part, payload, light)
        return
    _draw_prim(canvas, labels, parts, kind, label, part, base, light)  # silhouette, labels and parts; the rim colour
    for factor, size, shift in _BANDS[1:]:
        ox, oy = int(lx * rad * shift * _ONE), int(ly * rad * shift * _ONE)
        col = _shade(color, factor)
        if kind == 0:
            _limb_band(canvas, pa, pb, rad, ends, size, (ox, oy), col)
        elif kind == 1:
            cv2.circle(canvas, (c[0] + ox, c[1] + oy), max(1, int(round(rad * size * _ONE))), col, -1,
                       cv2.LINE_AA, _SHIFT)
        else:
            band = np.round(cen + (pts - cen) * size + (ox, oy)).astype(np.int32).reshape(-1, 1, 2)
            cv2.fillConvexPoly(canvas, band, col, cv2.LINE_AA, _SHIFT)


def joint_occlusion(labels: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(N, K, 2) joint pixels → (N, K) bool: the front-most surface at the joint is *another* person.

    Joints outside the image are reported as not occluded (inside-image is a separate test).
    """
    h, w = labels.shape
    n, k = uv.shape[:2]
    xi = np.round(uv[..., 0]).astype(np.int64)
    yi = np.round(uv[..., 1]).astype(np.int64)
    inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
    lab = np.zeros((n, k), np.int64)
    lab[inside] = labels[yi[inside], xi[inside]]
    own = (np.arange(n) + 1)[:, None]
    return inside & (lab != 0) & (lab != own)


def render_background(
    rng: np.random.Generator, width: int, height: int, camera: Intrinsics, cam_height: float, pitch: float
) -> np.ndarray:
    """A wall/sky gradient above the horizon, a textured floor with perspective grid lines below.

    Args:
        cam_height: camera height above the floor (metres); pitch: downward tilt (radians).
    Returns:
        (H, W, 3) uint8 RGB.
    """
    # Points at infinity on the floor plane project to this row (pitch down moves the horizon up).
    horizon = camera.cy - camera.fy * np.tan(pitch)
    top0, top1 = rng.uniform(40, 230, 3), rng.uniform(40, 230, 3)
    floor0, floor1 = rng.uniform(30, 200, 3), rng.uniform(30, 200, 3)
    rows = np.arange(height, dtype=np.float32)[:, None]
    t_top = np.clip(rows / max(1.0, horizon), 0, 1)
    t_floor = np.clip((rows - horizon) / max(1.0, height - horizon), 0, 1)
    col = np.where(rows < horizon, top0 * (1 - t_top) + top1 * t_top, floor0 * (1 - t_floor) + floor1 * t_floor)
    # Low-frequency texture: tiny random image upsampled (cheap "noise texture"), mostly luminance with a
    # little chroma so it reads as surfaces rather than confetti
    gh, gw = int(rng.integers(3, 24)), int(rng.integers(3, 32))
    lum = rng.normal(0, rng.uniform(5, 30), (gh, gw, 1))
    blobs = (lum + rng.normal(0, rng.uniform(1, 8), (gh, gw, 3))).astype(np.float32)
    img = cv2.resize(blobs, (width, height), interpolation=cv2.INTER_LINEAR)
    img += col[:, None, :].astype(np.float32)
    # Random vertical "wall" bands above the horizon
    if rng.random() < 0.5 and horizon > 4:
        for _ in range(int(rng.integers(1, 5))):
            x0 = int(rng.integers(0, width))
            bw = int(rng.integers(10, max(11, width // 3)))
            y1 = int(min(height, max(1, horizon)))
            img[:y1, x0:x0 + bw] = img[:y1, x0:x0 + bw] * 0.4 + rng.uniform(30, 230, 3).astype(np.float32) * 0.6
    if horizon < height - 2:
        _floor_grid(rng, img, camera, cam_height, pitch)
    # Fine grain (sensor-like): random windows of a fixed Gaussian tile, scaled — far cheaper than fresh noise
    sigma = float(rng.uniform(1, 8))
    cv2.scaleAdd(noise_field(rng, height, width, gaussian_tile(512, 12345)), sigma, img, dst=img)
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def _floor_grid(rng: np.random.Generator, img: np.ndarray, camera: Intrinsics, cam_height: float, pitch: float) -> None:
    """Tiles / boards on the floor: lines of constant x and constant z, projected (a depth cue)."""
    spacing = float(rng.uniform(0.4, 1.5))
    color = tuple(float(c) for c in rng.uniform(20, 235, 3))
    thick = int(rng.integers(1, 3))
    c, s = np.cos(pitch), np.sin(pitch)
    z_far = 40.0
    draw_x, draw_z = rng.random() < 0.8, rng.random() < 0.8
    xs = np.arange(-20.0, 20.0 + 1e-6, spacing) if draw_x else np.zeros(0)
    zs = np.arange(spacing, z_far, spacing) if draw_z else np.zeros(0)
    # segment end points on the floor (world x, z): lines of constant x, then lines of constant z
    p_w = np.concatenate([np.stack([xs, np.full_like(xs, 0.3)], -1), np.stack([np.full_like(zs, -30.0), zs], -1)])
    q_w = np.concatenate([np.stack([xs, np.full_like(xs, z_far)], -1), np.stack([np.full_like(zs, 30.0), zs], -1)])
    if len(p_w) == 0:
        return

    def to_cam(xz: np.ndarray) -> np.ndarray:
        # world: x right, y down, z forward, floor at y = 0, camera at (0, -cam_height, 0) pitched down
        return np.stack([xz[:, 0], c * cam_height - s * xz[:, 1], s * cam_height + c * xz[:, 1]], axis=-1)

    p, q = to_cam(p_w), to_cam(q_w)
    keep = (p[:, 2] >= _NEAR) | (q[:, 2] >= _NEAR)
    p, q = p[keep], q[keep]
    # clip each segment to z >= near so the projection stays finite
    t = np.clip((_NEAR - p[:, 2]) / np.where(q[:, 2] != p[:, 2], q[:, 2] - p[:, 2], 1.0), 0.0, 1.0)[:, None]
    cut = p + (q - p) * t
    p = np.where((p[:, 2] < _NEAR)[:, None], cut, p)
    q = np.where((q[:, 2] < _NEAR)[:, None], cut, q)
    uv_p = np.round(np.clip(camera.project(p), -1e4, 1e4) * _ONE).astype(np.int64).tolist()
    uv_q = np.round(np.clip(camera.project(q), -1e4, 1e4) * _ONE).astype(np.int64).tolist()
    for a, b in zip(uv_p, uv_q, strict=True):
        cv2.line(img, tuple(a), tuple(b), color, thick, cv2.LINE_AA, _SHIFT)
