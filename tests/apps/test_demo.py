"""das demo: synthetic crowd → the node's FramePipeline → MCAP bag, overlay video/strip, 3D plot, summary.

Plumbing tests use a tiny randomly initialised DAS written to a checkpoint here (with its classification
and centerness biases raised so that every frame has persons in its messages); the accuracy test needs the
shipped demo checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from cli_fixtures import tiny_checkpoint
from rosbags.highlevel import AnyReader

from das_core.data.synthetic import make_sequence
from das_core.persons import Persons
from das_ros import cli
from das_ros.apps import demo, infer

FRAMES, WIDTH, HEIGHT = 4, 160, 96
SUMMARY_KEYS = {"checkpoint", "device", "backend", "sequence", "metrics", "timing", "predicted_tracks",
                "bad_frames", "outputs"}
METRIC_KEYS = {"mpjpe_rel_mm", "mpjpe_abs_mm", "pck_abs_150mm", "root_depth_err_mm", "recall", "precision",
               "num_gt", "num_pred", "num_matched"}


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Default output folders (infer_out/, demo_out/) land in the test's folder, never in the checkout."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int, str]:
    """One `das demo` run through the command line (shared by the plumbing tests: it is the slow part)."""
    root = tmp_path_factory.mktemp("demo")
    ckpt = tiny_checkpoint(root / "tiny")
    out = root / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli.main(["demo", "--checkpoint", str(ckpt), "--out", str(out), "--frames", str(FRAMES),
                       "--width", str(WIDTH), "--height", str(HEIGHT), "--device", "cpu", "--no-progress"])
    return ckpt, out, rc, buf.getvalue()


def test_demo_prints_accuracy_speed_and_outputs(tiny_demo: tuple[Path, Path, int, str]) -> None:
    _, out, rc, text = tiny_demo
    assert rc == 0, text
    for needle in ("MPJPE root-aligned", "MPJPE absolute", "PCK_abs@150mm", "root depth error", "recall",
                   "precision", "frames/s", "latency p50", "demo_bag/ (MCAP)", "plot_3d.png", "summary.json"):
        assert needle in text
    assert not [p for p in out.rglob(".*")], "temporary files left behind"


def test_demo_summary_json_has_the_documented_schema(tiny_demo: tuple[Path, Path, int, str]) -> None:
    ckpt, out, _, _ = tiny_demo
    s = json.loads((out / "summary.json").read_text())
    assert set(s) == SUMMARY_KEYS and set(s["metrics"]) == METRIC_KEYS
    assert s["checkpoint"] == str(ckpt) and s["device"] == "cpu" and s["backend"] == "eager"
    assert s["sequence"]["frames"] == FRAMES and (s["sequence"]["width"], s["sequence"]["height"]) == (WIDTH, HEIGHT)
    assert s["metrics"]["num_gt"] > 0 and 1 <= s["metrics"]["num_pred"] <= 4 * FRAMES  # ≤ nms_post per frame
    assert all(v is None or math.isfinite(v) for v in s["metrics"].values())
    assert s["timing"]["frames_timed"] == FRAMES and s["timing"]["latency_ms_p50"] > 0 and s["timing"]["fps"] > 0
    assert s["bad_frames"] == {}
    for name in s["outputs"].values():
        assert name is None or (out / name).exists()


def test_demo_bag_reads_back_with_rosbags_and_poses_decode(tiny_demo: tuple[Path, Path, int, str]) -> None:
    _, out, _, _ = tiny_demo
    bag = out / "demo_bag"
    assert (bag / "metadata.yaml").is_file() and len(list(bag.glob("*.mcap"))) == 1
    msgs: dict[str, list] = {}
    with AnyReader([bag]) as reader:  # no typestore given: the definitions embedded in the bag must do
        types = {c.topic: c.msgtype for c in reader.connections}
        for conn, t, raw in reader.messages():
            msgs.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    assert types == {"/camera/image_raw": "sensor_msgs/msg/Image", "/camera/camera_info": "sensor_msgs/msg/CameraInfo",
                     "/das/poses": "das_ros/msg/MultiPerson3DPose", "/das/markers": "visualization_msgs/msg/MarkerArray",
                     "/das/debug_image/compressed": "sensor_msgs/msg/CompressedImage"}
    assert {k: len(v) for k, v in msgs.items()} == {k: FRAMES for k in types}
    seq = make_sequence(num_frames=1, width=WIDTH, height=HEIGHT, seed=demo.DemoSettings().seed)
    img = msgs["/camera/image_raw"][0][1]
    assert (img.width, img.height, img.encoding) == (WIDTH, HEIGHT, "rgb8")
    assert np.array_equal(np.asarray(img.data).reshape(HEIGHT, WIDTH, 3), seq.frames[0].image)
    debug = cv2.imdecode(np.asarray(msgs["/das/debug_image/compressed"][0][1].data), cv2.IMREAD_COLOR)
    assert debug is not None and debug.shape == (HEIGHT, WIDTH, 3)
    info = msgs["/camera/camera_info"][0][1]
    assert np.allclose(info.k, seq.camera.matrix().ravel())
    summary = json.loads((out / "summary.json").read_text())
    assert sum(len(m.persons) for _, m in msgs["/das/poses"]) == summary["metrics"]["num_pred"] >= 1
    for (t_img, img), (t_pose, poses) in zip(msgs["/camera/image_raw"], msgs["/das/poses"], strict=True):
        assert t_img == t_pose and poses.header.stamp == img.header.stamp
        assert poses.header.frame_id == "camera_color_optical_frame" and poses.skeleton == "panoptic15"
        assert len(poses.joint_names) == 15
        for p in poses.persons:
            assert len(p.joints) == 15 and math.isfinite(p.root.z)
            assert all(math.isfinite(j.position.x + j.position.y + j.position.z + j.u + j.v) for j in p.joints)


def test_demo_images_decode_with_opencv(tiny_demo: tuple[Path, Path, int, str]) -> None:
    _, out, _, _ = tiny_demo
    strip = cv2.imread(str(out / "overlay_strip.png"))
    assert strip is not None and strip.shape[0] == HEIGHT and strip.shape[1] > WIDTH * FRAMES
    plot = cv2.imread(str(out / "plot_3d.png"))
    assert plot is not None and plot.shape[2] == 3 and plot.shape[1] > plot.shape[0]
    summary = json.loads((out / "summary.json").read_text())
    if summary["outputs"]["video"] is not None:  # None only where OpenCV has no mp4 encoder
        cap = cv2.VideoCapture(str(out / "overlay.mp4"))
        n = 0
        while cap.read()[0]:
            n += 1
        assert n == FRAMES


class OracleEstimator:
    """Returns the ground truth of the rendered frame (people with enough joints in view), score 1."""

    def __init__(self, settings: demo.DemoSettings) -> None:
        seq = make_sequence(num_frames=settings.frames, seed=settings.seed, width=settings.width,
                            height=settings.height)
        self.truth = {}
        for scene in seq.frames:
            keep = scene.visible.sum(1) >= demo.MIN_VISIBLE_JOINTS
            n = int(keep.sum())
            self.truth[scene.image.tobytes()] = Persons(
                scores=np.ones(n, np.float32), joints_3d=scene.joints_3d[keep].astype(np.float32),
                joints_2d=scene.joints_2d[keep].astype(np.float32), joint_confidence=np.ones((n, 15), np.float32),
                track_ids=np.full(n, -1, np.int64))

    def __call__(self, image: np.ndarray, intrinsics: object) -> Persons:
        return self.truth[np.ascontiguousarray(image).tobytes()]


def test_demo_scores_a_perfect_estimator_as_perfect(tmp_path: Path) -> None:
    """The metrics, GT filtering, message round trip and tracker keep an exact answer exact."""
    settings = demo.DemoSettings(frames=3, width=WIDTH, height=HEIGHT)
    s = demo.run_demo(OracleEstimator(settings), tmp_path, settings, progress=False)
    m = s["metrics"]
    assert m["num_gt"] > 0 and m["num_matched"] == m["num_gt"] == m["num_pred"]
    assert m["recall"] == 1.0 and m["precision"] == 1.0 and m["pck_abs_150mm"] == 1.0
    assert m["mpjpe_rel_mm"] < 1e-3 and m["mpjpe_abs_mm"] < 1e-3 and m["root_depth_err_mm"] < 1e-3
    assert s["predicted_tracks"] == s["sequence"]["ground_truth_tracks"]


def test_unwritable_output_folder_gives_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    rc = cli.main(["demo", "--checkpoint", str(tmp_path / "never_loaded"), "--out", str(blocker / "out"),
                   "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "cannot write to output folder" in err and "--out" in err and "Traceback" not in err


def test_missing_shipped_checkpoint_says_how_to_make_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(infer, "shipped_checkpoint", lambda: tmp_path / "assets" / "das_demo")
    rc = cli.main(["demo", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and "das_demo.safetensors" in err and "realistic_r34s.yaml" in err and "--checkpoint" in err


def test_bad_sequence_settings_are_rejected_with_the_option_name() -> None:
    with pytest.raises(ValueError, match="--frames"):
        demo.DemoSettings(frames=0)
    with pytest.raises(ValueError, match="--width"):
        dataclasses.replace(demo.DemoSettings(), width=8)


def test_help_has_examples(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "das demo --frames" in text and "--checkpoint" in text


# ----------------------------------------------------------------------------------------------
# Accuracy of the shipped demo checkpoint
# ----------------------------------------------------------------------------------------------

# Bars on the first 10 frames of the default 640×384 sequence (seed 1: 50 ground-truth people, roots
# 2.5–9.2 m away, mean 4.6 m). Each rules out a model that has not learned one part of the task; the
# baselines were measured on these frames from the ground truth itself, with perfect detection:
#  - recall 0.8 / precision 0.7: a detector that misses one person in five, or invents many.
#  - MPJPE root-aligned 130 mm: the mean root-relative pose of these very frames put on every true root
#    scores 138 mm, so a model below 130 mm reads each pose from the image.
#  - root-depth error 500 mm: one constant depth (the mean) errs 2227 mm; every depth 10 % too far errs
#    463 mm. Near 10 %, the model reads the scale cue together with the intrinsics.
#  - PCK_abs@150mm 0.1: the constant depth scores 0.0, every depth 5 % too far 0.30 and 10 % too far 0.0:
#    absolute PCK mostly measures depth, and 0.1 asks for depth within a few per cent for some people.
SHIPPED_BARS = {"recall": 0.8, "precision": 0.7, "mpjpe_rel_mm": 130.0, "root_depth_err_mm": 500.0,
                "pck_abs_150mm": 0.1}


def test_shipped_checkpoint_beats_the_accuracy_bars(tmp_path: Path) -> None:
    """The demo a newcomer runs first must show a model that works."""
    from das_core.checkpoint import checkpoint_paths

    st, ym = checkpoint_paths(infer.shipped_checkpoint())
    if not (st.is_file() and ym.is_file()):
        pytest.skip(f"the demo checkpoint is not shipped yet ({st}); the lead places it before release")
    est = infer.load_demo_estimator(None, device="cpu")
    s = demo.run_demo(est, tmp_path, demo.DemoSettings(frames=10), progress=False)
    m = s["metrics"]
    assert m["recall"] >= SHIPPED_BARS["recall"], m
    assert m["precision"] >= SHIPPED_BARS["precision"], m
    assert m["mpjpe_rel_mm"] <= SHIPPED_BARS["mpjpe_rel_mm"], m
    assert m["root_depth_err_mm"] <= SHIPPED_BARS["root_depth_err_mm"], m
    assert m["pck_abs_150mm"] >= SHIPPED_BARS["pck_abs_150mm"], m
