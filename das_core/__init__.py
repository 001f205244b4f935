"""das_core: the pure PyTorch library of DAS — ``model/`` (the network), ``engine/`` (preprocess → backends →
decode, the ``Estimator``, frame graphs, export, benchmark), ``training/``, ``data/``, ``evaluation/``,
``official/`` and the foundation modules (config, skeletons, camera, persons, checkpoint, …).

It never imports ``das_ros`` or anything of ROS; the ROS side builds on it (docs/architecture.md,
tests/core/test_architecture.py).
"""

__version__ = "0.1.0"
