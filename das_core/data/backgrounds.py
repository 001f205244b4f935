"""Photographs without people as backgrounds and textures for synthetic scenes.

A procedural gradient behind every rendered person teaches a network that "person" means "the only
textured thing in the frame"; real frames are cluttered. A :class:`PhotoLibrary` is a folder of photos
(JPEG/PNG; e.g. a desktop-background package — anything without people in it) from which scenes take
random crops: as the whole background, as a texture laid over the procedural room (keeping its floor
perspective), and as fabric patterns for clothing.

Photos are decoded once per process and kept (a library of ~100 photos at ~1000 px is ~150 MB).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

__all__ = ["PHOTO_SUFFIXES", "PhotoLibrary"]

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass
class PhotoLibrary:
    """The photos of one folder (searched recursively), loaded lazily, RGB uint8."""

    folder: str
    files: list[Path] = field(init=False)
    _cache: dict[int, np.ndarray] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        root = Path(self.folder)
        if not root.is_dir():
            raise FileNotFoundError(f"background folder {root} does not exist")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
        if not self.files:
            raise FileNotFoundError(f"background folder {root} holds no photos ({', '.join(PHOTO_SUFFIXES)})")

    def __len__(self) -> int:
        return len(self.files)

    def photo(self, index: int) -> np.ndarray:
        """Photo ``index`` as (H, W, 3) uint8 RGB (decoded once, then cached)."""
        if index not in self._cache:
            bgr = cv2.imread(str(self.files[index]), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{self.files[index]}: not a readable image")
            self._cache[index] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return self._cache[index]

    def crop(self, rng: np.random.Generator, width: int, height: int, min_area: float = 0.15) -> np.ndarray:
        """A random crop of a random photo, resized to (height, width, 3) uint8, maybe mirrored.

        The crop keeps the output's aspect ratio and covers ``min_area``–1 of the photo's largest such window,
        so the scale of the photo's content varies as a camera's distance to a wall would.
        """
        src = self.photo(int(rng.integers(len(self.files))))
        sh, sw = src.shape[:2]
        aspect = width / height
        cw0, ch0 = (sw, sw / aspect) if sw / sh < aspect else (sh * aspect, sh)
        s = float(np.sqrt(rng.uniform(min_area, 1.0)))
        cw, ch = max(8, int(cw0 * s)), max(8, int(ch0 * s))
        x0 = int(rng.integers(0, max(1, sw - cw + 1)))
        y0 = int(rng.integers(0, max(1, sh - ch + 1)))
        patch = src[y0:y0 + ch, x0:x0 + cw]
        interp = cv2.INTER_AREA if cw > width else cv2.INTER_LINEAR
        out = cv2.resize(patch, (width, height), interpolation=interp)
        if rng.random() < 0.5:
            out = np.ascontiguousarray(out[:, ::-1])
        return out

    def texture(self, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        """(H, W) float32 luminance pattern with mean 1 (a fabric or surface texture from a photo crop)."""
        patch = self.crop(rng, max(8, width), max(8, height), min_area=0.02)
        if patch.shape[:2] != (height, width):
            patch = cv2.resize(patch, (width, height), interpolation=cv2.INTER_AREA)
        lum = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32) + 1.0
        return lum / float(lum.mean())
