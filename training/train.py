#!/usr/bin/env python3
"""Train DAS: ``python training/train.py --config config/train/X.yaml [--set key=value ...] [--resume]``.

Multi-GPU: ``torchrun --nproc_per_node N training/train.py --config …`` (DDP; NCCL on GPU, gloo on CPU).
Same as ``das train``; see :mod:`das_core.training.trainer` for the recipe and what a run writes.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout without installing

from das_core.training import trainer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    trainer.add_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return trainer.run(args)


if __name__ == "__main__":
    sys.exit(main())
