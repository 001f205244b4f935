"""Random-convolution augmentation: what it changes, what it keeps, and that training runs with it."""

from __future__ import annotations

import pytest
import torch

from das_core.config import ConfigError
from das_core.training.randconv import random_convolution
from das_core.training.trainer import train


def _batch(b: int = 4, h: int = 32, w: int = 48, seed: int = 0) -> torch.Tensor:
    return torch.randn((b, 3, h, w), generator=torch.Generator().manual_seed(seed))


def test_probability_zero_returns_the_batch_untouched():
    x = _batch()
    assert random_convolution(x, [(32, 48)] * 4, 0.0, (3,)) is x


def test_every_image_is_filtered_at_probability_one_and_none_stays_the_same():
    x = _batch()
    y = random_convolution(x, [(32, 48)] * 4, 1.0, (3,), torch.Generator().manual_seed(1))
    assert y.shape == x.shape and torch.isfinite(y).all()
    for i in range(4):
        assert not torch.allclose(y[i], x[i]), i


def test_the_filtered_image_keeps_its_shapes_and_loses_its_colours():
    # A bright square on black: after a random 3x3 filter the square's inside still differs from the background
    # (shape survives), but its colour is no longer the original's (texture/colour scrambled).
    x = torch.full((8, 3, 32, 32), -1.0)
    x[:, :, 8:24, 8:24] = 1.0
    y = random_convolution(x, [(32, 32)] * 8, 1.0, (3,), torch.Generator().manual_seed(2))
    inside, outside = y[:, :, 12:20, 12:20].mean((2, 3)), y[:, :, 0:4, 0:4].mean((2, 3))
    assert ((inside - outside).abs().amax(1) > 0.05).all()
    assert not torch.allclose(inside, torch.ones_like(inside), atol=0.05)


def test_padding_stays_zero_as_normalisation_left_it():
    x = _batch(b=2)
    sizes = [(20, 30), (32, 48)]
    x[0, :, 20:, :] = 0
    x[0, :, :, 30:] = 0
    y = random_convolution(x, sizes, 1.0, (7,), torch.Generator().manual_seed(3))
    assert (y[0, :, 20:, :] == 0).all() and (y[0, :, :, 30:] == 0).all()
    assert (y[0, :, :20, :30] != 0).any()


def test_the_same_generator_state_draws_the_same_filters():
    x = _batch()
    a = random_convolution(x, [(32, 48)] * 4, 0.5, (1, 3, 5), torch.Generator().manual_seed(4))
    b = random_convolution(x, [(32, 48)] * 4, 0.5, (1, 3, 5), torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_filter_output_spread_stays_near_the_input_spread():
    # He's rule: a filter of unit-variance input keeps roughly unit variance (averaged over many draws).
    x = _batch(b=64, h=64, w=64)
    y = random_convolution(x, [(64, 64)] * 64, 1.0, (5,), torch.Generator().manual_seed(5))
    assert 0.4 < float(y.std()) < 1.6


@pytest.mark.parametrize("key,value,message", [
    ("randconv_prob", 1.5, "augment.randconv_prob"),
    ("randconv_kernel_sizes", [2], "augment.randconv_kernel_sizes"),
    ("randconv_kernel_sizes", [], "augment.randconv_kernel_sizes"),
])
def test_bad_settings_name_the_key(key, value, message, tiny_data, make_tiny_config, tmp_path):
    with pytest.raises(ConfigError, match=message):
        make_tiny_config(tiny_data, tmp_path, **{f"augment__{key}": value})


def test_a_training_run_with_randconv_filters_every_batch_and_its_loss_is_finite(tiny_data, make_tiny_config,
                                                                                 tmp_path, monkeypatch):
    from das_core.training import trainer

    changed = []

    def spy(images, *args):
        out = random_convolution(images, *args)
        changed.append(not torch.equal(out, images))
        return out

    monkeypatch.setattr(trainer, "random_convolution", spy)
    cfg = make_tiny_config(tiny_data, tmp_path, max_iters=2, augment__randconv_prob=1.0)
    result = train(cfg, progress=False)  # a non-finite loss would raise NonFiniteLossError
    assert result.iterations == 2 and (tmp_path / "final.safetensors").is_file()
    assert changed == [True, True]
