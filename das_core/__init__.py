"""das_core: the trainable DAS model and everything around it (no ROS dependency)."""

__version__ = "0.1.0"
