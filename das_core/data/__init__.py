"""Data: the das annotation format, synthetic scenes, converters, augmentation and the training dataset.

Only the torch-free annotation API is re-exported here; import ``das_core.data.dataset`` (torch) and
``das_core.data.synthetic`` explicitly.
"""

from das_core.data.annotations import (
    AnnotationError,
    AnnotationSet,
    ImageAnnotation,
    PersonAnnotation,
    read_annotations,
    write_annotations,
)

__all__ = [
    "AnnotationError",
    "AnnotationSet",
    "ImageAnnotation",
    "PersonAnnotation",
    "read_annotations",
    "write_annotations",
]
