#!/usr/bin/env python3
"""Convert COCO person keypoints (2D only) to a das annotation JSON for a target skeleton.

Example:
  python training/convert_coco.py --json /data/coco/annotations/person_keypoints_train2017.json \\
      --images /data/coco/train2017 --out data/coco_panoptic15.json --skeleton panoptic15
"""

from __future__ import annotations

import argparse
import logging
import sys

from das_core.data.converters.coco import convert_coco
from das_core.skeletons import SKELETONS


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", required=True, help="person_keypoints_*.json")
    p.add_argument("--images", required=True, help="folder holding the COCO images")
    p.add_argument("--out", required=True, help="output annotation JSON")
    p.add_argument("--skeleton", default="panoptic15", choices=sorted(SKELETONS))
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ann = convert_coco(args.json, args.images, args.out, skeleton=args.skeleton)
    print(f"{args.out}: {len(ann.images)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
