"""Joint confidence calibration: the map decode applies, its validation, and the fit that produces it."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from das_core.config import ConfigError, DecodeConfig
from das_core.engine.decode import calibrate_confidence

REPO = Path(__file__).resolve().parents[2]
KNOTS = ((0.0, 0.2), (0.1, 0.5), (0.4, 0.95), (1.0, 0.99))


def _fit_module():
    spec = importlib.util.spec_from_file_location("confidence_calibration", REPO / "training/confidence_calibration.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return mod


def test_no_knots_keeps_the_raw_confidence():
    raw = torch.rand(2, 3, 15)
    assert calibrate_confidence(raw, ()) is raw


def test_knots_map_piecewise_linearly_and_hold_their_end_values():
    raw = torch.tensor([0.0, 0.05, 0.1, 0.25, 0.4, 0.7, 1.0])
    out = calibrate_confidence(raw, KNOTS)
    expected = torch.tensor([0.2, 0.35, 0.5, 0.725, 0.95, 0.97, 0.99])
    torch.testing.assert_close(out, expected)
    assert torch.all(out[1:] >= out[:-1])


def test_bad_knots_are_refused_naming_the_key():
    for bad in (((0.0, 0.2),), ((0.2, 0.1), (0.1, 0.5)), ((0.0, 0.6), (0.5, 0.4)), ((0.0, 0.2), (1.5, 0.9))):
        with pytest.raises(ConfigError, match="decode.confidence_calibration"):
            replace(DecodeConfig(), confidence_calibration=bad)


def test_fitted_knots_are_monotone_and_recover_a_known_reliability_curve():
    rng = np.random.default_rng(0)
    raw = rng.beta(0.5, 4.0, 20000)
    p_right = np.clip(0.2 + 2.0 * raw, 0.0, 1.0)  # the true reliability curve
    right = rng.random(raw.shape) < p_right
    knots = _fit_module().fit_knots(raw, right)
    xs, ys = np.array(knots).T
    assert xs[0] == 0.0 and xs[-1] == 1.0 and np.all(np.diff(xs) > 0) and np.all(np.diff(ys) >= 0)
    DecodeConfig(confidence_calibration=tuple(map(tuple, knots)))  # the config accepts what the fit writes
    probe = np.quantile(raw, [0.1, 0.5, 0.9])
    mapped = calibrate_confidence(torch.tensor(probe), [tuple(k) for k in knots]).numpy()
    np.testing.assert_allclose(mapped, np.clip(0.2 + 2.0 * probe, 0, 1), atol=0.05)
