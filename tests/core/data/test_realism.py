"""The realistic synthetic recipe: every feature can be switched off exactly, none of them moves a label."""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import replace

import cv2
import numpy as np
import pytest

from das_core.camera import Intrinsics
from das_core.data import make_synthetic
from das_core.data.backgrounds import PhotoLibrary
from das_core.data.camera_effects import CameraEffects, apply_camera_effects
from das_core.data.render import PART_BOTTOM, PART_TOP, Appearance, BodyGeometry, draw_people
from das_core.data.synthetic import (
    REALISM_FEATURES,
    SceneConfig,
    _apply_textures,
    _sample_objects,
    make_person,
    make_scene,
    sample_pose,
)

SIZE = {"min_size": 96, "max_size": 128}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A folder of three 'photos' (smooth random colour fields): no people in them, by construction."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        small = rng.uniform(0, 255, (6, 8, 3)).astype(np.uint8)
        cv2.imwrite(str(folder / f"p{i}.jpg"), cv2.resize(small, (320, 240), interpolation=cv2.INTER_CUBIC))
    (folder / "notes.txt").write_text("not a photo")
    return str(folder)


# sha256 of test scenes 0-3 (96-128 px) rendered by the code before the realistic recipe existed (commit f531ce8):
# the basic recipe, and with it the held-out test split and the demo sequence, must stay image for image the same.
BASIC_SCENES_SHA256 = "9f209853c74882879832ed7484235f78277b31f1b3aa572c0ff276be9227df08"


def test_the_basic_recipe_renders_exactly_what_it_rendered_before_the_realistic_recipe():
    h = hashlib.sha256()
    for i in range(4):
        s = make_scene(0, "test", i, SceneConfig(**SIZE))
        h.update(s.image.tobytes())
        h.update(s.joints_3d.astype("<f8").tobytes())
        h.update(s.visible.tobytes())
    assert h.hexdigest() == BASIC_SCENES_SHA256, "basic-recipe images changed (a realism feature leaks when off?)"


def test_realistic_with_every_feature_disabled_is_the_basic_recipe():
    assert SceneConfig.realistic(disable=tuple(REALISM_FEATURES), **SIZE) == SceneConfig(**SIZE)


def test_realistic_scenes_are_deterministic_and_use_the_photos(photos: str):
    cfg = SceneConfig.realistic(photos, **SIZE)
    assert cfg.background_dir == photos and cfg.photo_background_prob > 0 and cfg.camera_effects
    a, b = make_scene(5, "train", 3, cfg), make_scene(5, "train", 3, cfg)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.joints_3d, b.joints_3d)


def test_photos_feature_is_off_without_a_background_folder_and_unknown_features_are_refused():
    assert SceneConfig.realistic().background_dir is None
    assert SceneConfig.realistic().photo_background_prob == 0.0
    with pytest.raises(ValueError, match="unknown realism feature"):
        SceneConfig.realistic(disable=("lighting",))
    with pytest.raises(ValueError, match="unknown SceneConfig field"):
        SceneConfig.realistic(colour=True)


def test_camera_effects_change_pixels_but_never_labels():
    base = replace(SceneConfig.realistic(disable=("effects",)), **SIZE)
    with_fx = replace(base, camera_effects=True)
    changed = 0
    for i in range(4):
        a, b = make_scene(1, "train", i, base), make_scene(1, "train", i, with_fx)
        np.testing.assert_array_equal(a.joints_3d, b.joints_3d)
        np.testing.assert_array_equal(a.visible, b.visible)
        changed += int(not np.array_equal(a.image, b.image))
    assert changed >= 3


