"""The persistent compile cache: where Inductor's caches go, how slots are keyed, and what the log says on a
hit, a miss and a changed key. ``torch.compiler``'s artefact calls are replaced by fakes (a real build takes
minutes on 2 cores; ``benchmarks/restart.py --device cpu`` is the end-to-end run, its output under docs/results)."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

from das_core.engine import compile_cache as cc


@pytest.fixture
def fresh_env(monkeypatch, tmp_path):
    """No user cache folder, no earlier activation; the process' real settings come back afterwards."""
    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR", "DAS_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(cc, "_ACTIVE", None)
    monkeypatch.setattr(cc, "_clear_inductor_memo", lambda: None)
    from torch._inductor import codecache

    for name in ("_HEADER_DIR", "_HEADER_LOCK_DIR"):
        if hasattr(codecache, name):
            monkeypatch.setattr(codecache, name, getattr(codecache, name))
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    # Not monkeypatch: torch's config modules serve their keys through __getattr__, and newer pytest undoes a
    # setattr of such a key with delattr, which removes the key from torch's config for the rest of the run.
    saved = (inductor_config.fx_graph_cache, functorch_config.enable_autograd_cache)
    yield tmp_path
    inductor_config.fx_graph_cache, functorch_config.enable_autograd_cache = saved


class FakeCompiler:
    """Stands in for torch.compiler.save/load_cache_artifacts; records what was loaded."""

    def __init__(self, payload: bytes = b"artefacts-v1") -> None:
        self.payload, self.loaded = payload, []

    def save(self):
        info = torch.compiler.CacheInfo()
        info.artifacts["inductor"].extend(["k1", "k2"])
        info.artifacts["aot_autograd"].append("k3")
        return self.payload, info

    def load(self, data: bytes):
        self.loaded.append(data)
        info = torch.compiler.CacheInfo()
        info.artifacts["inductor"].extend(["k1", "k2"])
        return info


@pytest.fixture
def fake(monkeypatch) -> FakeCompiler:
    f = FakeCompiler()
    monkeypatch.setattr(torch.compiler, "save_cache_artifacts", f.save)
    monkeypatch.setattr(torch.compiler, "load_cache_artifacts", f.load)
    return f


def make(root, precision: str = "fp32", config: str = "cfg: 1", **options) -> cc.CompileCache:
    return cc.CompileCache("cpu", precision, "tiny", config, options or {"mode": "default"}, root=root)


def test_inductor_and_triton_caches_move_into_the_das_cache_folder_keyed_by_torch_and_device(fresh_env) -> None:
    path = cc.activate("cpu", fresh_env)
    assert path.parent == fresh_env / "compile" / "inductor"
    assert torch.__version__.split("+")[0] in path.name and "cpu" in path.name
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(path) and path.is_dir()
    assert os.environ["TRITON_CACHE_DIR"] == str(path / "triton")
    assert cc.activate("cpu", fresh_env) == path  # idempotent


def test_a_cache_folder_the_user_chose_is_kept(fresh_env, monkeypatch, caplog) -> None:
    mine = fresh_env / "mine"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(mine))
    with caplog.at_level(logging.INFO, logger=cc.__name__):
        assert cc.activate("cpu", fresh_env / "das") == mine
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(mine)
    assert "set by the user" in caplog.text


def test_inductors_own_tmp_default_is_not_mistaken_for_a_user_choice(fresh_env, monkeypatch) -> None:
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", default_cache_dir())  # what Inductor writes on first use
    assert cc.activate("cpu", fresh_env) == cc.inductor_cache_dir("cpu", fresh_env)


def test_das_cache_folder_follows_das_cache_dir_then_xdg_cache_home(fresh_env, monkeypatch) -> None:
    from das_core.engine.backends.cache import default_cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(fresh_env / "xdg"))
    assert default_cache_dir() == fresh_env / "xdg" / "das"
    monkeypatch.setenv("DAS_CACHE_DIR", str(fresh_env / "d"))
    assert default_cache_dir() == fresh_env / "d"


def test_miss_builds_and_saves_then_a_new_process_hits_and_loads_the_bundle(fresh_env, fake, caplog) -> None:
    shape = (1, 3, 64, 96)
    with caplog.at_level(logging.INFO):
        first = make(fresh_env)
        slot = first.open(shape)
        assert not slot.entry.valid and first.hit is False
        assert "compile cache miss for tiny-fp32-b1x64x96" in caplog.text
        assert "no cached artefact" in caplog.text  # the reason: no entry for this key
        written = first.save()
        assert written == [slot.entry.artefact(cc.ARTEFACT)] and written[0].read_bytes() == fake.payload
        # A slot built in this process is written again (the frame graph's pieces join it later) …
        assert first.save() == written
        caplog.clear()
        second = make(fresh_env)  # a restart: a new cache object, same key
        assert second.open(shape).entry.valid and second.hit is True
    assert fake.loaded == [fake.payload]
    assert second.save() == []  # … but a slot that was loaded is never rewritten
    assert "compile cache hit for tiny-fp32-b1x64x96: loaded 2 inductor" in caplog.text


