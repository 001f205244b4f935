#!/usr/bin/env python3
"""Render a synthetic multi-person 3D dataset; same options as ``das make-synthetic`` (see --help)."""

from __future__ import annotations

import argparse
import logging
import sys

from das_core.data import make_synthetic


def main() -> int:
    parser = argparse.ArgumentParser(description=make_synthetic.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    make_synthetic.add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return make_synthetic.run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
