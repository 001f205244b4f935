"""training/average_checkpoints.py: the weighted mean of every floating-point tensor of checkpoints of one model,
integer tensors and the YAML model section from the first, and a clear error for checkpoints that do not fit."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

from das_core.checkpoint import load_checkpoint, save_checkpoint
from das_core.config import ModelConfig, config_from_dict
from das_core.model.das import DAS

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "training"))

import average_checkpoints  # noqa: E402

TINY = yaml.safe_load((ROOT / "config/model/das_tiny.yaml").read_text())


def tiny_checkpoint(path: Path, seed: int, **overrides) -> Path:
    cfg = config_from_dict(ModelConfig, {**TINY, **overrides})
    torch.manual_seed(seed)
    model = DAS.from_config(cfg)
    state = model.state_dict()
    for key, value in state.items():  # distinct running statistics and counters, so their handling shows
        if key.endswith("running_mean"):
            value.fill_(float(seed))
        if key.endswith("num_batches_tracked"):
            value.fill_(seed + 1)
    save_checkpoint(path, state, cfg, {"summary": f"seed {seed}"})
    return path


def test_the_average_is_the_weighted_mean_of_every_float_tensor(tmp_path) -> None:
    a, b = tiny_checkpoint(tmp_path / "a", 1), tiny_checkpoint(tmp_path / "b", 2)
    assert average_checkpoints.main([str(a), str(b), str(tmp_path / "avg"), "--weights", "3", "1"]) == 0
    avg, ca, cb = (load_checkpoint(p) for p in (tmp_path / "avg", a, b))
    for key, value in avg.state_dict.items():
        if value.is_floating_point():
            torch.testing.assert_close(value, 0.75 * ca.state_dict[key] + 0.25 * cb.state_dict[key])
        else:
            assert torch.equal(value, ca.state_dict[key])  # counters come from the first checkpoint
    bn_mean = next(k for k in avg.state_dict if k.endswith("running_mean"))
    assert torch.allclose(avg.state_dict[bn_mean], torch.full_like(avg.state_dict[bn_mean], 1.25))
    assert avg.config == ca.config
    assert avg.record["averaged_from"] == [{"checkpoint": str(a), "weight": 3.0}, {"checkpoint": str(b), "weight": 1.0}]
    DAS.from_config(avg.config).load_state_dict(avg.state_dict)  # a model again


def test_checkpoints_of_different_models_are_refused_with_the_reason(tmp_path) -> None:
    a = tiny_checkpoint(tmp_path / "a", 1)
    wider = tiny_checkpoint(tmp_path / "b", 2, fpn={**TINY["fpn"], "out_channels": TINY["fpn"]["out_channels"] * 2})
    with pytest.raises(ValueError, match="shape"):
        average_checkpoints.main([str(a), str(wider), str(tmp_path / "avg")])
    assert not (tmp_path / "avg.safetensors").exists()


def test_bad_weights_are_refused(tmp_path, capsys) -> None:
    a, b = tiny_checkpoint(tmp_path / "a", 1), tiny_checkpoint(tmp_path / "b", 2)
    with pytest.raises(SystemExit):
        average_checkpoints.main([str(a), str(b), str(tmp_path / "avg"), "--weights", "1"])
    assert "--weights" in capsys.readouterr().err
