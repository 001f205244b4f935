"""The weight average (``ema_decay``): what it averages, that it resumes exactly, and that it is off by default."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from das_core.checkpoint import load_checkpoint
from das_core.config import ConfigError
from das_core.training.trainer import train


def _float_tensors(path) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(str(path)).items() if v.is_floating_point()}


def test_the_average_is_the_first_weights_then_decays_towards_each_new_step(tiny_data, make_tiny_config, tmp_path):
    cfg = make_tiny_config(tiny_data, tmp_path, max_iters=2, ckpt_interval=1, ema_decay=0.25)
    train(cfg, stop_at=1, progress=False)
    after_one = _float_tensors(tmp_path / "last.safetensors")
    # after the first step the average is that step's weights and BatchNorm statistics
    first_average = _float_tensors(tmp_path / "last_ema.safetensors")
    for k, v in after_one.items():
        torch.testing.assert_close(first_average[k], v, rtol=0, atol=0, msg=k)
    train(cfg, resume=True, progress=False)
    after_two = _float_tensors(tmp_path / "final.safetensors")
    average = _float_tensors(tmp_path / "final_ema.safetensors")
    moved = 0
    for k, v in after_two.items():
        torch.testing.assert_close(average[k], 0.25 * after_one[k] + 0.75 * v, rtol=1e-5, atol=1e-6, msg=k)
        moved += int(not torch.equal(after_one[k], v))
    assert moved > 10, "the second step changed the weights, so the test can tell an average from a copy"
    assert any("running_mean" in k for k in average), "buffers are averaged with the weights"


def test_a_resumed_run_ends_with_the_same_average_as_a_straight_one(tiny_data, make_tiny_config, tmp_path):
    straight_dir, resumed_dir = tmp_path / "straight", tmp_path / "resumed"
    train(make_tiny_config(tiny_data, straight_dir, max_iters=4, ema_decay=0.5), progress=False)
    cfg = make_tiny_config(tiny_data, resumed_dir, max_iters=4, ema_decay=0.5)
    train(cfg, stop_at=2, progress=False)
    train(cfg, resume=True, progress=False)
    straight = _float_tensors(straight_dir / "final_ema.safetensors")
    resumed = _float_tensors(resumed_dir / "final_ema.safetensors")
    assert straight.keys() == resumed.keys()
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], rtol=0, atol=1e-6, msg=k)
    final = _float_tensors(straight_dir / "final.safetensors")
    assert any(not torch.equal(final[k], straight[k]) for k in final), "the average is not the last weights"


def test_the_average_loads_as_a_checkpoint_and_says_what_it_is(tiny_data, make_tiny_config, tmp_path):
    train(make_tiny_config(tiny_data, tmp_path, max_iters=2, ema_decay=0.9), progress=False)
    ckpt = load_checkpoint(tmp_path / "final_ema")
    assert set(ckpt.state_dict) == set(load_checkpoint(tmp_path / "final").state_dict)
    assert ckpt.record["weights"] == "exponential moving average, decay 0.9"
    assert ckpt.record["metrics"] == {}, "validation figures belong to the raw weights, not to the average"
    assert load_checkpoint(tmp_path / "last_ema").record["weights"] == "exponential moving average, decay 0.9"


def test_no_average_is_kept_unless_asked_for(tiny_data, make_tiny_config, tmp_path):
    train(make_tiny_config(tiny_data, tmp_path, max_iters=1), progress=False)
    assert (tmp_path / "final.safetensors").is_file()
    assert not list(tmp_path.glob("*_ema*"))


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_a_decay_outside_zero_to_one_is_an_error_naming_the_key(tiny_data, make_tiny_config, tmp_path, decay):
    with pytest.raises(ConfigError, match="ema_decay"):
        make_tiny_config(tiny_data, tmp_path, ema_decay=decay)


def test_resuming_a_run_without_an_average_with_one_asked_for_names_the_key(tiny_data, make_tiny_config, tmp_path):
    train(make_tiny_config(tiny_data, tmp_path, max_iters=2), stop_at=1, progress=False)
    with pytest.raises(ConfigError, match="ema_decay"):
        train(make_tiny_config(tiny_data, tmp_path, max_iters=2, ema_decay=0.5), resume=True, progress=False)
