"""The compile backend's Dynamo cache (``dynamo_cache=True``, issue 14): a restarted process installs the traced
graphs saved by an earlier one instead of tracing the model again, gives the same numbers, and still compiles an
input size it has not seen (torch 2.13 would crash there without das's fix of Dynamo's global names).

Real builds on the CPU (Inductor's C++ backend) in fresh processes, as a restarted node runs them: the first takes
about two minutes on 2 cores, the restart seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from das_core.engine.backends import BackendError

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "config/model/das_tiny.yaml"

# One process, as a restarted node runs it: the tiny DAS (DCN head, 2-layer recursive update) in an Estimator with
# the compile backend, one host frame to persons; then the network's raw outputs for the same input, and optionally
# a frame of another size (another input bucket).
CHILD = textwrap.dedent("""
    import json, sys
    import torch, yaml
    from torch._dynamo.utils import counters
    from das_core.config import ModelConfig, config_from_dict
    from das_core.engine.compile_cache import dynamo_cache_counts
    from das_core.engine.estimator import Estimator
    from das_core.engine.bench import default_camera, synthetic_frame
    from das_core.model.das import DAS

    cfg = config_from_dict(ModelConfig, yaml.safe_load(open(sys.argv[2]).read()))
    torch.manual_seed(0)
    est = Estimator.from_model(DAS.from_config(cfg).eval(), cfg, device="cpu", backend="compile", precision="fp32",
                               cache_dir=sys.argv[1], dynamo_cache=True)
    est(synthetic_frame(640, 400), default_camera(640, 400))
    report = {"lookups": dynamo_cache_counts(), "traced": counters["stats"]["unique_graphs"]}
    with torch.no_grad():
        x = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
        report["scores"] = est.backend.run(x).scores.flatten().tolist()
    if "--new-size" in sys.argv:
        est(synthetic_frame(400, 400), default_camera(400, 400))
        report["traced_after_new_size"] = counters["stats"]["unique_graphs"]
    print("RESULT " + json.dumps(report))
""")


def _process(cache: Path, *extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(cache.parent / "tmp")}
    for var in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR"):
        env.pop(var, None)
    (cache.parent / "tmp").mkdir(exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(cache), str(TINY), *extra], env=env, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.skipif(not hasattr(torch._dynamo.config, "caching_precompile"), reason="this torch has no Dynamo cache")
def test_a_restart_installs_the_saved_traces_instead_of_tracing_and_still_compiles_a_new_input_size(tmp_path) -> None:
    cache = tmp_path / "das-cache"
    first = _process(cache)
    assert first["lookups"] == {"hit": 0, "miss": 2, "error": 0}  # trunk and level head: nothing saved yet
    assert first["traced"] > 0
    assert list((cache / "compile" / "inductor").glob("*/dynamo/*")), "no Dynamo cache entry was written"

    restart = _process(cache, "--new-size")
    assert restart["lookups"] == {"hit": 2, "miss": 0, "error": 0}
    assert restart["traced"] == 0  # no graph traced for the size seen before
    assert restart["scores"] == first["scores"]  # the same compiled code, bit for bit
    assert restart["traced_after_new_size"] > 0  # a new size is traced and compiled, in the same process


def test_the_dynamo_cache_needs_the_persistent_compile_cache() -> None:
    import yaml

    from das_core.config import ModelConfig, config_from_dict
    from das_core.engine.backends.compiled import CompiledBackend
    from das_core.model.das import DAS

    cfg = config_from_dict(ModelConfig, yaml.safe_load(TINY.read_text()))
    with pytest.raises(BackendError, match="dynamo_cache needs persistent_cache"):
        CompiledBackend(DAS.from_config(cfg), cfg, device="cpu", precision="fp32", persistent_cache=False,
                        dynamo_cache=True)
