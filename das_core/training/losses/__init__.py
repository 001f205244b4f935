"""Training losses of the DAS head (DAS_SPEC §6): focal, centerness BCE, Smooth-L1 depth, RLE/RealNVP."""

from das_core.training.losses.criterion import DASLoss
from das_core.training.losses.flows import RealNVP
from das_core.training.losses.focal import sigmoid_focal_loss
from das_core.training.losses.l1 import l1_pose_loss
from das_core.training.losses.rle import rle_loss

__all__ = ["DASLoss", "RealNVP", "l1_pose_loss", "rle_loss", "sigmoid_focal_loss"]
