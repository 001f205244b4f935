"""Store a checkpoint's floating-point tensors in fp16 (half the file size; weights are cast back on load).

Example:
  python training/fp16_checkpoint.py runs/realistic_r34s/final das_core/assets/das_demo

Integer tensors (BatchNorm's ``num_batches_tracked``) stay as they are. ``load_state_dict`` copies fp16
values into the fp32 parameters of a freshly built model, so the engine runs in fp32 as before; the
rounding changes each weight by at most 2^-11 of itself (the YAML record says the file is fp16).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from das_core.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="checkpoint to read (NAME, NAME.safetensors or NAME.yaml)")
    parser.add_argument("dst", help="checkpoint to write")
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(args.src)
    state = {k: v.half() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()}
    record = dict(ckpt.record, storage="fp16 (training/fp16_checkpoint.py; cast to fp32 when loaded)")
    paths = save_checkpoint(args.dst, state, ckpt.config, record)
    print(" ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
