"""Fuzzing config loading: random YAML documents, keys, types and values, and raw bytes.

Contract: ``load_config`` / ``load_train_config`` return a config or raise ``ConfigError`` whose message
names the file; nothing else escapes (no ``TypeError``, ``RecursionError``, ``UnicodeDecodeError``).
A returned config holds only finite numbers.
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml
from fuzz_helpers import at_least, count, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from das_core.config import ConfigError, ModelConfig, TrainConfig, config_to_dict, load_config, load_train_config

# One scratch folder for the whole module (hypothesis runs many examples per test function).
_TMP = Path(tempfile.mkdtemp(prefix="das_fuzz_cfg_"))
atexit.register(shutil.rmtree, _TMP, True)
BASE_MODEL = config_to_dict(ModelConfig())
BASE_TRAIN = config_to_dict(TrainConfig())

_scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
            | st.text(max_size=12) | st.sampled_from(["1e8", "1e999", "-.inf", ".nan", "0x10", "yes", "~", "resnet18"]))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


def _paths(d: dict[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for k, v in d.items():
        out.append((*prefix, k))
        if isinstance(v, dict):
            out += _paths(v, (*prefix, k))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    """The schema's defaults with a few keys replaced, removed, misspelt or added."""
    doc = yaml.safe_load(yaml.safe_dump(base))  # deep copy
    paths = _paths(doc)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths))
        node = doc
        for k in path[:-1]:
            if not isinstance(node, dict) or k not in node:
                break
            node = node[k]
        else:
            if not isinstance(node, dict):
                continue
            how = draw(st.sampled_from(["value", "value", "delete", "misspell", "add"]))
            if how == "value":
                node[path[-1]] = draw(_values)
            elif how == "delete":
                node.pop(path[-1], None)
            elif how == "misspell":
                node[path[-1] + draw(st.sampled_from(["_", "s", "X"]))] = node.pop(path[-1], None)
            else:
                node[draw(st.text(min_size=1, max_size=8))] = draw(_values)
    if draw(st.integers(0, 19)) == 0:
        doc = draw(_values)  # not even a mapping
    return doc


def _check_finite(cfg: Any) -> None:
    def walk(v: Any) -> None:
        if dataclasses.is_dataclass(v):
            for f in dataclasses.fields(v):
                walk(getattr(v, f.name))
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)
        elif isinstance(v, float):
            assert math.isfinite(v), f"non-finite value in {cfg!r}"

    walk(cfg)


def _load(tmp: Path, text: str | bytes, train: bool) -> None:
    path = tmp / ("train.yaml" if train else "model.yaml")
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    try:
        cfg = load_train_config(path) if train else load_config(path)
    except ConfigError as exc:
        assert str(path) in str(exc), f"error does not name the file: {exc}"
        return
    assert isinstance(cfg, TrainConfig if train else ModelConfig)
    _check_finite(cfg)


@at_least("config (model YAML)", 500)
@fuzz_settings(max_examples=500)
@given(doc=mutated(BASE_MODEL))
def test_fuzz_model_config_documents(doc: Any) -> None:
    count("config (model YAML)")
    _load(_TMP, yaml.safe_dump(doc), train=False)


@at_least("config (train YAML)", 200)
@fuzz_settings(max_examples=200)
@given(doc=mutated(BASE_TRAIN))
def test_fuzz_train_config_documents(doc: Any) -> None:
    count("config (train YAML)")
    _load(_TMP, yaml.safe_dump(doc), train=True)


_raw = st.binary(max_size=200) | st.sampled_from([
    b"[" * 5000, b"{a: " * 3000, b"\xff\xfe\x00bad", b"model: &a [*a]", b"decode: &a {score_thr: *a}",
    b"strides: !!python/object/apply:os.system ['true']", b"a: b: c", b"\t- x", b"--- 1\n--- 2\n",
    b"input: {short_side: 1e999}", b"depth_factor: .nan", b"model: /nonexistent.yaml", b"model: \"\\0\"",
])


@at_least("config (raw bytes)", 300)
@fuzz_settings(max_examples=300)
@given(raw=_raw, train=st.booleans())
def test_fuzz_raw_config_bytes(raw: bytes, train: bool) -> None:
    count("config (raw bytes)")
    _load(_TMP, raw, train=train)


