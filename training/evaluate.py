#!/usr/bin/env python3
"""Evaluate a checkpoint: ``python training/evaluate.py --checkpoint X --data ann.json
--protocol synthetic|panoptic|mupots [--json OUT]``. Same as ``das evaluate``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout without installing

from das_core.evaluation import run as evaluation  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=evaluation.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluation.add_arguments(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return evaluation.run(args)


if __name__ == "__main__":
    sys.exit(main())
