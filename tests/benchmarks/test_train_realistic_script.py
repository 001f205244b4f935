"""scripts/gpu/train_realistic.sh and its calibration chain. A `finish` that lands on a machine without the training (the device machine was
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


def test_calibrate_checkpoint_runs_the_five_steps_with_the_hook_after_each(tmp_path) -> None:
    """training/calibrate_checkpoint.sh, sourced as `finish` does: threshold, confidence, uncertainty, then the two
    evaluations, on the given device, with AFTER_STEP (finish packs its results tar with it) after every step."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text(f'#!/bin/sh\necho "python3 $*" >> {tmp_path}/calls\n')
    (fake / "python3").chmod(0o755)
    lib = SCRIPT.parents[2] / "training" / "calibrate_checkpoint.sh"
    cmd = f'save() {{ echo SAVE >> {tmp_path}/calls; }}; . {lib}; AFTER_STEP=save calibrate_checkpoint C D {tmp_path}/j cuda'
    subprocess.run(["bash", "-c", cmd], check=True, timeout=60, cwd=SCRIPT.parents[2],
                   env={"PATH": f"{fake}:/usr/bin:/bin"})
    calls = (tmp_path / "calls").read_text().splitlines()
    steps = ["training/sweep_threshold.py", "training/confidence_calibration.py", "training/calibrate_uncertainty.py",
             "-m das_core.cli evaluate", "-m das_core.cli evaluate"]
    assert len(calls) == 10 and calls[1::2] == ["SAVE"] * 5
    for call, step in zip(calls[0::2], steps, strict=True):
        assert call.startswith(f"python3 {step}") and "--checkpoint C" in call and "--device cuda" in call
    assert "--data D/basic/test.json" in calls[6] and "--data D/real/val.json" in calls[8]