def test_the_log_names_the_key_field_that_changed(fresh_env, fake, caplog) -> None:
    shape = (1, 3, 64, 96)
    first = make(fresh_env)
    slot = first.open(shape)
    first.save()
    key_file = slot.entry.path / "key.json"
    key = json.loads(key_file.read_text())
    key["torch"] = "2.11.0"  # the bundle was written by another torch
    key_file.write_text(json.dumps(key))
    with caplog.at_level(logging.INFO):
        again = make(fresh_env)
        assert not again.open(shape).entry.valid
    assert "cache key changed (torch '2.11.0' → " in caplog.text and "rebuilding" in caplog.text
    assert fake.loaded == []  # a stale bundle is never loaded


@pytest.mark.parametrize(("change", "field"), [
    ({"config": "cfg: 2"}, "config_hash"),
    ({"mode": "max-autotune-no-cudagraphs"}, "options"),
])
def test_a_changed_config_or_compile_option_is_a_miss(fresh_env, fake, caplog, change, field) -> None:
    shape = (1, 3, 64, 96)
    first = make(fresh_env)
    first.open(shape)
    first.save()
    config = change.get("config", "cfg: 1")
    opts = {"mode": change.get("mode", "default")}
    with caplog.at_level(logging.INFO):
        assert not make(fresh_env, config=config, **opts).open(shape).entry.valid
    assert f"cache key changed ({field}" in caplog.text


def test_each_precision_and_shape_has_its_own_slot(fresh_env, fake) -> None:
    a = make(fresh_env).open((1, 3, 64, 96)).entry.path
    b = make(fresh_env).open((4, 3, 64, 96)).entry.path
    c = make(fresh_env, precision="bf16").open((1, 3, 64, 96)).entry.path
    assert len({a, b, c}) == 3 and b.name == "tiny-fp32-b4x64x96" and c.name == "tiny-bf16-b1x64x96"


def test_an_unreadable_bundle_is_a_miss_not_a_crash(fresh_env, monkeypatch, fake, caplog) -> None:
    shape = (1, 3, 64, 96)
    first = make(fresh_env)
    first.open(shape)
    first.save()

    def broken(data: bytes):
        raise RuntimeError("bad magic")

    monkeypatch.setattr(torch.compiler, "load_cache_artifacts", broken)
    with caplog.at_level(logging.INFO):
        again = make(fresh_env)
        slot = again.open(shape)
    assert not slot.entry.valid and "bundle unreadable (RuntimeError: bad magic); rebuilding" in caplog.text
    assert again.save() and slot.entry.valid is False  # rewritten for the next start


def test_compile_backend_opens_the_slot_of_its_input_shape(fresh_env, fake, monkeypatch) -> None:
    """The backend asks the cache before compiling each input shape, and saves after the shape is built."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_export import PLAIN

    from das_core.config import ModelConfig, config_from_dict
    from das_core.engine.backends.compiled import CompiledBackend
    from das_core.model.das import DAS

    cfg = config_from_dict(ModelConfig, PLAIN)
    backend = CompiledBackend(DAS.from_config(cfg), cfg, device="cpu", precision="fp32", cache_dir=fresh_env)
    assert backend.compile_cache is not None and backend.compile_cache.root == fresh_env
    # No real compile (minutes on 2 CPU cores): the compiled parts are their eager functions.
    monkeypatch.setattr(backend, "_trunk", backend._trunk_fn)
    monkeypatch.setattr(backend, "_level", backend._level_fn)
    x = torch.zeros(1, 3, 64, 96)
    backend.run(x)
    slot = backend.compile_cache.slots[(1, 3, 64, 96)]
    assert slot.saved and slot.entry.artefact(cc.ARTEFACT).read_bytes() == fake.payload
    assert backend.model._sizes_checked  # the size check ran on the trunk's output, without an eager pass


def test_with_freezing_the_weights_are_part_of_the_key(fresh_env, fake) -> None:
    """Frozen weights are compiled into the kernels: another checkpoint must not reuse them (without freezing
    it may: parameters are graph inputs)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_export import PLAIN

    from das_core.config import ModelConfig, config_from_dict
    from das_core.engine.backends.compiled import CompiledBackend
    from das_core.model.das import DAS

    cfg = config_from_dict(ModelConfig, PLAIN)

    def key(seed: int, freezing: bool) -> dict:
        torch.manual_seed(seed)
        backend = CompiledBackend(DAS.from_config(cfg), cfg, device="cpu", precision="fp32", cache_dir=fresh_env,
                                  freezing=freezing)
        assert backend.compile_cache is not None
        return backend.compile_cache.key()

    assert key(0, False) == key(1, False)
    assert key(0, True) != key(1, True) and key(0, True) == key(0, True)
    assert key(0, True)["options"]["freezing"] is True
