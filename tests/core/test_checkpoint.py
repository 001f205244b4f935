"""Checkpoints are safetensors + YAML; every broken file gives one error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from das_core.checkpoint import CheckpointError, amend_checkpoint, load_checkpoint, save_checkpoint
from das_core.config import ModelConfig


def test_save_load_round_trip(tmp_path: Path) -> None:
    state = {"a.weight": torch.randn(3, 4), "b": torch.arange(5)}
    st, ym = save_checkpoint(tmp_path / "m", state, ModelConfig(), {"recipe": "test"})
    assert st.name == "m.safetensors" and ym.name == "m.yaml"
    ck = load_checkpoint(tmp_path / "m.safetensors")
    assert ck.config == ModelConfig() and ck.record == {"recipe": "test"}
    assert torch.equal(ck.state_dict["a.weight"], state["a.weight"])
    assert not list(tmp_path.glob("*.tmp")), "no temporary files are left behind"


def test_missing_truncated_and_mistyped_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="nope.safetensors: checkpoint file not found"):
        load_checkpoint(tmp_path / "nope")
    st, ym = save_checkpoint(tmp_path / "m", {"w": torch.randn(100)}, ModelConfig())
    st.write_bytes(st.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="m.safetensors: corrupt or truncated"):
        load_checkpoint(tmp_path / "m")
    save_checkpoint(tmp_path / "m", {"w": torch.randn(100)}, ModelConfig())
    ym.write_text("model: {head: {stacked_conv: 2}}\n")
    with pytest.raises(CheckpointError, match=r"m.yaml: model config invalid: head\.stacked_conv"):
        load_checkpoint(tmp_path / "m")
    ym.write_text("- not a mapping\n")
    with pytest.raises(CheckpointError, match="m.yaml"):
        load_checkpoint(tmp_path / "m")


def test_a_pickle_renamed_to_safetensors_is_refused_not_unpickled(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "m", {"w": torch.randn(2)}, ModelConfig())
    torch.save({"w": torch.randn(2)}, tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "m")


def test_amend_checkpoint_sets_model_keys_and_record_and_keeps_the_weights(tmp_path: Path) -> None:
    state = {"w": torch.arange(4, dtype=torch.float32)}
    save_checkpoint(tmp_path / "c", state, ModelConfig(), {"summary": "s"})
    amend_checkpoint(tmp_path / "c", model={"decode": {"score_thr": 0.3}}, record={"note": "n"})
    ck = load_checkpoint(tmp_path / "c")
    assert ck.config.decode.score_thr == 0.3 and ck.config.decode.nms_thr == ModelConfig().decode.nms_thr
    assert ck.record == {"summary": "s", "note": "n"}
    torch.testing.assert_close(ck.state_dict["w"], state["w"])


def test_an_amendment_that_breaks_the_config_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "c", {"w": torch.zeros(1)}, ModelConfig())
    before = (tmp_path / "c.yaml").read_text()
    with pytest.raises(CheckpointError, match=r"c\.yaml: the amended model config is invalid: decode"):
        amend_checkpoint(tmp_path / "c", model={"decode": {"no_such_key": 1}})
    assert (tmp_path / "c.yaml").read_text() == before