def test_camera_effects_keep_shape_and_type_and_grayscale_means_equal_channels():
    img = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    out = apply_camera_effects(img, np.random.default_rng(1))
    assert out.shape == img.shape and out.dtype == np.uint8
    grey = apply_camera_effects(img, np.random.default_rng(2), CameraEffects(grayscale_prob=1.0, jpeg_prob=0.0))
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])
    np.testing.assert_array_equal(grey[..., 1], grey[..., 2])
    dark = apply_camera_effects(np.full((20, 20, 3), 128, np.uint8), np.random.default_rng(3),
                                CameraEffects(low_light_prob=1.0, exposure_prob=0.0, white_balance_prob=0.0,
                                              vignette_prob=0.0, grayscale_prob=0.0, jpeg_prob=0.0))
    assert dark.std() > 1.0  # a dark frame brought back up by the camera's gain is noisy


def test_people_range_children_and_closeups_of_the_realistic_recipe():
    cfg = replace(SceneConfig.realistic(disable=("photos", "effects", "clothing", "scene")), crowd_prob=0.0, **SIZE)
    roots = np.concatenate([make_scene(2, "train", i, cfg).joints_3d[:, 2, 2] for i in range(12)])
    assert roots.min() > 0.8 and roots.max() < 15.5
    assert (roots < 1.5).any()  # close-ups (the basic recipe never goes below 1.35 m)


def test_eye_level_closeups_show_the_head_and_cut_the_legs():
    cfg = replace(SceneConfig.realistic(disable=("photos", "effects", "clothing", "scene")), closeup_prob=1.0,
                  eye_level_prob=1.0, **SIZE)
    head_in, legs_cut = 0, 0
    for i in range(12):
        s = make_scene(4, "train", i, cfg)
        near = int(np.argmin(s.joints_3d[:, 2, 2]))  # the close-up person
        head_in += int(s.visible[near, 1])
        legs_cut += int(not s.visible[near, [8, 14]].any())
    assert head_in == 12 and legs_cut >= 6  # portraits: the face in view, often nothing below the knees


def test_crowd_scenes_hold_more_people_than_the_recipe_otherwise_allows_and_many_sit():
    cfg = replace(SceneConfig.realistic(disable=("photos", "effects", "clothing", "scene")), closeup_prob=0.0,
                  crowd_prob=1.0, **SIZE)
    people = [make_scene(6, "train", i, cfg) for i in range(6)]
    assert max(len(s.joints_3d) for s in people) > cfg.people_range[1]  # a crowd, not a busy normal scene
    roots = np.concatenate([s.joints_3d[:, 2, 2] for s in people])
    assert roots.max() > cfg.depth_range[1]  # and further away than the normal depth range
    with pytest.raises(ValueError, match="crowd_people_range"):
        SceneConfig(crowd_people_range=(5, 2))


def test_rooms_have_fixtures_off_the_floor_as_well_as_furniture_and_poles_on_it():
    rng = np.random.default_rng(0)
    share = SceneConfig().high_fixture_share
    objects = [o for _ in range(20) for o in _sample_objects(rng, 6, [], 0.6, np.eye(3), np.zeros(3), share)]
    bottoms = np.array([corners[:, 1].max() for corners, _ in objects])  # y is down, the floor at y = 0
    assert np.isclose(bottoms, 0.0).sum() > len(objects) / 2  # most stand on the floor
    assert (bottoms <= -1.8).any()  # and some hang at head height or above: lamps, shelves, cameras
    rng = np.random.default_rng(0)
    none_high = [o for _ in range(20) for o in _sample_objects(rng, 6, [], 0.6, np.eye(3), np.zeros(3),
                                                                high_fixture_share=0.0)]
    assert all(np.isclose(corners[:, 1].max(), 0.0) for corners, _ in none_high)  # the ablation: all on the floor
    with pytest.raises(ValueError, match="high_fixture_share"):
        SceneConfig(high_fixture_share=0.9)


def test_a_fixed_exposure_night_frame_stays_nearly_black():
    night = CameraEffects(low_light_prob=1.0, no_gain_share=1.0, exposure_prob=0.0, white_balance_prob=0.0,
                          vignette_prob=0.0, noise_prob=0.0, grayscale_prob=0.0, jpeg_prob=0.0)
    means = [apply_camera_effects(np.full((20, 20, 3), 200, np.uint8), np.random.default_rng(k), night).mean()
             for k in range(8)]
    assert max(means) < 30 and min(means) > 0.5  # grey levels of real low-light sets, not an empty frame


