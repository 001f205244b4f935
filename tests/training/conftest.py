"""Shared fixtures for the training tests: a tiny synthetic data set and the tiny CPU config."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from das_core.config import TrainConfig, load_train_config

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = REPO / "config" / "train" / "tiny_cpu.yaml"


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """8 training and 3 test images of at most 96 px, rendered once per session."""
    from das_core.data.make_synthetic import generate
    from das_core.data.synthetic import SceneConfig

    out = tmp_path_factory.mktemp("synth")
    scene = SceneConfig(min_size=80, max_size=96, people_range=(1, 3))
    return {
        "train": generate(out, "train", 8, seed=0, cfg=scene, workers=1, progress=False),
        "test": generate(out, "test", 3, seed=0, cfg=scene, workers=1, progress=False),
    }


@pytest.fixture(scope="session")
def tiny_config_path() -> Path:
    return TINY_CONFIG


@pytest.fixture(scope="session")
def make_tiny_config():
    """``make_tiny_config(data, output_dir, max_iters=3, optim__lr=0.1)`` → the CI smoke TrainConfig."""
    return tiny_config


def tiny_config(data: dict[str, Path], output_dir: Path, **overrides: object) -> TrainConfig:
    """The CI smoke config on ``data`` with extra overrides (``a__b=1`` sets ``a.b``)."""
    nested: dict[str, object] = {"data": {"train": [str(data["train"])]}, "output_dir": str(output_dir)}
    for key, value in overrides.items():
        node = nested
        parts = key.split("__")
        for p in parts[:-1]:
            node = node.setdefault(p, {})  # type: ignore[assignment]
        node[parts[-1]] = value
    return load_train_config(TINY_CONFIG, nested)


@pytest.fixture(scope="session")
def training_script():
    """``training_script("arm_context")`` → ``training/arm_context.py`` imported as a module (the scripts are not a
    package)."""

    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, REPO / "training" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        return mod

    return load
