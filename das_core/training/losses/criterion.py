"""``DASLoss``: all training losses of the DAS head for one batch (DAS_SPEC §6).

Terms (B images, P cells, ``|P⁺|`` positive cells in the batch):

* ``loss_cls``: sigmoid focal loss (α 0.25, γ 2) over all cells, summed, divided by ``|P⁺| + B`` (§6.1).
* ``loss_centerness``: BCE-with-logits against the soft centerness target, mean over positives (§6.2).
* ``loss_depth``: Smooth-L1 (β = 1/9) on ``Z_root / f_eff × depth_factor``, mean over positives whose
  person has 3D labels (§6.3, DAS_SPEC §11.4).
* ``loss_pose``: RLE (or plain L1 for the ablation baselines) on the post-update offsets, plus the
  pre-update copy when ``prev_loss`` is on and the model returned ``offsets_init`` (§6.4, §11.5), divided
  by the number of visible joint slots over both copies. Reported *without* the pose weight.
* ``loss``: ``Σ weight · term`` with the weights of :class:`~das_core.config.LossConfig`; with the defaults
  (pose weight 2) this equals the official total ``L_cls + L_ctr + L_depth + L_pose`` whose ×2 sits
  inside L_pose (§6.5).

Every term is computed in float32 with autocast off, and is exactly 0 (never NaN) when its set is empty.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from das_core.config import ModelConfig
from das_core.model.outputs import HeadOutputs
from das_core.training.losses.flows import RealNVP
from das_core.training.losses.focal import sigmoid_focal_loss
from das_core.training.losses.l1 import l1_pose_loss
from das_core.training.losses.rle import rle_loss
from das_core.training.targets import Targets

__all__ = ["DASLoss"]


def _flatten_levels(maps: list[Tensor]) -> Tensor:
    """L × (B, C, H_l, W_l) → (B, P, C), level-major then row-major (the ``to_dense`` order)."""
    return torch.cat([m.flatten(2).transpose(1, 2) for m in maps], dim=1)


class DASLoss(nn.Module):
    """Losses of the DAS head; owns the four RealNVP flows of the RLE loss.

    Args:
        pose_loss: "rle" (RealNVP residual density, official) or "l1" (Table 1 baselines; no flows).
        prev_loss: also supervise the pre-update offsets U⁰ (official: on).
        cls_weight, centerness_weight, depth_weight, pose_weight: weights of the terms in ``loss``.
        focal_alpha, focal_gamma: focal-loss parameters.
        depth_beta: Smooth-L1 transition point of the root-depth loss.

    Flow attribute names match the official checkpoint (``flow3d``/``flow2d`` pre-update,
    ``flow3d_update``/``flow2d_update`` post-update; OFFICIAL_CHECKPOINT.md §5.4).
    """

    def __init__(
        self,
        *,
        pose_loss: Literal["rle", "l1"] = "rle",
        prev_loss: bool = True,
        cls_weight: float = 1.0,
        centerness_weight: float = 1.0,
        depth_weight: float = 1.0,
        pose_weight: float = 2.0,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        depth_beta: float = 1.0 / 9.0,
    ) -> None:
        super().__init__()
        if pose_loss not in ("rle", "l1"):
            raise ValueError(f"DASLoss: pose_loss must be 'rle' or 'l1', got {pose_loss!r}")
        self.pose_loss = pose_loss
        self.prev_loss = prev_loss
        self.cls_weight = cls_weight
        self.centerness_weight = centerness_weight
        self.depth_weight = depth_weight
        self.pose_weight = pose_weight
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.depth_beta = depth_beta
        self.flow3d: RealNVP | None = None
        self.flow2d: RealNVP | None = None
        self.flow3d_update: RealNVP | None = None
        self.flow2d_update: RealNVP | None = None
        if pose_loss == "rle":
            # Order as in the official checkpoint. The pre-update pair exists even with prev_loss off so
            # the state dict keeps one layout (those two flows then simply receive no gradient).
            self.flow3d = RealNVP(3)
            self.flow2d = RealNVP(2)
            self.flow3d_update = RealNVP(3)
            self.flow2d_update = RealNVP(2)

    @classmethod
    def from_config(cls, cfg: ModelConfig) -> DASLoss:
        lc = cfg.loss
        return cls(
            pose_loss=lc.pose_loss,
            prev_loss=lc.prev_loss,
            cls_weight=lc.cls_weight,
            centerness_weight=lc.centerness_weight,
            depth_weight=lc.depth_weight,
            pose_weight=lc.pose_weight,
            focal_alpha=lc.focal_alpha,
            focal_gamma=lc.focal_gamma,
            depth_beta=lc.depth_beta,
        )

    def forward(self, outputs: HeadOutputs, targets: Targets) -> dict[str, Tensor]:
        """Loss terms for one batch.

        Args:
            outputs: per-level head maps (see :class:`HeadOutputs`).
            targets: from :func:`das_core.training.targets.assign_targets` on the same level sizes and strides.

        Returns:
            0-dim float32 tensors ``loss_cls``, ``loss_centerness``, ``loss_depth``, ``loss_pose`` and the
            weighted total ``loss``.
        """
        device_type = outputs.cls_logits[0].device.type
        with torch.autocast(device_type=device_type, enabled=False):
            return self._losses(outputs, targets)

    # ------------------------------------------------------------------------------------------

    def _losses(self, outputs: HeadOutputs, targets: Targets) -> dict[str, Tensor]:
        cls = _flatten_levels(outputs.cls_logits).float().squeeze(-1)  # (B, P)
        b, p = cls.shape
        if tuple(targets.positive.shape) != (b, p):
            raise ValueError(
                f"DASLoss: predictions have (B, P) = {(b, p)} but targets {tuple(targets.positive.shape)}; "
                "were the targets assigned for the same level sizes and strides?"
            )
        device = cls.device
        t = Targets(*(x.to(device) for x in targets))
        pos = t.positive  # (B, P)
        num_pos = pos.sum()

        # §6.1: normaliser |P⁺| + N_img is never 0 for a non-empty batch.
        focal = sigmoid_focal_loss(cls, pos.float(), self.focal_alpha, self.focal_gamma)
        loss_cls = focal.sum() / (num_pos + b).clamp(min=1).float()

        # §6.2: centerness BCE over positives. An empty selection sums to exactly 0.
        ctr = _flatten_levels(outputs.centerness_logits).float().squeeze(-1)[pos]  # (M,)
        ctr_t = t.centerness.float()[pos]
        loss_ctr = F.binary_cross_entropy_with_logits(ctr, ctr_t, reduction="sum") / num_pos.clamp(min=1).float()

        # §6.3: root depth over positives of persons with 3D labels.
        pos3d = pos & t.has_depth
        rd = _flatten_levels(outputs.root_depth).float().squeeze(-1)[pos3d]  # (M3,)
        rd_t = t.root_depth.float()[pos3d]
        loss_depth = F.smooth_l1_loss(rd, rd_t, beta=self.depth_beta, reduction="sum") / pos3d.sum().clamp(
            min=1
        ).float()

        loss_pose = self._pose_loss(outputs, t, pos)

        total = (
            self.cls_weight * loss_cls
            + self.centerness_weight * loss_ctr
            + self.depth_weight * loss_depth
            + self.pose_weight * loss_pose
        )
        return {
            "loss_cls": loss_cls,
            "loss_centerness": loss_ctr,
            "loss_depth": loss_depth,
            "loss_pose": loss_pose,
            "loss": total,
        }

    def _pose_loss(self, outputs: HeadOutputs, t: Targets, pos: Tensor) -> Tensor:
        """§6.4: mean over visible joint slots of both copies (post, pre) of the per-slot loss."""
        target = t.offsets.float()[pos]  # (M, K, 3)
        weight = t.joint_weight.float()[pos]  # (M, K)
        has_depth = t.has_depth[pos]  # (M,)
        m, k = weight.shape
        channels = outputs.offsets[0].shape[1]
        if channels != 3 * k:
            raise ValueError(f"DASLoss: offset maps have {channels} channels but targets have K = {k} joints (need 3K)")
        sigma = _flatten_levels(outputs.sigma).float()[pos].reshape(m, k, 3)

        copies: list[tuple[list[Tensor], RealNVP | None, RealNVP | None]] = [
            (outputs.offsets, self.flow3d_update, self.flow2d_update)
        ]
        # Without an update branch the model hands back U⁰ as both copies (the same tensors); count it once.
        init = outputs.offsets_init
        same = init is not None and all(a is b for a, b in zip(init, outputs.offsets, strict=True))
        if self.prev_loss and init is not None and not same:
            copies.append((init, self.flow3d, self.flow2d))

        total = target.new_zeros(())
        count = target.new_zeros(())
        for maps, flow_3d, flow_2d in copies:
            pred = _flatten_levels(maps).float()[pos].reshape(m, k, 3)
            if self.pose_loss == "rle":
                assert flow_3d is not None and flow_2d is not None
                s, c = rle_loss(pred, sigma, target, weight, has_depth, flow_3d, flow_2d)
            else:
                s, c = l1_pose_loss(pred, target, weight, has_depth)
            total = total + s
            count = count + c
        # DAS_SPEC §6.4: fewer than one visible slot → the loss is 0 (the sum is already 0 when none).
        return torch.where(count >= 1, total / count.clamp(min=1), total * 0)
