"""scripts/gpu/train_realistic.sh: a `finish` that lands on a machine without the training (the device machine was
given back after `start`) stops at once with a message that says what happened, instead of failing step by step."""

from __future__ import annotations

import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu" / "train_realistic.sh"


def test_finish_without_a_training_on_this_machine_stops_with_a_message(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(["bash", str(SCRIPT), "finish"], capture_output=True, text=True, timeout=60, check=False,
                          env={"PATH": "/usr/bin:/bin", "OUT": str(out), "TRAIN_LOG": str(tmp_path / "absent.log")})
    assert proc.returncode == 3
    assert "no training on this machine" in proc.stderr and "last_fp16" in proc.stderr
    assert list(out.iterdir()) == []  # nothing half-made comes back


def test_an_unknown_subcommand_is_refused() -> None:
    proc = subprocess.run(["bash", str(SCRIPT), "finsh"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "usage" in proc.stderr
