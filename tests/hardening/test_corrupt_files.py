"""Corrupt and wrong files: each gives one clear, typed error naming the file and the problem, and
nothing half-written is left behind.

Checkpoints (truncated, random bytes, wrong shapes, mistyped YAML), configs (unknown / mistyped keys,
binary files, alias bombs), bags (missing topics, wrong types, truncated files) and unwritable output
folders.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from fuzz_helpers import tiny_model_config
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from das_core.checkpoint import CheckpointError, checkpoint_paths, load_checkpoint, save_checkpoint
from das_core.config import ConfigError, config_to_dict, load_config, load_train_config
from das_core.engine.estimator import Estimator
from das_core.model.das import DAS
from das_ros import bag
from das_ros.pipeline import PipelineSettings

CFG = tiny_model_config()
TS = get_typestore(Stores.ROS2_HUMBLE)
T = TS.types
ROOT = Path(__file__).resolve().parents[2]

running_as_root = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(path, DAS.from_config(CFG).state_dict(), CFG, {"note": "random weights"})
    return path


def _copy_checkpoint(src: Path, dst: Path) -> Path:
    for a, b in zip(checkpoint_paths(src), checkpoint_paths(dst), strict=True):
        b.write_bytes(a.read_bytes())
    return dst


# --- checkpoints ------------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 7, 100, -1000])
def test_truncated_safetensors_names_the_file(good_checkpoint: Path, tmp_path: Path, keep: int) -> None:
    path = _copy_checkpoint(good_checkpoint, tmp_path / "cut")
    st, _ = checkpoint_paths(path)
    data = st.read_bytes()
    st.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(CheckpointError, match=r"cut\.safetensors.*(corrupt|truncated)"):
        load_checkpoint(path)


def test_random_bytes_and_pickles_are_not_checkpoints(good_checkpoint: Path, tmp_path: Path) -> None:
    path = _copy_checkpoint(good_checkpoint, tmp_path / "rnd")
    st, _ = checkpoint_paths(path)
    st.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match=r"rnd\.safetensors"):
        load_checkpoint(path)
    st.write_bytes(b"\x80\x04\x95" + b"\0" * 64)  # a pickle header: never unpickled
    with pytest.raises(CheckpointError, match=r"rnd\.safetensors"):
        load_checkpoint(path)


@pytest.mark.parametrize("text, match", [
    ("model: {backbone: {name: resnet18, depth: 3}}", r"model config invalid.*backbone\.depth.*unknown key"),
    ("model: {decode: {nms_post: many}}", r"decode\.nms_post.*integer"),
    ("model: {z_norm: .nan}", r"z_norm.*finite"),
    ("[1, 2]", "top-level 'model'"),
    ("model: [unclosed", "not a valid checkpoint YAML"),
    ("model: {}\nrecord: 3", "'record' must be a mapping"),
])
def test_wrong_checkpoint_yaml_names_the_file_and_key(good_checkpoint: Path, tmp_path: Path, text: str,
                                                        match: str) -> None:
    path = _copy_checkpoint(good_checkpoint, tmp_path / "bad")
    checkpoint_paths(path)[1].write_text(text, encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"bad\.yaml") as err:
        load_checkpoint(path)
    assert err.match(match)


def test_missing_half_of_a_checkpoint_names_it(good_checkpoint: Path, tmp_path: Path) -> None:
    path = _copy_checkpoint(good_checkpoint, tmp_path / "half")
    checkpoint_paths(path)[1].unlink()
    with pytest.raises(CheckpointError, match=r"half\.yaml: checkpoint file not found"):
        load_checkpoint(path)


def test_weights_of_another_model_name_the_checkpoint(good_checkpoint: Path, tmp_path: Path) -> None:
    """Shape mismatches (another backbone width) and missing tensors: CheckpointError, not RuntimeError."""
    state = DAS.from_config(CFG).state_dict()
    key = next(k for k, v in state.items() if v.ndim == 4)
    state[key] = torch.zeros(1, 1, 1, 1)
    save_checkpoint(tmp_path / "shape", state, CFG, {})
    with pytest.raises(CheckpointError, match=r"(?s)shape: weights do not match.*" + key.replace(".", r"\.")):
        Estimator.from_checkpoint(tmp_path / "shape", device="cpu")
    del state[key]
    save_checkpoint(tmp_path / "missing", state, CFG, {})
    with pytest.raises(CheckpointError, match=r"missing.*do not match.*missing"):
        Estimator.from_checkpoint(tmp_path / "missing", device="cpu")


@pytest.mark.skipif(running_as_root, reason="root can write into read-only folders")
def test_unwritable_checkpoint_folder_fails_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="ro"):
            save_checkpoint(folder / "ckpt", DAS.from_config(CFG).state_dict(), CFG, {})
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_checkpoint_into_a_path_under_a_file_names_it(tmp_path: Path) -> None:
    """An output folder that cannot exist (its parent is a file): works as root too."""
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="file"):
        save_checkpoint(tmp_path / "file" / "ckpt", DAS.from_config(CFG).state_dict(), CFG, {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_failed_checkpoint_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that dies half-way (disk full, interrupt) leaves neither a partial file nor its temporary."""
    import das_core.checkpoint as ck

    def dying_save(tensors: dict, filename: str, metadata: dict) -> None:
        Path(filename).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "save_file", dying_save)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint(tmp_path / "full", DAS.from_config(CFG).state_dict(), CFG, {})
    assert list(tmp_path.iterdir()) == []


