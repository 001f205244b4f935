"""Accelerated backends and their artefact cache: ONNX on the CPU, clear errors for what cannot run here,
cache keys that force a rebuild, and the benchmark's forced-people scenes."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest
import torch

from das_core.config import ModelConfig, config_from_dict, dump_config
from das_core.engine.backends import BackendError, make_backend
from das_core.engine.backends.cache import ArtifactCache, model_fingerprint
from das_core.engine.export import DenseExportWrapper, compare_dense, example_input
from das_core.model.das import DAS

sys.path.insert(0, str(Path(__file__).parent))
from test_export import PLAIN, TINY, tiny_das  # noqa: E402

HAS_CUDA = torch.cuda.is_available()


# ----------------------------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------------------------


def _entry(cache: ArtifactCache, torch_version: str = "2.13.0", shape: tuple[int, ...] = (1, 3, 64, 96)):
    return cache.entry("aoti", model="tiny", precision="fp16", shape=shape,
                       key={"torch": torch_version, "device": "NVIDIA H100", "compute_capability": "sm_90"},
                       artefact="model.pt2")


def test_cache_reuses_a_matching_artefact_and_rebuilds_when_the_key_changes(tmp_path, caplog) -> None:
    cache = ArtifactCache(tmp_path)
    first = _entry(cache)
    assert not first.valid
    first.artefact("model.pt2").write_bytes(b"built by torch 2.13.0")
    first.commit()
    again = _entry(cache)
    assert again.valid and again.path == first.path
    assert again.artefact("model.pt2").read_bytes() == b"built by torch 2.13.0"

    with caplog.at_level(logging.WARNING, logger="das_core.engine.backends.cache"):
        upgraded = _entry(cache, torch_version="2.14.0")
    assert not upgraded.valid
    assert not upgraded.artefact("model.pt2").exists()  # the stale artefact is gone
    assert "cache key changed (torch '2.13.0' → '2.14.0')" in caplog.text
    assert "rebuilding" in caplog.text


def test_cache_slot_without_key_file_is_rebuilt(tmp_path) -> None:
    cache = ArtifactCache(tmp_path)
    entry = _entry(cache)
    entry.artefact("model.pt2").write_bytes(b"half-written")  # build crashed before commit()
    assert not _entry(cache).valid


def test_each_input_shape_has_its_own_cache_slot(tmp_path) -> None:
    cache = ArtifactCache(tmp_path)
    a, b = _entry(cache), _entry(cache, shape=(8, 3, 64, 96))
    assert a.path != b.path and a.path.name == "tiny-fp16-b1x64x96"


def test_model_fingerprint_changes_with_the_weights_and_the_config() -> None:
    cfg, model = tiny_das()
    base = model_fingerprint(model, dump_config(cfg))
    assert model_fingerprint(model, dump_config(cfg)) == base
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    assert model_fingerprint(model, dump_config(cfg)) != base
    assert model_fingerprint(model, dump_config(cfg) + "# other") != model_fingerprint(model, dump_config(cfg))


# ----------------------------------------------------------------------------------------------
# Backends
# ----------------------------------------------------------------------------------------------


def test_onnx_backend_matches_eager_on_cpu_and_reuses_its_cached_file(tmp_path, caplog) -> None:
    pytest.importorskip("onnxruntime")
    # DCN + update numerics in ONNX are tested in test_export.py; this test is about the backend and cache.
    cfg = config_from_dict(ModelConfig, PLAIN)
    torch.manual_seed(0)
    model = DAS.from_config(cfg)
    x = example_input((1, 3, 64, 96), seed=5)
    ref = make_backend("eager", model, cfg, device="cpu").run(x)
    backend = make_backend("onnx", model, cfg, device="cpu", cache_dir=tmp_path)
    got = backend.run(x)
    assert backend.name == "onnx" and got.offsets.dtype == torch.float32
    cmp = compare_dense(got, ref)
    assert cmp.ok, cmp.summary()
    files = list(tmp_path.rglob("model.onnx"))
    assert len(files) == 1
    key = json.loads((files[0].parent / "key.json").read_text())
    assert key["shape"] == [1, 3, 64, 96] and key["torch"] == torch.__version__

    with caplog.at_level(logging.INFO, logger="das_core.engine.backends.cache"):
        make_backend("onnx", model, cfg, device="cpu", cache_dir=tmp_path).run(x)
    assert "reusing cached" in caplog.text


def test_onnx_backend_refuses_reduced_precision() -> None:
    pytest.importorskip("onnxruntime")
    cfg, model = tiny_das()
    with pytest.raises(BackendError, match="fp32 only.*tensorrt"):
        make_backend("onnx", model, cfg, device="cpu", precision="fp16")


@pytest.mark.skipif(HAS_CUDA, reason="checks the no-CUDA error")
@pytest.mark.parametrize("name", ["onnx", "compile", "aoti"])
def test_gpu_request_without_cuda_is_an_error_not_a_cpu_fallback(name: str) -> None:
    cfg, model = tiny_das()
    with pytest.raises(BackendError, match="CUDA is not available"):
        make_backend(name, model, cfg, device="cuda", precision="fp32")


def test_tensorrt_backend_without_tensorrt_says_what_to_install() -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    cfg, model = tiny_das()
    with pytest.raises(BackendError, match="pip install tensorrt"):
        make_backend("tensorrt", model, cfg, device="cpu", precision="fp16")


def test_compile_backend_rejects_modes_with_their_own_cuda_graphs() -> None:
    cfg, model = tiny_das()
    with pytest.raises(BackendError, match="reduce-overhead.*own CUDA graphs"):
        make_backend("compile", model, cfg, device="cpu", mode="reduce-overhead")


def test_compile_in_bf16_runs_by_default_the_network_converted_as_aoti_packages_are(tmp_path, monkeypatch) -> None:
    # the reference: the network converted to bf16 the way export_aoti packages it (weights and input)
    cfg, model = tiny_das()
    model.update.sampler = "gather"
    x = example_input((1, 3, 64, 96), seed=5)
    with torch.no_grad():
        ref = DenseExportWrapper(model.to(torch.bfloat16), cfg.depth_factor, input_dtype=torch.bfloat16)(x)
    fp32 = make_backend("eager", tiny_das()[1], cfg, device="cpu").run(x)
    cfg2, model2 = tiny_das()
    backend = make_backend("compile", model2, cfg2, device="cpu", precision="bf16", cache_dir=tmp_path)  # the default
    assert backend.cast_weights and {p.dtype for p in backend.model.parameters()} == {torch.bfloat16}
    # No real compile (minutes on 2 CPU cores): the compiled parts are their eager functions.
    monkeypatch.setattr(backend, "_trunk", backend._trunk_fn)
    monkeypatch.setattr(backend, "_level", backend._level_fn)
    got = backend.run(x)
    assert all(t.dtype == torch.float32 for t in got)
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert not torch.allclose(got.offsets, fp32.offsets, atol=1e-3)  # not the fp32 network's numbers
    with pytest.raises(BackendError, match="cast_weights converts the weights to fp16 or bf16; precision is 'fp32'"):
        make_backend("compile", tiny_das()[1], cfg, device="cpu", precision="fp32", cast_weights=True)
    autocast = make_backend("compile", tiny_das()[1], cfg, device="cpu", precision="bf16", cast_weights=False,
                            persistent_cache=False)
    assert not autocast.cast_weights and {p.dtype for p in autocast.model.parameters()} == {torch.float32}
    fp32 = make_backend("compile", tiny_das()[1], cfg, device="cpu", precision="fp32", persistent_cache=False)
    assert not fp32.cast_weights


@pytest.mark.skipif(not HAS_CUDA, reason="torch.compile on 2 CPU cores took > 9 minutes for the tiny DAS "
                    "(C++ kernel builds); the compile and AOTI backends are checked on the GPU by "
                    "benchmarks/engine_suite.py")
@pytest.mark.parametrize("name", ["compile", "aoti"])
def test_compiled_backends_match_eager_on_cuda(name: str, tmp_path) -> None:
    cfg, model = tiny_das()
    x = example_input((1, 3, 64, 96), seed=5).cuda()
    ref = make_backend("eager", model, cfg, device="cuda").run(x)
    opts = {"cache_dir": tmp_path} if name == "aoti" else {}
    got = make_backend(name, model, cfg, device="cuda", precision="fp32", **opts).run(x)
    assert compare_dense(got, ref).ok


def test_aoti_package_that_does_not_exist_is_named_in_the_error(tmp_path) -> None:
    from das_core.engine.backends.aoti import load_package

    with pytest.raises(FileNotFoundError, match="missing.pt2"):
        load_package(tmp_path / "missing.pt2")


def test_a_package_is_rebuilt_when_the_cxx_compiler_changes_and_kept_where_there_is_none(tmp_path, monkeypatch,
                                                                                         caplog) -> None:
    """The H200 machine's /opt/gcc wrapper builds packages that crash torch's loader; a user who then sets
    CXX=/usr/bin/g++ must get a new package, told why, not the cached crashing one. A machine with no compiler
    at all keeps loading the package it has."""
    import logging

    from das_core.engine import export
    from das_core.engine.backends import aoti

    builds: list[str | None] = []
    compiler: list[str | None] = ["/opt/gcc/bin/g++"]

    def fake_export(model, cfg, path, shape, **kw) -> None:  # noqa: ANN001
        builds.append(compiler[0])
        Path(path).write_bytes(b"package")

    monkeypatch.setattr(export, "export_aoti", fake_export)
    monkeypatch.setattr(aoti, "cpp_compiler", lambda: compiler[0])
    cfg, model = tiny_das()
    shape = (1, 3, 64, 96)

    def package() -> Path:
        return aoti.AOTIBackend(model, cfg, device="cpu", precision="fp32", cache_dir=tmp_path,
                                channels_last=False).package_for(shape)

    with caplog.at_level(logging.INFO, logger="das_core.engine.backends"):
        first = package()
        assert builds == ["/opt/gcc/bin/g++"] and "C++ compiler /opt/gcc/bin/g++" in caplog.text
        package()
        assert builds == ["/opt/gcc/bin/g++"]  # same compiler: the cached package
        compiler[0] = "/usr/bin/g++"
        caplog.clear()
        assert package() == first and builds == ["/opt/gcc/bin/g++", "/usr/bin/g++"]
        assert "cxx '/opt/gcc/bin/g++' → '/usr/bin/g++'" in caplog.text
    compiler[0] = None  # no compiler on this machine: what it has is what it loads
    package()
    assert builds == ["/opt/gcc/bin/g++", "/usr/bin/g++"]


@pytest.mark.parametrize(("device_type", "user_setting", "during_load"),
                         [("cuda", None, False), ("cpu", None, None), ("cuda", True, True)])
def test_loading_a_cuda_package_skips_inductors_cpu_isa_probe_unless_the_user_set_it(
        tmp_path, monkeypatch, device_type, user_setting, during_load) -> None:
    """A CUDA package's load must not build and import-test a C++ program per CPU ISA (49 s on the H200 machine):
    Inductor's ``cpp.vec_isa_ok`` is False while torch's loader runs, and only then (True would still run the
    AVX-512 / AMX sub-probes); CPU packages keep the probe, and a value the user set (TORCHINDUCTOR_VEC_ISA_OK) is
    left alone."""
    import torch._inductor

    from das_core.engine.backends.aoti import load_package

    seen: list[object] = []
    monkeypatch.setattr(torch._inductor, "aoti_load_package",
                        lambda path: seen.append(torch._inductor.config.cpp.vec_isa_ok) or "runner")
    package = tmp_path / "model.pt2"
    package.write_bytes(b"x")
    with torch._inductor.config.patch({"cpp.vec_isa_ok": user_setting}):
        assert load_package(package, device_type) == "runner"
        assert seen == [during_load]
        assert torch._inductor.config.cpp.vec_isa_ok is user_setting


def test_a_skipped_cpu_isa_probe_drops_torchs_isa_mismatch_warning_and_nothing_else(tmp_path, monkeypatch, caplog) -> None:
    """The skipped probe makes torch log an AOTI_CPU_ISA mismatch on every CUDA load: dropped; any other device
    mismatch (a package built for another GPU) still reaches the log."""
    import logging

    import torch._inductor

    from das_core.engine.backends.aoti import load_package

    torch_log = logging.getLogger("torch.export.pt2_archive._package")

    def fake_load(path: str) -> str:
        for key in ("AOTI_CPU_ISA", "AOTI_COMPUTE_CAPABILITY"):
            torch_log.warning("Device information mismatch for %s: %s vs %s. This could cause some issues", key, "a", "b")
        return "runner"

    monkeypatch.setattr(torch._inductor, "aoti_load_package", fake_load)
    package = tmp_path / "model.pt2"
    package.write_bytes(b"x")
    with (torch._inductor.config.patch({"cpp.vec_isa_ok": None}),
          caplog.at_level(logging.WARNING, logger="torch.export.pt2_archive._package")):
        load_package(package, "cuda")
    assert [r.args[0] for r in caplog.records] == ["AOTI_COMPUTE_CAPABILITY"]
    assert not torch_log.filters


# ----------------------------------------------------------------------------------------------
# Benchmark scenes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("people", [0, 4])
def test_forced_people_scene_decodes_to_exactly_that_many_people(people: int) -> None:
    from das_core.camera import ResizeRecord
    from das_core.engine.bench import ForcedPeople, ForcedPeopleBackend, default_camera, synthetic_frame
    from das_core.engine.estimator import Estimator

    cfg = config_from_dict(ModelConfig, {**TINY, "input": {"short_side": 128, "long_side": 256}})
    torch.manual_seed(0)
    model = DAS.from_config(cfg)  # default init, like the benchmark's random r50: offsets ≈ 0
    frame, cam = synthetic_frame(224, 128), default_camera(224, 128)
    rec = ResizeRecord.for_image(224, 128, 256, 128, 32)
    backend = make_backend("eager", model, cfg, device="cpu")
    forced = ForcedPeople(cfg, 15, (rec.padded_height, rec.padded_width), rec, cam, people, "cpu")
    found = Estimator(cfg, ForcedPeopleBackend(backend, forced))(frame, cam)  # type: ignore[arg-type]
    assert len(found) == people
    if people:
        roots = found.joints_3d[:, 2]  # panoptic15 root = mid_hip
        order = roots[:, 2].argsort()
        err = abs(roots[order] - forced.expected_roots_m)  # metres
        # depth is the forced Z/f (the random net adds ~1e-5 of it); x, y move by the random net's own small
        # offsets (a few network pixels at 3–7 m)
        assert err[:, 2].max() < 0.02 and err[:, :2].max() < 0.15


def test_too_many_forced_people_for_the_input_is_an_error() -> None:
    from das_core.camera import ResizeRecord
    from das_core.engine.bench import ForcedPeople, default_camera

    cfg = config_from_dict(ModelConfig, TINY)
    rec = ResizeRecord.for_image(96, 64, 96, 64, 32)
    with pytest.raises(ValueError, match="do not fit"):
        ForcedPeople(cfg, 15, (64, 96), rec, default_camera(96, 64), 20, "cpu")


def test_bench_command_writes_a_report_with_agreement_for_each_backend(tmp_path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    import yaml

    from das_core.cli import main

    model_yaml = tmp_path / "tiny.yaml"
    model_yaml.write_text(yaml.safe_dump({**PLAIN, "input": {"short_side": 128, "long_side": 256}}))
    out = tmp_path / "bench.json"
    rc = main(["bench", str(model_yaml), "--device", "cpu", "--backends", "eager", "onnx", "--frame-size", "224x128",
               "--repeats", "2", "--warmup", "0", "--scene-repeats", "1", "--people", "1", "3", "--batch", "1",
               "--cache-dir", str(tmp_path / "cache"), "--json", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert [r["backend"] for r in report["results"]] == ["eager", "onnx"]
    for r in report["results"]:
        assert r["latency_ms"]["total_p50"] > 0
        assert r["scenes"]["3"]["found"] == 3
        assert r["agreement"]["pass"], r["agreement"]
    assert "total p50" in capsys.readouterr().out


def test_aoti_refuses_a_package_that_does_not_reproduce_the_eager_network(tmp_path) -> None:
    """A package is checked against eager fp32 when loaded; a wrong one is an error, never silent output."""
    from das_core.engine.backends.aoti import AOTIBackend
    from das_core.engine.backends.eager import EagerBackend
    from das_core.model.outputs import DenseOutputs

    cfg, model = tiny_das()
    backend = AOTIBackend(model, cfg, device="cpu", precision="fp32", cache_dir=tmp_path, channels_last=False)
    shape = (1, 3, 64, 96)

    def faithful(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(EagerBackend(model, cfg, device="cpu").run(x))

    def drifting(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        d = DenseOutputs(*faithful(x))
        return (d.scores, d.root_depth, d.offsets + 0.5, d.sigma)  # half a stride off, like the H100 fp16 build

    backend._verify(faithful, shape, tmp_path / "ok.pt2")
    with pytest.raises(BackendError, match="disagrees with the eager fp32 model.*offsets 0.5"):
        backend._verify(drifting, shape, tmp_path / "bad.pt2")


class FakeAotiPackages:
    """Stands in for ``export_aoti`` and ``load_package``: a build writes ``model.pt2`` (a few bytes), a load gives
    the eager network's outputs (``drift`` added to the offsets); ``references`` counts the eager fp32 references
    the backend's verification computed."""

    def __init__(self, monkeypatch, model: DAS, cfg: ModelConfig) -> None:
        from das_core.engine import export
        from das_core.engine.backends import aoti, eager

        self.model, self.cfg, self.drift = model, cfg, 0.0
        self.builds, self.references = 0, 0
        self.eager = eager.EagerBackend
        packages = self

        class CountingEager(eager.EagerBackend):
            def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
                packages.references += 1
                super().__init__(*args, **kwargs)

        monkeypatch.setattr(export, "export_aoti", self.build)
        monkeypatch.setattr(aoti, "load_package", self.load)
        monkeypatch.setattr(aoti, "cpp_compiler", lambda: "/usr/bin/g++")
        monkeypatch.setattr(eager, "EagerBackend", CountingEager)

    def build(self, model, cfg, path, shape, **kw) -> None:  # noqa: ANN001
        self.builds += 1
        Path(path).write_bytes(b"package")

    def load(self, path: Path, device_type: str):  # noqa: ANN201
        def package(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            d = self.eager(self.model, self.cfg, device="cpu").run(x)
            return (d.scores, d.root_depth, d.offsets + self.drift, d.sigma)

        return package

    def backend(self, cache: Path, **kw):  # noqa: ANN003, ANN201
        from das_core.engine.backends.aoti import AOTIBackend

        return AOTIBackend(self.model, self.cfg, device="cpu", precision="fp32", cache_dir=cache,
                           channels_last=False, **kw)


AOTI_SHAPE = (1, 3, 64, 96)


def _cached_package(cache: Path) -> Path:
    return next((cache / "aoti").glob("*/model.pt2"))


def test_a_second_process_loading_a_verified_cached_package_trusts_its_record_instead_of_running_eager(
        tmp_path, monkeypatch, caplog) -> None:
    """Issue 14: the eager fp32 forward was 1.5 s of an 11.7 s H200 restart. The first load verifies and records
    the package's SHA-256 beside it; a later load whose package hashes the same skips the eager forward."""
    import hashlib

    cfg, model = tiny_das()
    fake = FakeAotiPackages(monkeypatch, model, cfg)
    first = fake.backend(tmp_path)
    first.run(torch.zeros(AOTI_SHAPE))
    assert (fake.builds, fake.references) == (1, 1)
    package = _cached_package(tmp_path)
    record = json.loads(package.with_name("verified.json").read_text())
    assert record["sha256"] == hashlib.sha256(b"package").hexdigest() and record["size"] == len(b"package")
    assert set(record["max_abs"]) == {"scores", "root_depth", "offsets", "sigma"}
    assert record["tolerance"] == "fp32" and record["tolerances"]["offsets"] == [1e-3, 1e-3]
    assert record["torch"] == torch.__version__ and record["verified_at"].endswith("+00:00")

    second = fake.backend(tmp_path)
    with caplog.at_level(logging.INFO, logger="das_core.engine.backends.aoti"):
        out = second.run(torch.zeros(AOTI_SHAPE))
    assert (fake.builds, fake.references) == (1, 1)  # loaded from the cache, no eager reference computed
    assert out.offsets.shape[0] == 1
    assert "verified against eager fp32 when first loaded" in caplog.text and "SHA-256 matches" in caplog.text
    assert record["verified_at"] in caplog.text
    assert second.verify_seconds > 0.0  # the hash is counted (references above: no eager forward)


@pytest.mark.parametrize("change", ["package bytes", "record unreadable", "record of other tolerances"])
def test_a_cached_package_is_verified_again_when_its_record_does_not_vouch_for_the_bytes_on_disk(
        tmp_path, monkeypatch, change: str) -> None:
    cfg, model = tiny_das()
    fake = FakeAotiPackages(monkeypatch, model, cfg)
    fake.backend(tmp_path).run(torch.zeros(AOTI_SHAPE))
    package = _cached_package(tmp_path)
    record_path = package.with_name("verified.json")
    if change == "package bytes":
        package.write_bytes(b"PACKAGE")  # same size, other bytes: the SHA-256 decides
    elif change == "record unreadable":
        record_path.write_bytes(b"\xff{")
    else:
        record = json.loads(record_path.read_text())
        record["tolerances"]["offsets"] = [1.0, 1.0]
        record_path.write_text(json.dumps(record))
    fake.backend(tmp_path).run(torch.zeros(AOTI_SHAPE))
    assert (fake.builds, fake.references) == (1, 2)
    record = json.loads(record_path.read_text())  # rewritten for what is on disk now
    assert record["size"] == package.stat().st_size and record["tolerances"]["offsets"] == [1e-3, 1e-3]
    fake.backend(tmp_path).run(torch.zeros(AOTI_SHAPE))
    assert fake.references == 2


def test_reverify_verifies_a_cached_package_against_eager_on_every_load(tmp_path, monkeypatch) -> None:
    cfg, model = tiny_das()
    fake = FakeAotiPackages(monkeypatch, model, cfg)
    fake.backend(tmp_path).run(torch.zeros(AOTI_SHAPE))
    fake.backend(tmp_path, reverify=True).run(torch.zeros(AOTI_SHAPE))
    fake.backend(tmp_path, reverify=True).run(torch.zeros(AOTI_SHAPE))
    assert (fake.builds, fake.references) == (1, 3)


def test_a_cached_package_that_fails_verification_is_refused_on_every_load_and_leaves_no_record(
        tmp_path, monkeypatch) -> None:
    cfg, model = tiny_das()
    fake = FakeAotiPackages(monkeypatch, model, cfg)
    fake.drift = 0.5
    for _ in range(2):
        with pytest.raises(BackendError, match="disagrees with the eager fp32 model"):
            fake.backend(tmp_path).run(torch.zeros(AOTI_SHAPE))
    assert (fake.builds, fake.references) == (1, 2)
    assert not _cached_package(tmp_path).with_name("verified.json").exists()


def test_a_refusal_on_reverify_removes_the_packages_earlier_record(tmp_path, monkeypatch) -> None:
    """A package that now disagrees (reverify caught it) must not pass the next ordinary load on an old record."""
    cfg, model = tiny_das()
    fake = FakeAotiPackages(monkeypatch, model, cfg)
    fake.backend(tmp_path).run(torch.zeros(AOTI_SHAPE))
    fake.drift = 0.5
    with pytest.raises(BackendError, match="disagrees"):
        fake.backend(tmp_path, reverify=True).run(torch.zeros(AOTI_SHAPE))
    assert not _cached_package(tmp_path).with_name("verified.json").exists()
    with pytest.raises(BackendError, match="disagrees"):
        fake.backend(tmp_path).run(torch.zeros(AOTI_SHAPE))


def test_an_explicit_package_path_is_verified_on_every_load_and_gets_no_record(tmp_path, monkeypatch) -> None:
    """``package=`` is the user's file, not a cache slot the backend owns: nothing is written beside it."""
    cfg, model = tiny_das()
    fake = FakeAotiPackages(monkeypatch, model, cfg)
    package = tmp_path / "mine.pt2"
    package.write_bytes(b"package")
    for _ in range(2):
        fake.backend(tmp_path / "cache", package=package).run(torch.zeros(AOTI_SHAPE))
    assert (fake.builds, fake.references) == (0, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.pt2"]


def test_a_rebuilt_cache_slot_does_not_keep_the_old_packages_verification_record(tmp_path, monkeypatch) -> None:
    """ArtifactCache empties a slot whose key changed (here the C++ compiler) before the rebuild."""
    from das_core.engine.backends import aoti

    cfg, model = tiny_das()
    fake = FakeAotiPackages(monkeypatch, model, cfg)
    fake.backend(tmp_path).run(torch.zeros(AOTI_SHAPE))
    record_path = _cached_package(tmp_path).with_name("verified.json")
    assert record_path.is_file()
    monkeypatch.setattr(aoti, "cpp_compiler", lambda: "/opt/gcc/bin/g++")
    fake.backend(tmp_path).package_for(AOTI_SHAPE)
    assert fake.builds == 2 and not record_path.exists()


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("fastest", {"precision": "fp16"}, "unknown backend"),
        ("eager", {"precision": "fp8"}, "precision 'fp8' not supported"),
        ("eager", {"precision": "fp16", "cache_dir": "x"}, "takes no options"),
        ("onnx", {"precision": "fp16"}, "fp32 only"),
        ("compile", {"precision": "bf16", "mode": "reduce-overhead"}, "own CUDA graphs"),
        ("eager", {"precision": "fp16", "device": "tpu"}, "device 'tpu' is not a torch device"),
    ],
)
def test_a_refused_make_backend_call_leaves_the_callers_model_untouched(name: str, kwargs: dict,
                                                                       match: str) -> None:
    cfg, model = tiny_das()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    kwargs = {"device": "cpu", **kwargs}
    with pytest.raises(BackendError, match=match):
        make_backend(name, model, cfg, **kwargs)
    assert model.fp32_head is True  # was cleared for fp16/bf16 before any argument was checked
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)


