"""Shared by the hardening tests: the input counter, hypothesis settings, a tiny real Estimator.

A plain module (not conftest.py): other test folders have their own conftest, and two modules named
``conftest`` must not be imported by name.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, settings

# Inputs tried per fuzz target; conftest.py prints them at the end of the run (also without -s).
INPUTS: Counter[str] = Counter()


# What the fuzzed full pipeline produced (frames published, persons published / tracked), printed the same way.
OUTCOMES: Counter[str] = Counter()


def count(target: str) -> None:
    INPUTS[target] += 1


def fuzz_settings(max_examples: int) -> settings:
    """Reproducible (derandomized, no example database), no deadline: the suite's budget is global."""
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])


def header(sec: int = 10, nanosec: int = 0, frame_id: str = "cam_optical") -> SimpleNamespace:
    return SimpleNamespace(stamp=SimpleNamespace(sec=sec, nanosec=nanosec), frame_id=frame_id)


def walk_numbers(obj: Any, path: str = "msg") -> Iterator[tuple[str, float]]:
    """Every int/float reachable from a SimpleNamespace message tree (lists, tuples, namespaces)."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, (int, float)):
        yield path, float(obj)
        return
    if isinstance(obj, SimpleNamespace):
        for k, v in vars(obj).items():
            yield from walk_numbers(v, f"{path}.{k}")
        return
    if isinstance(obj, Iterable):
        for i, v in enumerate(obj):
            yield from walk_numbers(v, f"{path}[{i}]")


def assert_all_finite(msg: Any) -> int:
    """Fail naming the first NaN/inf field of a message tree; returns the number of numbers checked."""
    n = 0
    for path, value in walk_numbers(msg):
        assert math.isfinite(value), f"published field {path} = {value}"
        n += 1
    return n


def tiny_model_config() -> Any:
    """A real ``ModelConfig``: ResNet-18 DAS with a 32-channel FPN on 3 levels, 32 × 64 px input."""
    from das_core.config import (
        BackboneConfig,
        DecodeConfig,
        FPNConfig,
        HeadConfig,
        InputConfig,
        ModelConfig,
        TargetConfig,
        UpdateConfig,
    )

    return ModelConfig(
        name="das_tiny",
        strides=(8, 16, 32),
        backbone=BackboneConfig(name="resnet18"),
        fpn=FPNConfig(out_channels=32, num_outs=3),
        head=HeadConfig(feat_channels=32, stacked_convs=1, num_groups=8, centerness_channels=16),
        update=UpdateConfig(num_points=2),
        targets=TargetConfig(regress_ranges=((-1.0, 16.0), (16.0, 32.0), (32.0, 1e8))),
        decode=DecodeConfig(score_thr=0.05, nms_pre=100, nms_post=20),
        input=InputConfig(short_side=32, long_side=64),
    )


#: Head biases that make the random tiny DAS "find" people: a centre logit of +3 puts every cell's score
#: (sigmoid(cls) · sigmoid(centerness) ≈ 0.95 · 0.5) far above ``score_thr`` (0.05), and a root-depth bias
#: of 100 gives Z / f_eff = 0.05 m per px, i.e. people 2–3 m away on a 32 × 64 px input. Without them the
#: best cell scores ~0.005 and no person ever reaches decode → tracker → messages (issue 15.3).
PEOPLE_CLS_BIAS = 3.0
PEOPLE_DEPTH_BIAS = 100.0


def tiny_estimator(seed: int = 0, finds_people: bool = False) -> Any:
    """The real ``Estimator`` (eager backend, CPU) around a randomly initialised tiny DAS.

    ``finds_people`` sets the head biases above, so that decoding, the tracker and the message builders
    get people to work on (random weights alone find nobody).
    """
    import torch

    from das_core.engine.estimator import Estimator
    from das_core.model.das import DAS

    cfg = tiny_model_config()
    torch.manual_seed(seed)
    model = DAS.from_config(cfg).eval()
    if finds_people:
        with torch.no_grad():
            model.head.conv_cls.bias.fill_(PEOPLE_CLS_BIAS)
            model.head.conv_depth.bias.fill_(PEOPLE_DEPTH_BIAS)
    return Estimator.from_model(model, cfg, device="cpu")


def at_least(target: str, floor: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Fail a fuzz test that tried fewer than ``floor`` inputs of ``target`` (the count docs/RELIABILITY.md
    states as a floor). Hypothesis decides how many examples really run (generation can be cut short, and
    the number depends on its version), so the documented number is checked, not assumed. Put it above
    ``@given``."""

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> None:
            before = INPUTS[target]
            test(*args, **kwargs)
            ran = INPUTS[target] - before
            assert ran >= floor, f"fuzz target {target!r} tried {ran} inputs, fewer than its documented {floor}"

        return run

    return decorate
