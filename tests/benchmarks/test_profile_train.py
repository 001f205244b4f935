"""scripts/gpu/profile_train.py: the loader's rate and the training step of each layout / autotuning variant are
measured on the same batches of real training data, and the fastest is named (train_realistic.sh trains with it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_variant_is_timed_on_the_same_batches_and_the_fastest_is_named(tmp_path) -> None:
    subprocess.run([sys.executable, "-m", "das_core.cli", "make-synthetic", "--out", str(tmp_path / "d"), "--split",
                    "train", "--num", "4", "--seed", "3", "--workers", "1", "--no-progress"], cwd=ROOT, check=True,
                   capture_output=True)
    out = tmp_path / "profile.json"
    proc = subprocess.run([sys.executable, "scripts/gpu/profile_train.py", str(tmp_path / "d/train.json"),
                           "--device", "cpu", "--batch", "2", "--batches", "2", "--repeats", "1", "--workers", "0",
                           "--variants", "nchw", "channels_last", "--set", "model=config/model/das_tiny.yaml",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["batch_size"] == 2 and report["loader_img_per_s"] > 0
    assert set(report["variants"]) == {"nchw", "channels_last"}
    assert all(v["step_ms"] > 0 and v["img_per_s"] > 0 for v in report["variants"].values())
    assert report["fastest"] == min(report["variants"], key=lambda k: report["variants"][k]["step_ms"])
    assert f"fastest: {report['fastest']}" in proc.stdout
