#!/usr/bin/env python3
"""Convert CMU Panoptic (panoptic-toolbox layout) to a das annotation JSON (DAS_SPEC §2.3, §9.1).

Examples:
  python training/convert_panoptic.py --root /data/panoptic --out data/panoptic_train.json --mode train
  python training/convert_panoptic.py --root /data/panoptic --out data/panoptic_haggling.json \\
      --mode test --activity haggling --frames-per-activity 2400
"""

from __future__ import annotations

import argparse
import logging
import sys

from das_core.data.converters.panoptic import (
    PANOPTIC_CAMERAS,
    PANOPTIC_TEST_ACTIVITIES,
    PANOPTIC_TRAIN_SEQUENCES,
    convert_panoptic,
)


def _camera(text: str) -> tuple[int, int]:
    panel, node = text.split(",") if "," in text else text.split("_")
    return int(panel), int(node)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="folder holding one sub-folder per sequence")
    p.add_argument("--out", required=True, help="output annotation JSON")
    p.add_argument("--mode", choices=["train", "test"], default="train")
    p.add_argument("--sequences", nargs="*", help="sequence names (default: the §2.3 training set)")
    p.add_argument("--activity", choices=sorted(PANOPTIC_TEST_ACTIVITIES), help="test activity (§9.1)")
    p.add_argument("--cameras", nargs="*", type=_camera, default=list(PANOPTIC_CAMERAS),
                   help="HD cameras as panel,node (default 0,16 0,30)")
    p.add_argument("--frame-step", type=int, default=2)
    p.add_argument("--frames-per-activity", type=int, default=None)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.activity:
        sequences = PANOPTIC_TEST_ACTIVITIES[args.activity]
    else:
        sequences = tuple(args.sequences) if args.sequences else PANOPTIC_TRAIN_SEQUENCES
    ann = convert_panoptic(args.root, args.out, sequences, args.cameras, args.mode, args.frame_step,
                           args.frames_per_activity)
    print(f"{args.out}: {len(ann.images)} images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
