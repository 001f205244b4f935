"""``DASLoss`` on hand-built head outputs (DAS_SPEC §6): empty frames, normalisation, copies, options."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from das_core.config import FPNConfig, LossConfig, ModelConfig, TargetConfig
from das_core.model.outputs import HeadOutputs
from das_core.pose25d import Pose25D
from das_core.training.losses.criterion import DASLoss
from das_core.training.targets import Targets, assign_targets

K = 15
CFG = ModelConfig(
    strides=(8, 16),
    fpn=FPNConfig(num_outs=2),
    targets=TargetConfig(regress_ranges=((-1.0, 48.0), (48.0, 1e8))),
)
SIZES = [(8, 8), (4, 4)]  # a 64 × 64 input
KEYS = {"loss", "loss_cls", "loss_centerness", "loss_depth", "loss_pose"}


def head_outputs(b: int, seed: int = 0, with_init: bool = True) -> tuple[HeadOutputs, dict[str, torch.Tensor]]:
    """Random per-level maps built from leaf tensors (returned so tests can read their gradients)."""
    gen = torch.Generator().manual_seed(seed)
    leaves: dict[str, torch.Tensor] = {}

    def maps(name: str, ch: int, scale: float = 1.0) -> list[torch.Tensor]:
        out = []
        for level, (h, w) in enumerate(SIZES):
            leaf = (torch.randn(b, ch, h, w, generator=gen) * scale).requires_grad_(True)
            leaves[f"{name}{level}"] = leaf
            out.append(leaf)
        return out

    sigma_logits = maps("sigma", 3 * K)
    outputs = HeadOutputs(
        cls_logits=maps("cls", 1),
        centerness_logits=maps("ctr", 1),
        root_depth=maps("depth", 1),
        offsets=maps("offsets", 3 * K),
        sigma=[torch.sigmoid(s) + 1e-9 for s in sigma_logits],
        offsets_init=maps("init", 3 * K) if with_init else None,
        strides=CFG.strides,
    )
    return outputs, leaves


def people(has_depth: bool = True) -> Pose25D:
    gen = np.random.default_rng(0)
    uv = np.array([[20.0, 28.0]], np.float32)[:, None, :] + gen.uniform(-15, 15, (1, K, 2)).astype(np.float32)
    return Pose25D(
        centers=np.array([[20.0, 28.0]], np.float32),
        root_depth=np.array([0.002 if has_depth else 0.0], np.float32),
        joints_uv=uv,
        joints_dz=gen.uniform(-0.3, 0.3, (1, K)).astype(np.float32) * has_depth,
        visible=np.ones((1, K), bool),
        has_depth=np.array([has_depth]),
    )


def targets_for(*images: Pose25D) -> Targets:
    return assign_targets(list(images), SIZES, CFG.strides, CFG)


def test_empty_frame_gives_exactly_zero_pose_depth_and_centerness_and_finite_cls() -> None:
    outputs, leaves = head_outputs(1)
    losses = DASLoss.from_config(CFG)(outputs, targets_for(Pose25D.empty(K)))
    assert set(losses) == KEYS
    assert losses["loss_pose"].item() == 0.0
    assert losses["loss_depth"].item() == 0.0
    assert losses["loss_centerness"].item() == 0.0
    assert math.isfinite(losses["loss_cls"].item()) and losses["loss_cls"].item() > 0
    losses["loss"].backward()
    assert all(torch.isfinite(leaf.grad).all() for leaf in leaves.values() if leaf.grad is not None)


def test_cls_is_focal_sum_over_cells_divided_by_positives_plus_images() -> None:
    outputs, _ = head_outputs(2)
    t = targets_for(people(), Pose25D.empty(K))
    num_pos = int(t.positive.sum())
    assert num_pos == 9
    logits = torch.cat([m.flatten(2).transpose(1, 2) for m in outputs.cls_logits], 1).squeeze(-1)
    pos = t.positive.float()
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, pos, reduction="none")
    p_t = p * pos + (1 - p) * (1 - pos)
    focal = (0.25 * pos + 0.75 * (1 - pos)) * (1 - p_t) ** 2 * ce
    losses = DASLoss.from_config(CFG)(outputs, t)
    assert losses["loss_cls"].item() == pytest.approx(focal.sum().item() / (num_pos + 2), rel=1e-5)


def test_centerness_and_depth_are_means_over_positives() -> None:
    outputs, _ = head_outputs(1)
    t = targets_for(people())
    pos = t.positive[0]
    ctr = torch.cat([m.flatten(1) for m in outputs.centerness_logits], 1)[0]
    rd = torch.cat([m.flatten(1) for m in outputs.root_depth], 1)[0]
    losses = DASLoss.from_config(CFG)(outputs, t)
    expected_ctr = F.binary_cross_entropy_with_logits(ctr[pos], t.centerness[0, pos])
    expected_depth = F.smooth_l1_loss(rd[pos], t.root_depth[0, pos], beta=1 / 9)
    assert losses["loss_centerness"].item() == pytest.approx(expected_ctr.item(), rel=1e-5)
    assert losses["loss_depth"].item() == pytest.approx(expected_depth.item(), rel=1e-5)
    assert t.root_depth[0, pos].unique().tolist() == pytest.approx([0.002 * CFG.depth_factor])


def test_two_d_only_person_gives_zero_depth_loss_but_a_pose_loss() -> None:
    outputs, _ = head_outputs(1)
    losses = DASLoss.from_config(CFG)(outputs, targets_for(people(has_depth=False)))
    assert losses["loss_depth"].item() == 0.0
    assert losses["loss_pose"].item() != 0.0 and math.isfinite(losses["loss_pose"].item())


def test_total_is_the_config_weighted_sum() -> None:
    outputs, _ = head_outputs(1)
    losses = DASLoss.from_config(CFG)(outputs, targets_for(people()))
    expected = losses["loss_cls"] + losses["loss_centerness"] + losses["loss_depth"] + 2.0 * losses["loss_pose"]
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert all(v.dtype == torch.float32 and v.dim() == 0 for v in losses.values())


@pytest.mark.parametrize(("prev_loss", "with_init", "pre_used"), [(True, True, True), (True, False, False),
                                                                  (False, True, False)])
def test_pre_update_copy_uses_its_own_flows_only_when_enabled(prev_loss: bool, with_init: bool, pre_used: bool) -> None:
    cfg = dataclasses.replace(CFG, loss=LossConfig(prev_loss=prev_loss))
    outputs, leaves = head_outputs(1, with_init=with_init)
    criterion = DASLoss.from_config(cfg)
    criterion(outputs, targets_for(people()))["loss"].backward()
    assert criterion.flow3d_update.s[0][0].weight.grad.abs().sum() > 0
    pre_grad = criterion.flow3d.s[0][0].weight.grad
    assert (pre_grad is not None and pre_grad.abs().sum() > 0) == pre_used
    if with_init:
        assert (leaves["init0"].grad is not None and leaves["init0"].grad.abs().sum() > 0) == pre_used


def test_sigma_maps_and_all_four_flows_get_gradients_on_a_mixed_batch() -> None:
    outputs, leaves = head_outputs(2)
    criterion = DASLoss.from_config(CFG)
    criterion(outputs, targets_for(people(), people(has_depth=False)))["loss"].backward()
    assert leaves["sigma0"].grad.abs().sum() > 0
    for flow in (criterion.flow3d, criterion.flow2d, criterion.flow3d_update, criterion.flow2d_update):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in flow.parameters())


def test_pose_loss_is_lower_when_offsets_equal_the_targets() -> None:
    outputs, _ = head_outputs(1)
    t = targets_for(people())
    criterion = DASLoss.from_config(CFG)
    before = criterion(outputs, t)["loss_pose"].item()
    # Write the targets into the offset maps (level 0 holds this person).
    h, w = SIZES[0]
    perfect = t.offsets[0, : h * w].reshape(h, w, 3 * K).permute(2, 0, 1)[None]
    exact = outputs._replace(
        offsets=[perfect, outputs.offsets[1]], offsets_init=[perfect, outputs.offsets_init[1]]
    )
    after = criterion(exact, t)["loss_pose"].item()
    assert after < before


def test_l1_option_has_no_flows_and_averages_visible_slots_over_both_copies() -> None:
    cfg = dataclasses.replace(CFG, loss=LossConfig(pose_loss="l1"))
    outputs, _ = head_outputs(1)
    t = targets_for(people())
    criterion = DASLoss.from_config(cfg)
    assert not list(criterion.parameters())
    pos = t.positive[0]
    err = 0.0
    for maps in (outputs.offsets, outputs.offsets_init):
        pred = torch.cat([m.flatten(2).transpose(1, 2) for m in maps], 1)[0, pos].reshape(-1, K, 3)
        err += (pred - t.offsets[0, pos]).abs().sum().item()
    slots = 2 * t.joint_weight[0, pos].sum().item()
    assert criterion(outputs, t)["loss_pose"].item() == pytest.approx(err / slots, rel=1e-5)


def test_runs_in_float32_under_autocast() -> None:
    outputs, _ = head_outputs(1)
    half = outputs._replace(cls_logits=[m.bfloat16() for m in outputs.cls_logits],
                            offsets=[m.bfloat16() for m in outputs.offsets])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses = DASLoss.from_config(CFG)(half, targets_for(people()))
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())


def test_targets_for_other_level_sizes_are_rejected() -> None:
    outputs, _ = head_outputs(1)
    t = assign_targets([people()], [(4, 4), (2, 2)], CFG.strides, CFG)
    with pytest.raises(ValueError, match="targets"):
        DASLoss.from_config(CFG)(outputs, t)


def test_same_maps_as_both_copies_are_counted_once() -> None:
    outputs, _ = head_outputs(1, with_init=False)
    t = targets_for(people())
    criterion = DASLoss.from_config(CFG)
    single = criterion(outputs, t)["loss_pose"]
    shared = criterion(outputs._replace(offsets_init=list(outputs.offsets)), t)["loss_pose"]
    assert shared.item() == single.item()


@pytest.mark.parametrize("mode", ["multi", "none"])
def test_end_to_end_with_the_real_model(mode: str) -> None:
    from das_core.config import config_from_dict
    from das_core.model.das import DAS

    cfg = config_from_dict(ModelConfig, {
        "strides": [8, 16, 32, 64],
        "backbone": {"name": "resnet18"},
        "fpn": {"out_channels": 16, "num_outs": 4},
        "head": {"feat_channels": 16, "stacked_convs": 1, "num_groups": 4, "centerness_channels": 8},
        "update": {"mode": mode, "num_layers": 1, "num_points": 2},
        "targets": {"regress_ranges": [[-1, 48], [48, 96], [96, 192], [192, 1e8]]},
    })
    torch.manual_seed(0)
    model = DAS.from_config(cfg).train()
    criterion = DASLoss.from_config(cfg)
    outputs = model(torch.randn(2, 3, 32, 32))
    sizes = [(int(m.shape[-2]), int(m.shape[-1])) for m in outputs.cls_logits]
    targets = assign_targets([people(), people(has_depth=False)], sizes, outputs.strides, cfg)
    losses = criterion(outputs, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    pre_flow_trained = criterion.flow3d.s[0][0].weight.grad is not None and bool(
        criterion.flow3d.s[0][0].weight.grad.abs().sum() > 0
    )
    assert pre_flow_trained == (mode != "none")
