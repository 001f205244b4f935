"""Support for the authors' released DAS checkpoint (CMU Panoptic): its expected layout
(:mod:`~das_core.official.layout`), safe reading of ``.pth`` files (:mod:`~das_core.official.pth`) and the
``das convert-official`` command (:mod:`~das_core.official.convert`). See docs/OFFICIAL.md."""