def test_a_face_is_drawn_only_on_a_head_turned_to_the_camera():
    cam = Intrinsics.from_fov(160, 160, 40.0)
    pose = sample_pose(np.random.default_rng(0), "standing")
    look = Appearance(top=(200, 40, 40), bottom=(40, 40, 200), skin=(200, 160, 140), shoes=(20, 20, 20),
                      hair=(30, 20, 10))

    def head_pixels(heading: float, face: bool) -> np.ndarray:
        j, head, feet = make_person(1.75, pose, np.array([0.0, 0.0]), heading)
        offset = np.array([0.0, 0.0, 1.2]) - head  # the head 1.2 m in front of the camera, in the image centre
        body = BodyGeometry(j + offset, head + offset, feet + offset, 1.75)
        canvas = np.full((160, 160, 3), 90, np.uint8)
        draw_people(canvas, [body], [replace(look, face=face)], cam, np.array([0.0, -1.0, 0.0]))
        return canvas[50:110, 50:110]

    towards, away = np.pi, 0.0  # heading π faces the camera
    with_face = head_pixels(towards, True)
    assert int(np.abs(with_face.astype(int) - head_pixels(towards, False)).sum(axis=2).astype(bool).sum()) > 20
    dark = (with_face.max(axis=2) < 60).sum() - (head_pixels(towards, False).max(axis=2) < 60).sum()
    assert int(dark) > 10  # dark eyes on the skin-coloured head
    np.testing.assert_array_equal(head_pixels(away, True), head_pixels(away, False))


def test_hands_are_drawn_beyond_the_wrists_where_real_hands_are_not_centred_on_them():
    cam = Intrinsics.from_fov(320, 320, 60.0)
    look = Appearance(top=(40, 40, 200), bottom=(40, 40, 200), skin=(220, 150, 120), shoes=(20, 20, 20),
                      hair=(30, 20, 10), short_sleeves=False)
    j, head, feet = make_person(1.75, sample_pose(np.random.default_rng(0), "standing"), np.array([0.0, 0.0]), np.pi)
    offset = np.array([0.0, 0.0, 3.0]) - j[2]  # the hips 3 m in front of the camera, in the image centre
    body = BodyGeometry(j + offset, head + offset, feet + offset, 1.75)

    def skin_at(hands: bool) -> list[bool]:
        canvas = np.full((320, 320, 3), 90, np.uint8)
        draw_people(canvas, [body], [replace(look, hands=hands)], cam, np.array([0.0, -1.0, 0.0]))
        out = []
        for el, wr in ((4, 5), (10, 11)):  # left and right elbow, wrist
            d = (body.joints[wr] - body.joints[el]) / np.linalg.norm(body.joints[wr] - body.joints[el])
            u, v = np.round(cam.project((body.joints[wr] + d * 0.065 * 1.75)[None])[0]).astype(int)
            r, _, b = canvas[v, u].astype(int)
            out.append(r > b + 30)  # skin (red over blue), not the blue sleeve or trousers, nor the grey background
        return out

    assert skin_at(True) == [True, True]  # most of a hand length past each wrist: the hand
    assert skin_at(False) == [False, False]  # the old wrist disc ends before that


def _standing_body() -> tuple[Intrinsics, Appearance, BodyGeometry]:
    cam = Intrinsics.from_fov(320, 320, 60.0)
    look = Appearance(top=(40, 40, 200), bottom=(40, 40, 200), skin=(220, 150, 120), shoes=(20, 20, 20),
                      hair=(30, 20, 10), short_sleeves=False)
    j, head, feet = make_person(1.75, sample_pose(np.random.default_rng(0), "standing"), np.array([0.0, 0.0]), np.pi)
    offset = np.array([0.0, 0.0, 2.5]) - j[2]  # the hips 2.5 m in front of the camera, in the image centre
    return cam, look, BodyGeometry(j + offset, head + offset, feet + offset, 1.75)


