"""das_ros.recording.McapWriter: the one MCAP writer of das bag, das demo and das infer appears whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from rosbags.highlevel import AnyReader

from das_ros.factory import RosbagsFactory
from das_ros.interfaces import typestore
from das_ros.recording import McapWriter, header_message

TOPIC, TYPE = "/h", "std_msgs/msg/Header"


def _headers(path: Path) -> list[str]:
    with AnyReader([path]) as reader:
        return [reader.deserialize(raw, c.msgtype).frame_id for c, _, raw in reader.messages()]


def test_a_finished_bag_replaces_the_old_one_and_an_aborted_one_leaves_nothing(tmp_path: Path) -> None:
    ts = typestore("humble")
    make = RosbagsFactory(ts)
    dst = tmp_path / "bag"
    for name in ("first", "second"):
        with McapWriter(dst, ts, topics={TOPIC: TYPE}, distro="humble") as w:
            w.write(TOPIC, 1_000, header_message(make, 1e-6, name))
    assert _headers(dst) == ["second"]
    with pytest.raises(RuntimeError, match="boom"), McapWriter(dst, ts, topics={TOPIC: TYPE}) as w:
        w.write(TOPIC, 1_000, header_message(make, 1e-6, "third"))
        raise RuntimeError("boom")
    assert _headers(dst) == ["second"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]  # no temporary folder left behind


def test_bare_file_mode_writes_one_mcap_file(tmp_path: Path) -> None:
    ts = typestore()
    with McapWriter(tmp_path / "out.mcap", ts, topics={TOPIC: TYPE}, bare_file=True) as w:
        w.write(TOPIC, 5, header_message(RosbagsFactory(ts), 0.0, "cam"))
    assert (tmp_path / "out.mcap").is_file() and _headers(tmp_path / "out.mcap") == ["cam"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mcap"]


def test_unknown_distro_is_named() -> None:
    with pytest.raises(ValueError, match="'iron'"):
        typestore("iron")
