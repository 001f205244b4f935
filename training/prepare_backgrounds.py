"""Make the background-photo folder of the realistic synthetic recipe (``das make-synthetic --backgrounds``).

The wallpapers of seven Debian packages (photos and art without people):

  mkdir -p bgsrc && cd bgsrc && for p in plasma-workspace-wallpapers ukui-wallpapers mate-backgrounds \\
      gnome-backgrounds lomiri-wallpapers-20.04 sway-backgrounds lomiri-wallpapers-16.04; do apt-get download $p; done
  for f in *.deb; do dpkg -x $f x; done; cd ..
  python training/prepare_backgrounds.py bgsrc/x .bg      # 123 photos

The shipped checkpoint (stages 1-3) was trained with the first six packages only (108 photos, 8.5 MB);
lomiri-wallpapers-16.04 adds 15 photos (a few of them indoors) for the trainings after it.

Every JPEG/PNG/WebP under SRC whose short side is at least 300 px is downscaled to a 960 px long side and
written as DST/bg_NNN.jpg; exact visual duplicates (the same 16×9 thumbnail) are kept once. The photos are
training material only: keep them out of the repository and out of what is shipped.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from das_core.data.backgrounds import PHOTO_SUFFIXES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="folder searched recursively for photos")
    parser.add_argument("dst", help="output folder")
    parser.add_argument("--long-side", type=int, default=960)
    parser.add_argument("--min-short-side", type=int, default=300)
    args = parser.parse_args(argv)
    dst = Path(args.dst)
    dst.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    n = 0
    for f in sorted(p for p in Path(args.src).rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES):
        im = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if im is None or min(im.shape[:2]) < args.min_short_side:
            continue
        s = args.long_side / max(im.shape[:2])
        im = cv2.resize(im, (int(im.shape[1] * s), int(im.shape[0] * s)), interpolation=cv2.INTER_AREA)
        key = hashlib.md5(cv2.resize(im, (16, 9)).tobytes()).hexdigest()
        if key in seen:
            continue
        seen.add(key)
        cv2.imwrite(str(dst / f"bg_{n:03d}.jpg"), im, [cv2.IMWRITE_JPEG_QUALITY, 88])
        n += 1
    print(f"wrote {n} photos to {dst}")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
