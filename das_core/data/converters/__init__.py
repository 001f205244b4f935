"""Converters from public dataset formats to the das annotation format (docs/DATA_FORMAT.md)."""

from das_core.data.converters.coco import convert_coco
from das_core.data.converters.muco import convert_muco
from das_core.data.converters.panoptic import convert_panoptic

__all__ = ["convert_coco", "convert_muco", "convert_panoptic"]