# --- configs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["head"].update(stacked_conv=2), r"head\.stacked_conv: unknown key \(did you mean 'stacked_convs'"),
    (lambda d: d["decode"].update(score_thr="high"), r"decode\.score_thr: expected a number"),
    (lambda d: d.update(strides="8,16"), r"strides: expected a list"),
    (lambda d: d["input"].update(short_side=1.5), r"input\.short_side: expected an integer"),
    (lambda d: d["backbone"].update(name="vgg"), r"backbone\.name: expected one of"),
    (lambda d: d.update(depth_factor=float("inf")), r"depth_factor: expected a finite number"),
])
def test_config_with_unknown_or_mistyped_key_names_file_and_key(tmp_path: Path, mutate: object, match: str) -> None:
    doc = config_to_dict(CFG)
    mutate(doc)  # type: ignore[operator]
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as err:
        load_config(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("raw, match", [
    (b"\xff\xfe\x00\x01binary", "not valid YAML"),
    (b"[" * 20000, "not valid YAML"),
    (b"name: [&a [1, 1, 1, 1], &b [*a, *a, *a, *a], &c [*b, *b, *b, *b], [*c, *c, *c, *c]]", r"name: expected a string"),
    (b"- 1\n- 2", "top level must be a mapping"),
])
def test_unreadable_configs_name_the_file(tmp_path: Path, raw: bytes, match: str) -> None:
    path = tmp_path / "weird.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError, match=match) as err:
        load_config(path)
    assert str(path) in str(err.value) and len(str(err.value)) < 2000


def test_train_config_pointing_to_a_missing_model_file_names_both(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("model: nowhere.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"train\.yaml: model: .*nowhere\.yaml: config file not found"):
        load_train_config(path)


def test_a_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path)


# --- bags -----------------------------------------------------------------------------------------------


def _header(i: int) -> object:
    return T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=100, nanosec=i), frame_id="cam")


def _write_bag(path: Path, n: int = 3, image_type: str = "sensor_msgs/msg/Image") -> None:
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        c_img = w.add_connection("/cam/image", image_type, typestore=TS)
        c_str = w.add_connection("/cam/camera_info", "std_msgs/msg/String", typestore=TS)
        w.write(c_str, 1, TS.serialize_cdr(T["std_msgs/msg/String"](data="not a CameraInfo"), "std_msgs/msg/String"))
        for i in range(n):
            if image_type == "sensor_msgs/msg/Image":
                msg = T[image_type](header=_header(i), height=4, width=4, encoding="rgb8", is_bigendian=0, step=12,
                                    data=np.zeros(48, np.uint8))
            else:
                msg = T[image_type](data=f"frame {i}")
            w.write(c_img, 10 + i, TS.serialize_cdr(msg, image_type))


class _Est:
    def __call__(self, rgb: np.ndarray, k: object) -> object:
        from das_core.persons import Persons

        return Persons.empty(15)


