#!/usr/bin/env python3
"""Convert the authors' released DAS Panoptic checkpoint: ``python training/convert_official.py CHECKPOINT OUT
[--flows FLOWS.safetensors]`` writes OUT.safetensors + OUT.yaml. Same as ``das convert-official``;
docs/OFFICIAL.md says where the file comes from and how to run the result."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout without installing

from das_core.official import convert  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=convert.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    convert.add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return convert.run(args)
    except (FileNotFoundError, ValueError, OSError) as exc:  # the messages name the file and the problem
        print(f"convert_official: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
