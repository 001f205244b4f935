"""das infer: images, folders and videos → overlays, a JSON of every person, an optional MCAP; clear errors."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from cli_fixtures import tiny_checkpoint
from rosbags.highlevel import AnyReader

from das_core.data.synthetic import make_sequence
from das_ros import cli
from das_ros.apps import infer

W, H = 128, 80
PERSON_KEYS = {"track_id", "score", "root", "joints_3d", "joints_2d", "confidence", "root_covariance",
               "joints_covariance"}
FRAME_KEYS = {"file", "frame", "width", "height", "intrinsics", "persons"}


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default output folders (infer_out/, demo_out/) land in the test's folder, never in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [f.image for f in make_sequence(num_frames=5, width=W, height=H).frames]


def write_png(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def ros_camera_yaml(path: Path, width: int, height: int, f: float) -> Path:
    """A camera_calibration-style camera_info YAML."""
    doc = {"image_width": width, "image_height": height, "camera_name": "cam", "distortion_model": "plumb_bob",
           "camera_matrix": {"rows": 3, "cols": 3, "data": [f, 0, (width - 1) / 2, 0, f, (height - 1) / 2, 0, 0, 1]},
           "distortion_coefficients": {"rows": 1, "cols": 5, "data": [0.0] * 5}}
    path.write_text(yaml.safe_dump(doc))
    return path


def das_infer(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    rc = cli.main(["infer", *args, "--device", "cpu", "--no-progress"])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_folder_of_images_gives_json_overlays_and_mcap(tmp_path: Path, ckpt: Path, frames: list[np.ndarray],
                                                       capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    write_png(folder / "a.png", frames[0])
    write_png(folder / "b.png", frames[1])
    (folder / "notes.txt").write_text("ignored: not an image")
    # calibrated at twice the image size: the intrinsics must be scaled to the image
    cam = ros_camera_yaml(tmp_path / "cam.yaml", 2 * W, 2 * H, f=200.0)
    out = tmp_path / "out"
    rc, text, err = das_infer([str(folder), "--camera", str(cam), "--checkpoint", str(ckpt), "--out", str(out),
                               "--mcap", str(tmp_path / "poses.mcap")], capsys)
    assert rc == 0, err
    assert "2 frames" in text and "poses.mcap" in text

    doc = json.loads((out / "persons.json").read_text())
    assert doc["skeleton"] == "panoptic15" and len(doc["joint_names"]) == 15 and doc["root_index"] == 2
    assert [Path(f["file"]).name for f in doc["frames"]] == ["a.png", "b.png"]
    for f in doc["frames"]:
        assert set(f) == FRAME_KEYS and f["frame"] is None and (f["width"], f["height"]) == (W, H)
        k = f["intrinsics"]
        assert k["fx"] == pytest.approx(100.0) and k["cx"] == pytest.approx((W - 1) / 2) and "cam.yaml" in k["source"]
        assert 1 <= len(f["persons"]) <= 4
        for p in f["persons"]:
            assert set(p) == PERSON_KEYS and p["track_id"] is None and 0 <= p["score"] <= 1
            assert np.shape(p["joints_3d"]) == (15, 3) and np.shape(p["joints_2d"]) == (15, 2)
            assert np.shape(p["confidence"]) == (15,) and np.isfinite(p["joints_3d"]).all()
            assert p["root"] == p["joints_3d"][2]
            cov = np.array(p["joints_covariance"]).reshape(15, 3, 3)
            assert np.isfinite(cov).all() and (np.linalg.eigvalsh(cov) > -1e-9).all() and (cov[:, 2, 2] > 0).all()
            assert p["root_covariance"] == p["joints_covariance"][2]
    for name in ("a_overlay.png", "b_overlay.png"):
        img = cv2.imread(str(out / name))
        assert img is not None and img.shape == (H, W, 3)

    msgs: dict[str, list] = {}
    with AnyReader([tmp_path / "poses.mcap"]) as reader:  # a bare .mcap, definitions embedded
        for conn, _, raw in reader.messages():
            msgs.setdefault(conn.topic, []).append(reader.deserialize(raw, conn.msgtype))
    assert {k: len(v) for k, v in msgs.items()} == {"/camera/image_raw": 2, "/camera/camera_info": 2,
                                                    "/das/poses": 2, "/das/markers": 2,
                                                    "/das/debug_image/compressed": 2}
    for pose, f in zip(msgs["/das/poses"], doc["frames"], strict=True):
        assert len(pose.persons) == len(f["persons"])
        assert pose.persons[0].root.z == pytest.approx(f["persons"][0]["root"][2], abs=1e-3)
        # the bag carries the same covariance as the JSON (float64[9] fields in the embedded definitions)
        np.testing.assert_allclose(pose.persons[0].root_covariance, f["persons"][0]["root_covariance"], atol=1e-9)
    assert not list(tmp_path.glob(".*")) and not list(out.glob(".*")), "temporary files left behind"


def test_video_frames_are_tracked_and_hfov_warns_about_depth(tmp_path: Path, ckpt: Path, frames: list[np.ndarray],
                                                             capsys: pytest.CaptureFixture,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    video = tmp_path / "walk.avi"  # MJPG/avi: an encoder every OpenCV build has
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="das_ros.apps.infer"):
        rc, _, err = das_infer([str(video), "--hfov", "70", "--checkpoint", str(ckpt), "--out", str(out),
                                "--json", str(tmp_path / "walk.json")], capsys)
    assert rc == 0, err
    assert any("absolute depth" in r.getMessage() and "--camera" in r.getMessage() for r in caplog.records)
    doc = json.loads((tmp_path / "walk.json").read_text())
    assert [f["frame"] for f in doc["frames"]] == list(range(len(frames)))
    k = doc["frames"][0]["intrinsics"]
    assert k["fx"] == pytest.approx((W / 2) / math.tan(math.radians(35))) and "hfov" in k["source"]
    ids = [p["track_id"] for f in doc["frames"] for p in f["persons"]]
    assert ids and all(isinstance(i, int) and i >= 1 for i in ids)
    overlay = out / "walk_overlay.mp4"
    strip = cv2.imread(str(out / "walk_strip.png"))
    assert strip is not None
    if overlay.exists():
        cap = cv2.VideoCapture(str(overlay))
        assert cap.isOpened() and cap.read()[0]


def test_errors_name_the_problem_and_the_fix(tmp_path: Path, ckpt: Path, frames: list[np.ndarray],
                                             capsys: pytest.CaptureFixture) -> None:
    good = write_png(tmp_path / "good.png", frames[0])
    rc, _, err = das_infer([str(tmp_path / "missing.jpg"), "--hfov", "60", "--checkpoint", str(ckpt)], capsys)
    assert rc == 1 and "missing.jpg: no such file" in err
    fake = tmp_path / "fake.png"
    fake.write_text("this is not a PNG")
    rc, _, err = das_infer([str(fake), "--hfov", "60", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o")],
                           capsys)
    assert rc == 1 and "fake.png: not a readable image" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    rc, _, err = das_infer([str(empty), "--hfov", "60"], capsys)
    assert rc == 1 and "folder has no images" in err
    rc, _, err = das_infer([str(good), "--checkpoint", str(ckpt)], capsys)
    assert rc == 1 and "no intrinsics" in err and "--camera FILE" in err and "--hfov" in err
    bad_cam = tmp_path / "cam.yaml"
    bad_cam.write_text("fx: 0\nfy: 0\ncx: 1\ncy: 1\n")
    rc, _, err = das_infer([str(good), "--camera", str(bad_cam), "--checkpoint", str(ckpt)], capsys)
    assert rc == 1 and "cam.yaml" in err and "focal length" in err
    rc, _, err = das_infer([str(good), "--hfov", "60", "--checkpoint", str(tmp_path / "nope"), "--out",
                            str(tmp_path / "o")], capsys)
    assert rc == 1 and "nope.safetensors" in err and "--checkpoint NAME" in err
    broken = tmp_path / "broken"
    (tmp_path / "broken.yaml").write_text((ckpt.parent / "tiny.yaml").read_text())
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 64)
    rc, _, err = das_infer([str(good), "--hfov", "60", "--checkpoint", str(broken), "--out", str(tmp_path / "o")],
                           capsys)
    assert rc == 1 and "broken.safetensors" in err and "corrupt" in err and "--checkpoint" in err
    rc, _, err = das_infer([str(good), "--hfov", "200", "--checkpoint", str(ckpt)], capsys)
    assert rc == 1 and "field of view" in err and "200" in err
    rc, _, err = das_infer([str(good), "--hfov", "60", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"),
                            "--mcap", str(tmp_path / "poses.bag")], capsys)
    assert rc == 1 and "--mcap expects a file name ending in .mcap" in err
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    rc, _, err = das_infer([str(good), "--hfov", "60", "--checkpoint", str(ckpt), "--out", str(blocker / "x")],
                           capsys)
    assert rc == 1 and "cannot write to output folder" in err
    assert "Traceback" not in err


def test_collect_inputs_sorts_folders_and_classifies_videos(tmp_path: Path) -> None:
    for name in ("b.jpg", "a.PNG", "c.mp4", "readme.md"):
        (tmp_path / name).write_bytes(b"")
    items = infer.collect_inputs([tmp_path])
    assert [(i.path.name, i.kind) for i in items] == [("a.PNG", "image"), ("b.jpg", "image"), ("c.mp4", "video")]


def test_help_has_examples(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["infer", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "das infer photo.jpg --camera" in text and "--hfov" in text


def test_cpu_options_reach_the_estimator(tmp_path: Path, ckpt: Path, frames: list[np.ndarray],
                                         capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from das_core.engine.estimator import Estimator

    good = write_png(tmp_path / "good.png", frames[0])
    seen: dict = {}
    real = Estimator.from_checkpoint.__func__  # type: ignore[attr-defined]

    def spy(cls, path, **kw):  # noqa: ANN001, ANN202
        seen.update(kw)
        return real(cls, path, **kw)

    monkeypatch.setattr(Estimator, "from_checkpoint", classmethod(spy))
    before = torch.get_num_threads()
    try:
        rc, text, err = das_infer([str(good), "--hfov", "60", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"),
                                   "--input-scale", "0.5", "--threads", "1"], capsys)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert rc == 0, err
    assert seen["input_scale"] == 0.5 and seen["backend"] == "eager"
    rc, _, err = das_infer([str(good), "--hfov", "60", "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"),
                            "--input-scale", "0"], capsys)
    assert rc == 1 and "input scale must be in (0, 4]" in err and "Traceback" not in err