def test_volume_shading_darkens_a_limb_towards_its_rim_and_never_moves_a_label():
    cam, look, body = _standing_body()
    light = np.array([0.0, -1.0, 0.0])

    def draw(volume: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        canvas = np.full((320, 320, 3), 90, np.uint8)
        parts = np.zeros((320, 320), np.uint8)
        labels = draw_people(canvas, [body], [replace(look, volume_shading=volume)], cam, light, parts=parts)
        return canvas, labels, parts

    flat, labels_flat, parts_flat = draw(False)
    shaded, labels, parts = draw(True)
    np.testing.assert_array_equal(labels, labels_flat)  # the label map (occlusion of joints) is the plain one
    np.testing.assert_array_equal(parts, parts_flat)  # and so are the garment parts the textures go on
    changed = np.abs(shaded.astype(int) - flat.astype(int)).sum(axis=2) > 0
    near_person = cv2.dilate((labels > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert changed.sum() > 200 and not (changed & ~near_person).any()  # only the person's own pixels change
    # across the left thigh, halfway from hip to knee: clearly darker at its rim than on its axis, unlike before
    mid = cam.project(((body.joints[6] + body.joints[7]) / 2)[None])[0]
    u0, v = int(round(mid[0])), int(round(mid[1]))
    lo, hi = u0, u0
    while labels[v, lo - 1] > 0 and labels[v, lo - 1] == labels[v, u0] and parts[v, lo - 1] == parts[v, u0]:
        lo -= 1
    while labels[v, hi + 1] > 0 and labels[v, hi + 1] == labels[v, u0] and parts[v, hi + 1] == parts[v, u0]:
        hi += 1
    assert hi - lo > 8  # the thigh's width in pixels, at this distance

    axis = (lo + hi) // 2
    half = shaded[v, lo + 1:axis + 1].astype(int).sum(axis=1)  # rim (inside the anti-aliased edge) to axis
    assert half[-1] - half[0] > 20 and np.all(np.diff(half) >= 0)  # brighter step by step towards the axis
    # a gradient of many levels, where the flat capsule has its colour and one highlight stripe
    assert len(set(half.tolist())) >= 6 and len(set(flat[v, lo + 1:axis + 1].astype(int).sum(axis=1).tolist())) <= 3


def test_tapered_limbs_are_wider_at_the_hip_than_at_the_knee_and_off_by_default():
    cam, look, body = _standing_body()
    assert not look.tapered and not SceneConfig.realistic().tapered_limbs

    def thigh_widths(tapered: bool) -> tuple[int, int]:
        canvas = np.full((320, 320, 3), 90, np.uint8)
        parts = np.zeros((320, 320), np.uint8)
        draw_people(canvas, [body], [replace(look, tapered=tapered)], cam, np.array([0.0, -1.0, 0.0]), parts=parts)
        out = []
        for share in (0.25, 0.75):  # a quarter and three quarters of the way from the left hip to the knee
            u, v = np.round(cam.project((body.joints[6] * (1 - share) + body.joints[7] * share)[None])[0]).astype(int)
            lo, hi = u, u
            while parts[v, lo - 1] == PART_BOTTOM:
                lo -= 1
            while parts[v, hi + 1] == PART_BOTTOM:
                hi += 1
            out.append(hi - lo + 1)
        return out[0], out[1]

    plain_hip, plain_knee = thigh_widths(False)
    hip, knee = thigh_widths(True)
    assert abs(plain_hip - plain_knee) <= 1  # a capsule: one width
    assert hip >= knee + 3 and hip > plain_hip  # tapered: wider at the hip than at the knee


def test_volume_shading_is_off_by_default_and_changes_no_annotation_when_on():
    cfg = replace(SceneConfig.realistic(disable=("photos", "effects")), **SIZE)
    assert not cfg.volume_shading
    a, b = make_scene(4, "train", 2, cfg), make_scene(4, "train", 2, replace(cfg, volume_shading=True))
    for field in ("joints_3d", "visible", "occluded"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert np.abs(a.image.astype(int) - b.image.astype(int)).sum() > 0


def test_a_waistline_puts_the_bottom_garment_above_the_hips_and_keeps_the_silhouette():
    """Without a waistline the top garment reaches the hip joints, so the top / bottom colour boundary is the hip
    line; with one, the pelvis between the waist and the hips is the bottom garment's, and the person's outline
    and labels are those of the plain body."""
    cam, look, body = _standing_body()
    look = replace(look, top=(200, 40, 40), bottom=(40, 40, 200))
    light = np.array([0.0, -1.0, 0.0])

    def draw(waist: float | None) -> tuple[np.ndarray, np.ndarray]:
        canvas = np.full((320, 320, 3), 90, np.uint8)
        parts = np.zeros((320, 320), np.uint8)
        labels = draw_people(canvas, [body], [replace(look, waist=waist)], cam, light, parts=parts)
        return labels, parts

    hips, shoulders = body.joints[[6, 12]].mean(0), body.joints[[3, 9]].mean(0)
    u, v = np.round(cam.project((hips + (shoulders - hips) * 0.1)[None])[0]).astype(int)  # just above the hips
    plain_labels, plain_parts = draw(None)
    waist_labels, waist_parts = draw(0.2)
    assert plain_parts[v, u] == PART_TOP and waist_parts[v, u] == PART_BOTTOM
    u2, v2 = np.round(cam.project((hips + (shoulders - hips) * 0.5)[None])[0]).astype(int)  # mid-torso: still the top
    assert waist_parts[v2, u2] == PART_TOP
    assert np.mean(plain_labels != waist_labels) < 1e-3  # the same silhouette, up to a sub-pixel split line


def test_waistlines_are_off_by_default_and_change_no_annotation_when_on():
    cfg = replace(SceneConfig.realistic(disable=("photos", "effects")), **SIZE)
    assert cfg.waistline_prob == 0.0 and Appearance((0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0), (0, 0, 0)).waist is None
    changed = 0
    for seed in range(3):
        a, b = make_scene(4, "train", seed, cfg), make_scene(4, "train", seed, replace(cfg, waistline_prob=1.0))
        for field in ("joints_3d", "joints_2d", "visible", "occluded"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        changed += int(np.abs(a.image.astype(int) - b.image.astype(int)).sum() > 0)
    assert changed == 3


def test_a_person_hidden_behind_furniture_or_others_is_not_labelled():
    cfg = replace(SceneConfig.realistic(disable=("photos", "effects")), people_range=(10, 12), **SIZE)
    strict = replace(cfg, min_unoccluded_joints=4)
    seen = 0
    for i in range(6):
        s = make_scene(3, "train", i, strict)
        shown = (s.visible & ~s.occluded).sum(axis=1)
        assert np.all(shown >= 4)
        seen += len(s.joints_3d)
    loose = sum(len(make_scene(3, "train", i, replace(cfg, min_unoccluded_joints=0)).joints_3d) for i in range(6))
    assert 0 < seen < loose  # the filter removed someone, and not everyone


def _one_person() -> tuple[np.ndarray, Intrinsics, BodyGeometry, np.ndarray, np.ndarray]:
    cam = Intrinsics.from_fov(160, 120, 60.0)
    j, head, feet = make_person(1.75, sample_pose(np.random.default_rng(0), "standing"), np.array([0.0, 0.0]), np.pi)
    offset = np.array([0.0, 0.6, 3.5])  # world → camera: the camera 0.6 m above the hips, 3.5 m away
    body = BodyGeometry(j - [0, j[2, 1], 0] + offset, head - [0, j[2, 1], 0] + offset, feet - [0, j[2, 1], 0] + offset,
                        1.75)
    canvas = np.full((120, 160, 3), 90, np.uint8)
    parts = np.zeros((120, 160), np.uint8)
    look = Appearance(top=(200, 40, 40), bottom=(40, 40, 200), skin=(180, 140, 120), shoes=(20, 20, 20),
                      hair=(30, 20, 10), lower="coat", long_hair=True, hat=(250, 250, 0), bag="handbag")
    labels = draw_people(canvas, [body], [look], cam, np.array([0.0, -1.0, 0.0]), parts=parts)
    return canvas, cam, body, labels, parts


def test_part_map_covers_the_person_and_clothing_textures_stay_on_the_garments():
    canvas, cam, body, labels, parts = _one_person()
    person = labels == 1
    assert person.sum() > 200
    assert np.all((parts > 0) == person)  # every person pixel has a part, nothing else has one
    assert {PART_TOP, PART_BOTTOM} <= set(np.unique(parts[person]).tolist())
    before = canvas.copy()
    for seed in range(6):
        _apply_textures(np.random.default_rng(seed), canvas, labels, parts, [body], cam, None)
    garment = person & np.isin(parts, [PART_TOP, PART_BOTTOM])
    np.testing.assert_array_equal(canvas[~garment], before[~garment])
    assert not np.array_equal(canvas[garment], before[garment])


def test_photo_library_crops_at_the_asked_size_and_names_a_bad_folder(photos: str, tmp_path):
    lib = PhotoLibrary(photos)
    assert len(lib) == 3  # the text file is not a photo
    rng = np.random.default_rng(0)
    assert lib.crop(rng, 50, 30).shape == (30, 50, 3)
    tex = lib.texture(rng, 7, 5)
    assert tex.shape == (5, 7) and abs(float(tex.mean()) - 1.0) < 1e-3
    with pytest.raises(FileNotFoundError, match="does not exist"):
        PhotoLibrary(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="no photos"):
        PhotoLibrary(str(tmp_path))


def _args(**kw) -> argparse.Namespace:
    base = {"min_size": 96, "max_size": 128, "occluded_invisible": False, "max_people": 8, "preset": "basic",
            "backgrounds": None, "disable": ""}
    return argparse.Namespace(**{**base, **kw})


def test_make_synthetic_options_describe_the_recipe(photos: str):
    assert make_synthetic.scene_config(_args()) == SceneConfig(**SIZE)
    cfg = make_synthetic.scene_config(_args(preset="realistic", backgrounds=photos, disable="effects,photos"))
    assert not cfg.camera_effects and cfg.background_dir is None and cfg.clothing
    with pytest.raises(ValueError, match="need --preset realistic"):
        make_synthetic.scene_config(_args(disable="effects"))


def test_scene_overrides_change_one_field_of_the_recipe_and_refuse_unknown_fields_and_bad_values(photos: str):
    base = make_synthetic.scene_config(_args(preset="realistic", backgrounds=photos))
    cfg = make_synthetic.scene_config(_args(preset="realistic", backgrounds=photos,
                                            scene=["crowd_prob=0", "high_fixture_share=0", "depth_range=[2, 9]"]))
    assert (cfg.crowd_prob, cfg.high_fixture_share, cfg.depth_range) == (0.0, 0.0, (2, 9))
    assert replace(cfg, crowd_prob=base.crowd_prob, high_fixture_share=base.high_fixture_share,
                   depth_range=base.depth_range) == base  # nothing else changed
    with pytest.raises(ValueError, match="crowd_probability=0.*FIELD one of"):
        make_synthetic.scene_config(_args(scene=["crowd_probability=0"]))
    with pytest.raises(ValueError, match="clothing is a bool"):
        make_synthetic.scene_config(_args(scene=["clothing=lots"]))
    with pytest.raises(ValueError, match="everyday_pose_prob is a probability"):
        make_synthetic.scene_config(_args(scene=["everyday_pose_prob=2"]))
