"""Random-convolution input augmentation for synthetic-to-real transfer (RandConv; Xu et al., ICLR 2021).

Our scenes are textured procedurally, so a network can key on texture statistics that real photos do not share.
Passing each training image through a freshly drawn random ``k×k`` convolution (3 → 3 channels) keeps shapes
(edges, silhouettes, the layout of limbs) and scrambles local texture and colour, which pushes the network
towards shape. Applied in the training step on the device, after normalisation: it is one grouped convolution
per batch, and the step's RNG (saved in every training checkpoint) draws it, so a resumed run stays exact.
Inference never sees it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from das_core.data.dataset import zero_padding


def random_convolution(images: Tensor, image_sizes: Sequence[tuple[int, int]], prob: float,
                       kernel_sizes: Sequence[int], generator: torch.Generator | None = None) -> Tensor:
    """(B, 3, H, W) normalised batch → (B, 3, H, W), each image with probability ``prob`` replaced by
    ``α·x + (1 − α)·conv(x)``: ``conv`` a 3 → 3 kernel of one size drawn per batch from ``kernel_sizes``, weights
    ~ N(0, 1/(3k²)) (He's rule, so the output's spread stays near the input's), one kernel and one α ~ U(0, 1) per
    image (RandConv's "mix" variant: α = 0 is the pure random filter, α = 1 the original image). The padding
    beyond each ``image_sizes`` (h, w) stays 0, as ``normalise_batch`` left it. ``prob == 0`` returns ``images``.
    """
    if prob <= 0.0:
        return images
    b, c, h, w = images.shape
    dev, dt = images.device, images.dtype
    pick = torch.randint(len(kernel_sizes), (1,), generator=generator, device="cpu")
    k = int(kernel_sizes[int(pick)])
    weight = torch.randn((b * c, c, k, k), generator=generator, device="cpu").to(dev, dt) / float(c * k * k) ** 0.5
    alpha = torch.rand((b, 1, 1, 1), generator=generator, device="cpu").to(dev, dt)
    chosen = (torch.rand((b, 1, 1, 1), generator=generator, device="cpu") < prob).to(dev)
    filtered = F.conv2d(images.reshape(1, b * c, h, w), weight, padding=k // 2, groups=b).reshape(b, c, h, w)
    out = torch.where(chosen, alpha * images + (1 - alpha) * filtered, images)
    return zero_padding(out, image_sizes)  # the filter smears content into the padding

