"""Slow, obviously-correct loop references shared by the model tests (tiny tensors only)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def bilinear(img: Tensor, y: float, x: float) -> Tensor:
    """img (C, H, W) read at pixel-index coords (y, x); corners outside the map contribute zero."""
    _, h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    out = torch.zeros(img.shape[0], dtype=torch.float64)
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < h and 0 <= xx < w:
                out += (1 - abs(y - yy)) * (1 - abs(x - xx)) * img[:, yy, xx].double()
    return out


def bilinear_grid_units(img: Tensor, x: float, y: float) -> Tensor:
    """Grid units: cell (i, j) has centre (j + 0.5, i + 0.5)."""
    return bilinear(img, y - 0.5, x - 0.5)
