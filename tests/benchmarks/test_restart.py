"""benchmarks/restart.py: the phases start fresh processes with the right folders, wipe what they claim to
wipe and keep what they claim to keep. The child processes are faked (a real one compiles for minutes)."""

from __future__ import annotations

import json
import subprocess
import sys
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
