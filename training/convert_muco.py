#!/usr/bin/env python3
"""Convert MuCo-3DHP / MuPoTS-3D (Moon et al.'s COCO-style JSON) to a das annotation JSON.

Examples:
  python training/convert_muco.py --json /data/MuCo/MuCo-3DHP.json --images /data/MuCo --out data/muco_train.json
  python training/convert_muco.py --json /data/MuPoTS/MuPoTS-3D.json --images /data/MuPoTS/MultiPersonTestSet \\
      --out data/mupots.json --keep-all-images
"""

from __future__ import annotations

import argparse
import logging
import sys

from das_core.data.converters.muco import convert_muco


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True, help="MuCo-3DHP.json or MuPoTS-3D.json")
    p.add_argument("--images", required=True, help="folder the JSON's file_name entries are relative to")
    p.add_argument("--out", required=True, help="output annotation JSON")
    p.add_argument("--keep-all-images", action="store_true", help="keep images without usable people (evaluation)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ann = convert_muco(args.json, args.images, args.out, keep_all_images=args.keep_all_images)
    print(f"{args.out}: {len(ann.images)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