def test_aoti_refuses_an_input_in_the_other_memory_layout(tmp_path) -> None:
    """A package reads its input with its compiled strides and checks nothing, so the backend checks."""
    from das_core.engine.backends.aoti import AOTIBackend

    cfg, model = tiny_das()
    calls = []

    def package(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        calls.append(x.stride())
        return (x,)

    backend = AOTIBackend(model, cfg, device="cpu", precision="fp32", cache_dir=tmp_path, channels_last=True)
    x = torch.zeros(1, 3, 64, 96)
    # channels_last is the weights' layout; the package's input is NCHW (export_aoti's example input)
    with pytest.raises(BackendError, match="not the NCHW-contiguous layout"):
        backend._call(package, x.contiguous(memory_format=torch.channels_last))
    backend._call(package, x)
    assert len(calls) == 1


def test_aoti_packages_are_compiled_for_an_nchw_input_whatever_the_weights_layout(tmp_path, monkeypatch) -> None:
    """The H100's 92 mm: a package compiled for one input layout and fed another. export_aoti traces an NCHW
    example (so the package reads NCHW, which preprocessing produces) even with channels-last weights."""
    from das_core.engine.export import export_aoti

    cfg, model = tiny_das()
    seen = {}

    def fake_export(mod, args, **kw):
        seen["input_contiguous"] = args[0].is_contiguous()
        seen["weights_channels_last"] = next(
            p for p in mod.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)
        raise RuntimeError("stop before the (minutes-long) build")

    monkeypatch.setattr(torch.export, "export", fake_export)
    with pytest.raises(RuntimeError, match="stop before"):
        export_aoti(model, cfg, tmp_path / "m.pt2", (1, 3, 64, 96), device="cpu", precision="fp32", channels_last=True)
    assert seen == {"input_contiguous": True, "weights_channels_last": True}


@pytest.mark.parametrize("persistent", [True, False, None])  # None: the default, on for a CPU package
def test_aoti_points_inductors_cache_at_the_das_cache_before_loading(tmp_path, monkeypatch, persistent) -> None:
    """Loading a package runs Inductor's CPU-ISA probes, cached in Inductor's cache folder: it must be the das cache
    (survives a wiped /tmp), set before the load, unless turned off."""
    from das_core.engine import compile_cache
    from das_core.engine.backends import aoti

    order: list[str] = []
    monkeypatch.setattr(compile_cache, "activate", lambda device, root: order.append(f"activate {device} {root}"))
    def load(path: Path, device_type: str):  # noqa: ANN202
        order.append("load")
        return lambda x: (x, x, x, x)

    monkeypatch.setattr(aoti, "load_package", load)
    cfg, model = tiny_das()
    backend = aoti.AOTIBackend(model, cfg, device="cpu", precision="fp32", cache_dir=tmp_path, channels_last=False,
                               verify=False, persistent_inductor_cache=persistent)
    monkeypatch.setattr(backend, "package_for", lambda shape: tmp_path / "model.pt2")
    backend.run(torch.zeros(1, 3, 64, 96))
    backend.run(torch.zeros(1, 3, 64, 96))  # loaded once per shape
    assert order == ([f"activate cpu {tmp_path}", "load"] if persistent in (True, None) else ["load"])