def _process(src: Path, dst: Path, **kw: object) -> bag.BagSummary:
    from das_core.skeletons import get_skeleton

    args = dict(image_topic="/cam/image", camera_info_topic=None, estimator=_Est(), skeleton=get_skeleton("panoptic15"),
                settings=PipelineSettings(fallback_hfov_deg=60.0), progress=False)
    args.update(kw)
    return bag.process_bag(src, dst, **args)  # type: ignore[arg-type]


def test_bag_missing_topic_lists_the_topics_and_writes_nothing(tmp_path: Path) -> None:
    _write_bag(tmp_path / "in")
    with pytest.raises(bag.BagError, match=r"'/nope' is not in .*in; topics: /cam/camera_info \[std_msgs"):
        _process(tmp_path / "in", tmp_path / "out", image_topic="/nope")
    assert not (tmp_path / "out").exists()


def test_bag_topics_of_the_wrong_type_are_named(tmp_path: Path) -> None:
    _write_bag(tmp_path / "in", image_type="std_msgs/msg/String")
    with pytest.raises(bag.BagError, match=r"'/cam/image' has type std_msgs/msg/String, expected one of"):
        _process(tmp_path / "in", tmp_path / "out")
    _write_bag(tmp_path / "in2")
    with pytest.raises(bag.BagError, match=r"'/cam/camera_info' has type std_msgs/msg/String, expected sensor_msgs"):
        _process(tmp_path / "in2", tmp_path / "out", camera_info_topic="/cam/camera_info")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "in2"]


def test_truncated_bag_gives_one_error_naming_it_and_no_output(tmp_path: Path) -> None:
    _write_bag(tmp_path / "in", n=20)
    mcap = next((tmp_path / "in").glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    with pytest.raises(bag.BagError, match=r"in: cannot read the input bag \(corrupt or truncated\?\)"):
        _process(tmp_path / "in", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_failure_while_writing_leaves_no_half_written_bag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_bag(tmp_path / "in", n=5)
    calls = {"n": 0}
    real = bag.FramePipeline.process

    def dies_on_third(self: object, msg: object, *, compressed: bool = False) -> object:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, msg, compressed=compressed)  # type: ignore[arg-type]

    monkeypatch.setattr(bag.FramePipeline, "process", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        _process(tmp_path / "in", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # neither "out" nor a ".out.*" temporary


@pytest.mark.skipif(running_as_root, reason="root can write into read-only folders")
def test_bag_into_an_unwritable_folder_names_it(tmp_path: Path) -> None:
    _write_bag(tmp_path / "in")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="ro"):
            _process(tmp_path / "in", ro / "out")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_bag_into_a_path_under_a_file_names_it(tmp_path: Path) -> None:
    _write_bag(tmp_path / "in")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="file"):
        _process(tmp_path / "in", tmp_path / "file" / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "in"]


def test_bag_output_that_exists_is_not_touched(tmp_path: Path) -> None:
    _write_bag(tmp_path / "in")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(bag.BagError, match="exists"):
        _process(tmp_path / "in", tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_input_bag_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ghost"):
        _process(tmp_path / "ghost", tmp_path / "out")


def test_params_file_of_the_wrong_shape_is_named(tmp_path: Path) -> None:
    p = tmp_path / "params.yaml"
    p.write_text("just: a mapping\n", encoding="utf-8")
    with pytest.raises(bag.BagError, match=r"params\.yaml: no ros__parameters"):
        bag._read_params_file(str(p))


def test_config_of_the_real_model_still_loads() -> None:
    """The shipped configs pass the stricter (finite-number) checks."""
    for path in sorted((ROOT / "config" / "model").glob("*.yaml")):
        assert dataclasses.is_dataclass(load_config(path))


def test_pipeline_survives_a_message_without_data_fields() -> None:
    from das_ros.factory import namespace_factory
    from das_ros.pipeline import FramePipeline

    pipe = FramePipeline(_Est(), __import__("das_core.skeletons", fromlist=["x"]).get_skeleton("panoptic15"),
                         namespace_factory(), PipelineSettings(fallback_hfov_deg=60.0))
    msg = SimpleNamespace(header=_header(0), height=2, width=2, encoding="rgb8", is_bigendian=0, step=6, data=None)
    res = pipe.process(msg)
    assert not res.ok and res.reason == "bad_image"
