"""benchmarks/restart.py: the phases start fresh processes with the right folders, wipe what they claim to
wipe and keep what they claim to keep. The child processes are faked (a real one compiles for minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import restart  # noqa: E402


def test_process_age_is_the_time_since_this_process_started() -> None:
    age = restart.process_age_s()
    if age is None:
        pytest.skip("no /proc here")
    assert 0.0 < age < 24 * 3600


class FakeChild:
    """Plays the child: records its environment and what the temp folder held when it started, and writes
    into the das cache and the temp folder as a real compile would."""

    def __init__(self, first_pose: list[float]) -> None:
        self.calls: list[dict] = []
        self.first_pose = first_pose

    def __call__(self, cmd, env, capture_output, text, timeout, check):
        tmp, cache = Path(env["TMPDIR"]), Path(env["DAS_CACHE_DIR"])
        self.calls.append({"cmd": cmd, "tmp_had": sorted(p.name for p in tmp.iterdir()),
                           "cache_had": sorted(p.name for p in cache.rglob("*")) if cache.exists() else [],
                           "env": {k: env.get(k) for k in ("TORCHINDUCTOR_CACHE_DIR", "PYTHONUNBUFFERED")}})
        (tmp / "torchinductor_me").mkdir(exist_ok=True)
        if "--no-cache" not in cmd:
            (cache / "compile").mkdir(parents=True, exist_ok=True)
            (cache / "compile" / "bundle").write_text("x")
        hit = "--no-cache" not in cmd and len(self.calls) > 1
        result = {"first_pose_s": self.first_pose[len(self.calls) - 1], "cache_hit": hit}
        log = ("x INFO das_core.engine.compile_cache: compile cache hit for m: loaded 1 inductor" if hit
               else "x INFO das_core.engine.compile_cache: compile cache miss for m; building")
        return SimpleNamespace(returncode=0, stdout="noise\nRESTART_RESULT " + json.dumps(result) + "\n", stderr=log)


def test_phases_wipe_the_temp_folder_but_keep_the_das_cache(tmp_path, monkeypatch, capsys) -> None:
    fake = FakeChild([60.0, 6.0, 7.5])
    monkeypatch.setattr(subprocess, "run", fake)
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/somewhere/else")  # must not leak into the children
    out = tmp_path / "r.json"
    assert restart.main(["--device", "cpu", "--model", "tiny", "--workdir", str(tmp_path / "w"), "--out", str(out)]) == 0
    first, again, wiped = fake.calls
    assert first["tmp_had"] == [] and first["cache_had"] == []  # first-ever build: both empty
    assert again["tmp_had"] == ["torchinductor_me"] and "bundle" in again["cache_had"]  # a plain restart
    assert wiped["tmp_had"] == [] and "bundle" in wiped["cache_had"]  # /tmp wiped, das cache kept
    assert all(c["env"] == {"TORCHINDUCTOR_CACHE_DIR": None, "PYTHONUNBUFFERED": "1"} for c in fake.calls)
    assert all("--child" in c["cmd"] and "--spawn-time" in c["cmd"] for c in fake.calls)
    report = json.loads(out.read_text())
    assert [p["phase"] for p in report["phases"]] == ["first", "restart", "wiped_tmp"]
    assert report["summary"] == {"first": 60.0, "restart": 6.0, "wiped_tmp": 7.5, "meets_10s": True}
    assert report["phases"][1]["cache_log"] == ["compile cache hit for m: loaded 1 inductor"]


def test_a_slow_restart_misses_the_target_and_a_failed_child_is_an_error(tmp_path, monkeypatch) -> None:
    fake = FakeChild([60.0, 12.0, 7.5])
    monkeypatch.setattr(subprocess, "run", fake)
    out = tmp_path / "r.json"
    restart.main(["--device", "cpu", "--model", "tiny", "--workdir", str(tmp_path / "w"), "--out", str(out)])
    assert json.loads(out.read_text())["summary"]["meets_10s"] is False

    def crash(cmd, **kw):
        return SimpleNamespace(returncode=1, stdout="", stderr="Traceback …\nRuntimeError: CUDA error")

    monkeypatch.setattr(subprocess, "run", crash)
    assert restart.main(["--device", "cpu", "--model", "tiny", "--phases", "first", "--workdir",
                         str(tmp_path / "w2"), "--out", str(out)]) == 1
    phase = json.loads(out.read_text())["phases"][0]
    assert phase["error"] == "child exited with 1" and phase["log_tail"][-1] == "RuntimeError: CUDA error"


def test_no_cache_phases_run_the_child_without_the_persistent_cache(tmp_path, monkeypatch) -> None:
    fake = FakeChild([90.0, 25.0])
    monkeypatch.setattr(subprocess, "run", fake)
    restart.main(["--device", "cpu", "--model", "tiny", "--phases", "no_cache_first", "no_cache_restart",
                  "--workdir", str(tmp_path / "w")])
    assert all("--no-cache" in c["cmd"] for c in fake.calls)
    assert fake.calls[1]["tmp_had"] == ["torchinductor_me"]  # its restart keeps Inductor's /tmp cache


# ----------------------------------------------------------------------------------------------
# --backend aoti: the first process builds the package, the restarts must only load it
# ----------------------------------------------------------------------------------------------


class FakeAotiChild:
    """Plays an aoti child: builds ``model.pt2`` into the das cache when it is missing, loads it otherwise, as
    AOTIBackend does; ``refuse`` makes the verification refuse the package (what the H100 fp16 package got)."""

    def __init__(self, first_pose: list[float], refuse: bool = False, rebuild: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.first_pose, self.refuse, self.rebuild = first_pose, refuse, rebuild

    def __call__(self, cmd, env, capture_output, text, timeout, check):
        self.calls.append(cmd)
        package = Path(env["DAS_CACHE_DIR"]) / "aoti" / "tiny_restart-fp32-b1x64x128" / "model.pt2"
        built = self.rebuild or not package.is_file()
        package.parent.mkdir(parents=True, exist_ok=True)
        package.write_bytes(b"pt2")
        aoti: dict[str, object] = {"package": "built" if built else "loaded", "build_s": 40.0 if built else 0.0,
                                   "load_s": 0.5, "verify_s": 0.1, "packages": [str(package)], "package_bytes": 3,
                                   "refused": None}
        log = ("x INFO das_core.engine.backends.cache: aoti: no cached artefact for model=tiny_restart; building"
               if built else "x INFO das_core.engine.backends.cache: aoti: reusing cached " + str(package))
        if self.refuse:
            aoti["refused"] = "backend 'aoti': package … disagrees with the eager fp32 model beyond the fp16 tolerance"
            refused = {"backend": "aoti", "first_pose_s": None, "aoti": aoti}
            return SimpleNamespace(returncode=3, stdout="RESTART_RESULT " + json.dumps(refused) + "\n", stderr=log)
        result: dict[str, object] = {"backend": "aoti", "first_pose_s": self.first_pose[len(self.calls) - 1],
                                     "aoti": aoti, "cache_hit": not built}
        return SimpleNamespace(returncode=0, stdout="RESTART_RESULT " + json.dumps(result) + "\n", stderr=log)


def test_aoti_restarts_load_the_package_the_first_process_built(tmp_path, monkeypatch) -> None:
    fake = FakeAotiChild([50.0, 5.0, 6.0])
    monkeypatch.setattr(subprocess, "run", fake)
    out = tmp_path / "r.json"
    assert restart.main(["--device", "cpu", "--model", "tiny", "--backend", "aoti", "--workdir", str(tmp_path / "w"),
                         "--out", str(out)]) == 0
    assert all(c[c.index("--backend") + 1] == "aoti" for c in fake.calls)
    report = json.loads(out.read_text())
    assert report["backend"] == "aoti" and report["compile_mode"] is None and report["freezing"] is None
    assert [p["aoti"]["package"] for p in report["phases"]] == ["built", "loaded", "loaded"]
    assert report["summary"] == {"first": 50.0, "restart": 5.0, "wiped_tmp": 6.0, "meets_10s": True,
                                 "aoti_package": {"first": "built", "restart": "loaded", "wiped_tmp": "loaded"},
                                 "restarts_loaded_package": True}
    assert report["phases"][1]["cache_log"][0].startswith("aoti: reusing cached")


def test_an_aoti_restart_that_builds_again_is_an_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(subprocess, "run", FakeAotiChild([50.0, 45.0, 46.0], rebuild=True))
    out = tmp_path / "r.json"
    assert restart.main(["--device", "cpu", "--model", "tiny", "--backend", "aoti", "--workdir", str(tmp_path / "w"),
                         "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert "error" not in report["phases"][0]  # building is what the first process is for
    assert report["phases"][1]["error"] == "aoti restart: the package was built, not loaded from the das cache"
    assert report["summary"]["restarts_loaded_package"] is False


def test_a_refused_aoti_package_is_reported_per_phase_and_the_other_phases_still_run(tmp_path, monkeypatch) -> None:
    fake = FakeAotiChild([], refuse=True)
    monkeypatch.setattr(subprocess, "run", fake)
    out = tmp_path / "r.json"
    assert restart.main(["--device", "cpu", "--model", "tiny", "--backend", "aoti", "--workdir", str(tmp_path / "w"),
                         "--out", str(out)]) == 1
    assert len(fake.calls) == 3
    report = json.loads(out.read_text())
    first, again, _ = report["phases"]
    assert first["error"] == "aoti package refused by the verification against eager fp32"
    assert "disagrees" in first["aoti"]["refused"] and again["aoti"]["package"] == "loaded"  # refused, but cached
    assert report["summary"]["aoti_package"] == {"first": "refused", "restart": "refused", "wiped_tmp": "refused"}
    assert "meets_10s" not in report["summary"] and report["summary"]["restarts_loaded_package"] is False


def test_the_compile_default_passes_its_backend_and_options(tmp_path, monkeypatch) -> None:
    fake = FakeChild([60.0, 6.0, 7.5])
    monkeypatch.setattr(subprocess, "run", fake)
    out = tmp_path / "r.json"
    restart.main(["--device", "cpu", "--model", "tiny", "--workdir", str(tmp_path / "w"), "--out", str(out)])
    assert all(c["cmd"][c["cmd"].index("--backend") + 1] == "compile" for c in fake.calls)
    report = json.loads(out.read_text())
    assert report["backend"] == "compile" and report["compile_mode"] == "default" and report["freezing"] is False
    assert "aoti_package" not in report["summary"]


@pytest.mark.parametrize("extra", [["--phases", "no_cache_first"], ["--freezing"],
                                   ["--compile-mode", "max-autotune-no-cudagraphs"]])
def test_aoti_refuses_the_compile_only_phases_and_options(extra, monkeypatch) -> None:
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("no child may start"))
    with pytest.raises(SystemExit):
        restart.main(["--device", "cpu", "--model", "tiny", "--backend", "aoti", *extra])


def test_aoti_info_says_built_loaded_or_not_reached(tmp_path) -> None:
    package = tmp_path / "model.pt2"
    package.write_bytes(b"12345")
    built = SimpleNamespace(build_seconds=40.0, load_seconds=0.2, verify_seconds=0.1, package_paths={(1,): package})
    loaded = SimpleNamespace(build_seconds=0.0, load_seconds=0.2, verify_seconds=0.1, package_paths={(1,): package})
    assert restart.aoti_info(built)["package"] == "built" and restart.aoti_info(built)["package_bytes"] == 5
    assert restart.aoti_info(loaded, refused="no")["package"] == "loaded"
    assert restart.aoti_info(loaded, refused="no")["refused"] == "no"
    assert restart.aoti_info(SimpleNamespace())["package"] is None  # the first frame failed before any package


def test_the_profile_names_where_the_seconds_to_first_pose_went() -> None:
    def slow_setup() -> None:
        time.sleep(0.2)

    profiler = restart.start_profile(5)
    slow_setup()
    top = restart.stop_profile(profiler, 5)
    assert top is not None and len(top) <= 5
    setup = next(row for row in top if "slow_setup" in row["function"])
    assert setup["cum_s"] >= 0.19 and setup["calls"] == 1
    assert [row["cum_s"] for row in top] == sorted((row["cum_s"] for row in top), reverse=True)
    assert restart.start_profile(0) is None and restart.stop_profile(None, 0) is None  # off by default


def test_profile_top_reaches_every_child(tmp_path, monkeypatch) -> None:
    fake = FakeChild([60.0, 6.0])
    monkeypatch.setattr(subprocess, "run", fake)
    restart.main(["--device", "cpu", "--model", "tiny", "--phases", "first", "restart", "--profile-top", "30",
                  "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "r.json")])
    assert all(c["cmd"][c["cmd"].index("--profile-top") + 1] == "30" for c in fake.calls)


def test_a_warm_started_child_reports_every_timed_frame_and_its_warm_up(monkeypatch, capsys) -> None:
    """The child itself, in this process, with the backend it builds swapped for eager (compiling takes minutes on
    a CPU): the report must carry the per-frame latencies after the switch and each warm-up frame's time."""
    from das_core.engine.estimator import Estimator

    real_from_model = Estimator.from_model.__func__  # type: ignore[attr-defined]

    def eager_instead(cls, model, cfg, **kw):
        kw = {k: v for k, v in kw.items() if k in ("device", "precision")}
        return real_from_model(cls, model, cfg, backend="eager", **{**kw, "precision": "fp32"})

    monkeypatch.setattr(Estimator, "from_model", classmethod(eager_instead))
    assert restart.main(["--child", "--device", "cpu", "--model", "tiny", "--frame", "160x96", "--frames", "4",
                         "--warm-start", "--warm-frames", "2", "--spawn-time", repr(time.time())]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("RESTART_RESULT "))
    report = json.loads(line.removeprefix("RESTART_RESULT "))
    assert len(report["latency_ms"]) == 4 and all(ms > 0 for ms in report["latency_ms"])
    assert report["steady_p50_ms"] > 0 and report["first_pose_s"] > 0
    warm = report["warm_start"]
    assert warm["switched"] and warm["error"] is None and warm["quick_frames"] == 1
    assert len(warm["warm_frame_ms"]) == 2 and warm["compile_workers_released"] is True
