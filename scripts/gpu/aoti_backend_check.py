"""The ``aoti`` backend end to end, as the Estimator uses it: build the package (``export_aoti``: NCHW example
input, channels-last weights), load it, let the backend verify it against eager fp32 (it raises
``BackendError`` on disagreement), then compare one more input with eager fp32. Prints JSON.

    python scripts/gpu/aoti_backend_check.py --device cuda --precision fp16 --out "$OUT/aoti_backend.json"
    python scripts/gpu/aoti_backend_check.py --device cpu --precision bf16     # ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from das_core.engine.backends import BackendError  # noqa: E402
from das_core.engine.backends.aoti import AOTIBackend  # noqa: E402
from das_core.engine.backends.eager import EagerBackend  # noqa: E402
from das_core.engine.export import AGREEMENT, compare_dense, load_model, network_input_shape  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="das_r50_fpn")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: a new temporary folder")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    cfg, model, _ = load_model(args.model, "cpu")
    h, w = network_input_shape(cfg, 1280, 720)
    cache = args.cache_dir or Path(tempfile.mkdtemp(prefix="das-aoti-"))
    report: dict = {"model": cfg.name, "device": args.device, "precision": args.precision, "torch": torch.__version__,
                    "input": [1, 3, h, w], "channels_last_weights": True}
    t0 = time.perf_counter()
    backend = AOTIBackend(copy.deepcopy(model), cfg, device=args.device, precision=args.precision,
                          channels_last=True, cache_dir=cache)
    x = torch.randn((1, 3, h, w), generator=torch.Generator().manual_seed(1)).to(args.device)
    try:
        got = backend.run(x)  # builds, loads, verifies against eager fp32 on its own (seed 0) input
    except BackendError as exc:
        report.update(verified_at_load=False, error=str(exc))
    else:
        ref = EagerBackend(copy.deepcopy(model), cfg, device=args.device).run(x)
        cmp = compare_dense(got, ref, AGREEMENT[args.precision]["dense"])
        report.update(verified_at_load=True, second_input_max_abs=cmp.max_abs, second_input_within_tol=cmp.ok)
    report.update(build_s=round(backend.build_seconds, 1), load_s=round(backend.load_seconds, 2),
                  wall_s=round(time.perf_counter() - t0, 1))
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0 if report.get("verified_at_load") and report.get("second_input_within_tol") else 1


if __name__ == "__main__":
    sys.exit(main())
