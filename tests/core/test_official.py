"""Official-checkpoint support: the MSPN backbone, the converter, and decoding in ``compat: official``.

The fake checkpoint is fabricated here from the architecture rules (OFFICIAL_CHECKPOINT.md), pinned by the
documented totals; the reference forward below reads the *official* names directly, so a wrong entry in
the converter's name table shows up as a numerical mismatch.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from das_core.camera import Intrinsics, ResizeRecord
from das_core.checkpoint import load_checkpoint
from das_core.config import load_config
from das_core.engine.decode import decode
from das_core.model.das import DAS
from das_core.model.dense import cell_centers, to_dense
from das_core.model.mspn import MSPN, load_mspn_pretrained
from das_core.model.outputs import DenseOutputs
from das_core.official.convert import (
    OfficialCheckpointError,
    convert_official,
    convert_state_dict,
    model_layout,
    official_model_config,
)
from das_core.official.layout import OfficialArch, key_group, official_layout
from das_core.official.pth import read_state_dict

REPO = Path(__file__).resolve().parents[2]
K = 15
ROOT = 2


def _flow_mask(dim: int) -> Tensor:
    """OFFICIAL_CHECKPOINT.md §5.4: 3D rows alternate [0,0,1], [1,1,0]; 2D rows [0,1], [1,0]."""
    rows = {3: ([0, 0, 1], [1, 1, 0]), 2: ([0, 1], [1, 0])}[dim]
    return torch.tensor([rows[i % 2] for i in range(6)], dtype=torch.float32)


KEY_TABLE = Path(__file__).parent / "data_files" / "official_checkpoint_keys.tsv"  # origin: data_files/README.md


def reference_table() -> list[dict[str, str]]:
    """Rows of the independent key/shape table of the official Panoptic checkpoint, in state-dict order."""
    lines = [ln for ln in KEY_TABLE.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    header = lines[0].split("\t")
    return [dict(zip(header, ln.split("\t"), strict=True)) for ln in lines[1:]]


def reference_layout() -> dict[str, tuple[int, ...]]:
    return {r["key"]: tuple(int(d) for d in r["shape"].strip("[]").split(",") if d) for r in reference_table()}


def fabricate(seed: int = 0, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """A checkpoint ``state_dict`` with the official names and shapes (from the independent key table, not
    from ``official_layout()``) and well-scaled random values (convs ~ N(0, 1/fan_in), positive BN
    variances, DCN offsets of about a pixel, scales near 1)."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for key, shape in reference_layout().items():
        if key.endswith("num_batches_tracked"):
            t = torch.tensor(1234, dtype=torch.int64)
        elif key.endswith(".mask"):
            t = _flow_mask(shape[1])
        elif key.endswith("running_var"):
            t = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean"):
            t = 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 0:  # per-level scales
            t = 1.0 + 0.2 * torch.randn(shape, generator=g)
        elif len(shape) >= 2:
            t = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        elif key.endswith("weight"):  # norm affine weight
            t = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            t = 0.1 * torch.randn(shape, generator=g)
        out[key] = t if t.dtype == torch.int64 else t.to(dtype)
    return out


@pytest.fixture(scope="module", autouse=True)
def _single_thread() -> Iterator[None]:
    """These tests run many small ops on tiny maps, where intra-op threading costs more than it saves."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def official() -> dict[str, Tensor]:
    return fabricate()


@pytest.fixture(scope="module")
def model_and_state(official: dict[str, Tensor]) -> tuple[DAS, dict[str, Tensor]]:
    torch.manual_seed(0)
    model = DAS.from_config(official_model_config()).eval()
    result = convert_state_dict(official, target=model_layout(model))
    missing, unexpected = model.load_state_dict(result.state_dict, strict=True)
    assert not missing and not unexpected
    return model, result.state_dict


@pytest.fixture(scope="module")
def official_file(official: dict[str, Tensor], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An mmcv-runner style file: meta + state_dict (+ optimizer), stored as float16 (OFFICIAL_CHECKPOINT §9 U2)."""
    path = tmp_path_factory.mktemp("official") / "epoch_22.pth"
    state = {k: v.half() if v.is_floating_point() else v for k, v in official.items()}
    meta = {"epoch": 22, "mmcv_version": "1.3.10", "mmdet3d_version": "0.17.2", "CLASSES": ("person",),
            "config": "model = dict(neck=dict(type='FPN', start_level=1, add_extra_convs='on_output', num_outs=4), "
                      "bbox_head=dict(type='DASHead'))"}
    torch.save({"meta": meta, "state_dict": state, "optimizer": {"state": {}, "param_groups": []}}, path)
    return path


@pytest.fixture(scope="module")
def spare_mspn() -> MSPN:
    """A 2-stage MSPN that the weight-loading tests may overwrite."""
    torch.manual_seed(0)
    return MSPN(2, "bn")


# ----------------------------------------------------------------------------------------------
# The layout is pinned by the documented numbers (OFFICIAL_CHECKPOINT.md §0, §5.6, §7, Appendix A)
# ----------------------------------------------------------------------------------------------


def _is_buffer(key: str) -> bool:
    return key.endswith(("running_mean", "running_var", "num_batches_tracked")) or key.endswith(".mask")


def test_layout_equals_the_independent_key_table_in_order_and_shape() -> None:
    reference = reference_layout()
    assert len(reference) == 1200
    layout = official_layout()
    assert [k for k in layout if k not in reference] == []
    assert [k for k in reference if k not in layout] == []
    assert {k: s for k, s in layout.items() if reference[k] != s} == {}
    assert list(layout) == list(reference)  # state-dict order


def test_key_groups_agree_with_the_tables_inference_roles() -> None:
    # the table's roles → ours; the sigma branch is "train_only" officially but gives our per-joint confidences
    allowed = {"required": {"model"}, "train_only": {"flow", "model"}, "not_needed_eval_buffer": {"bn_counter"},
               "dead_at_inference": {"dead_up4", "bn_counter"}, "aux_untrained": {"root_xy"}}
    wrong = {}
    for row in reference_table():
        group = key_group(row["key"])
        if group not in allowed[row["inference_role"]] or (
            row["inference_role"] == "train_only" and group == "model" and row["group"] != "head.sigma"
        ):
            wrong[row["key"]] = (row["inference_role"], group)
    assert wrong == {}


def test_layout_has_the_documented_tensor_and_parameter_counts() -> None:
    layout = official_layout()
    assert len(layout) == 1200
    assert sum(not _is_buffer(k) for k in layout) == 791
    assert sum(math.prod(s) for k, s in layout.items() if not _is_buffer(k)) == 66_375_442
    assert sum(math.prod(s) for k, s in layout.items() if _is_buffer(k)) == 132_547
    prefixes = [k.split(".")[0] for k in layout]
    assert (prefixes.count("backbone"), prefixes.count("neck"), prefixes.count("bbox_head")) == (768, 42, 390)
    groups = [key_group(k) for k in layout]
    assert (groups.count("flow"), groups.count("root_xy")) == (292, 10)
    without_flows = sum(math.prod(s) for k, s in layout.items() if not _is_buffer(k) and key_group(k) != "flow")
    assert without_flows == 66_157_210  # "official eval graph" (variant A)
    mupots = official_layout(OfficialArch(mspn_stages=3, num_joints=21, update_layers=2))
    assert len(mupots) == 1621
    assert sum(math.prod(s) for k, s in mupots.items() if not _is_buffer(k)) == 98_422_428


def test_layout_contains_the_documented_example_keys() -> None:
    layout = official_layout()
    examples = {
        "backbone.top.top.0.conv.weight": (64, 3, 7, 7),
        "backbone.multi_stage_mspn.0.downsample.layer1.1.conv1.weight": (64, 256, 1, 1),
        "backbone.multi_stage_mspn.0.downsample.layer2.0.downsample.conv.weight": (512, 256, 1, 1),
        "backbone.multi_stage_mspn.0.downsample.layer4.2.conv3.weight": (2048, 512, 1, 1),
        "backbone.multi_stage_mspn.0.upsample.up4.cross_conv.conv.weight": (64, 256, 1, 1),
        "backbone.multi_stage_mspn.0.upsample.up1.out_skip2.conv.weight": (2048, 256, 1, 1),
        "neck.lateral_convs.2.conv.weight": (256, 256, 1, 1),
        "neck.fpn_convs.3.conv.weight": (256, 256, 3, 3),
        "bbox_head.pose_convs.1.conv.conv_offset.weight": (27, 256, 3, 3),
        "bbox_head.conv_poses.0.weight": (45, 256, 1, 1),
        "bbox_head.conv_centerness_prev.0.gn.weight": (64,),
        "bbox_head.scales.3.3.scale": (),
        "bbox_head.recursive_update_branch.layer_0.next_level_offset.sampling_offset.weight": (120, 256, 1, 1),
    }
    for key, shape in examples.items():
        assert layout[key] == shape, key
    absent = ["neck.lateral_convs.3.conv.weight", "backbone.multi_stage_mspn.1.upsample.up1.out_skip1.conv.weight",
              "bbox_head.recursive_update_branch.layer_1.next_level_offset.update_weight.weight",
              "bbox_head.recursive_update_branch.layer_0.next_level_offset.update_feat_conv.conv.bias",
              "bbox_head.recursive_update_branch.reduction.conv.bias", "backbone.top.top.0.conv.bias"]
    for key in absent:
        assert key not in layout, key


# ----------------------------------------------------------------------------------------------
# MSPN
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stages", [2, 3])
def test_mspn_parameter_names_are_the_official_backbone_keys(
    stages: int, spare_mspn: MSPN, monkeypatch: pytest.MonkeyPatch
) -> None:
    arch = OfficialArch(mspn_stages=stages, num_joints=15 if stages == 2 else 21, update_layers=stages - 1)
    expected = [(k[len("backbone."):], s) for k, s in official_layout(arch).items() if k.startswith("backbone.")]
    if stages == 2:
        model = spare_mspn
    else:  # only the names matter: skip the slow random init of 88 M weights
        monkeypatch.setattr(torch.nn.init, "kaiming_uniform_", lambda t, *a, **k: t)
        model = MSPN(stages, "frozen_bn")
    ours = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    if stages == 3:  # frozen BN has no batch counter; everything else is identical
        expected = [(k, s) for k, s in expected if not k.endswith("num_batches_tracked")]
    assert ours == expected  # same names, shapes and order


def test_mspn_returns_four_256_channel_maps_at_strides_4_to_32(spare_mspn: MSPN) -> None:
    assert [(f.channels, f.stride) for f in spare_mspn.feature_info] == [(256, 4), (256, 8), (256, 16), (256, 32)]
    torch.manual_seed(0)
    with torch.no_grad():
        maps = spare_mspn.eval()(torch.randn(1, 3, 64, 96))
    assert [tuple(m.shape) for m in maps] == [(1, 256, 16, 24), (1, 256, 8, 12), (1, 256, 4, 6), (1, 256, 2, 3)]
    assert all(bool(torch.isfinite(m).all()) for m in maps)


def test_mspn_loads_mmpose_style_checkpoint_and_refuses_wrong_stage_count(
    official_file: Path, official: dict[str, Tensor], spare_mspn: MSPN
) -> None:
    load_mspn_pretrained(spare_mspn, official_file)
    key = "multi_stage_mspn.1.upsample.up3.in_skip.bn.running_var"
    assert torch.equal(spare_mspn.state_dict()[key], official["backbone." + key].half().float())
    three = {f"backbone.multi_stage_mspn.2.{k}": torch.zeros(1) for k in ("a", "b")}
    three_file = official_file.with_name("three.pth")
    torch.save({"state_dict": {**{k: v for k, v in official.items() if k.startswith("backbone.top.")}, **three}},
               three_file)
    with pytest.raises(ValueError, match="2-stage MSPN"):
        load_mspn_pretrained(spare_mspn, three_file)


def test_mspn_loads_torchvision_resnet50_into_every_down_path(tmp_path: Path, spare_mspn: MSPN) -> None:
    g = torch.Generator().manual_seed(3)
    tv: dict[str, Tensor] = {"fc.weight": torch.zeros(1000, 2048), "fc.bias": torch.zeros(1000)}
    prefix = "backbone.multi_stage_mspn.0.downsample."
    for k, shape in official_layout().items():
        if k.startswith("backbone.top.top.0."):
            name = k[len("backbone.top.top.0."):].replace("conv.", "conv1.", 1).replace("bn.", "bn1.", 1)
        elif k.startswith(prefix):
            name = k[len(prefix):].replace(".downsample.conv.", ".downsample.0.").replace(".downsample.bn.", ".downsample.1.")
        else:
            continue
        tv[name] = torch.tensor(5) if not shape and "num_batches" in k else torch.randn(shape, generator=g)
    path = tmp_path / "resnet50.pth"
    torch.save(tv, path)
    up_before = spare_mspn.state_dict()["multi_stage_mspn.0.upsample.up1.in_skip.conv.weight"].clone()
    report = load_mspn_pretrained(spare_mspn, path)
    sd = spare_mspn.state_dict()
    for s in (0, 1):
        assert torch.equal(sd[f"multi_stage_mspn.{s}.downsample.layer3.5.conv2.weight"], tv["layer3.5.conv2.weight"])
        assert torch.equal(sd[f"multi_stage_mspn.{s}.downsample.layer2.0.downsample.bn.bias"], tv["layer2.0.downsample.1.bias"])
    assert torch.equal(sd["top.top.0.conv.weight"], tv["conv1.weight"])
    assert torch.equal(sd["multi_stage_mspn.0.upsample.up1.in_skip.conv.weight"], up_before)
    assert report["missing"] and all(".upsample." in k for k in report["missing"])


def test_mspn_freeze_keeps_stem_and_first_groups_fixed_in_training(spare_mspn: MSPN) -> None:
    spare_mspn.freeze(1)
    spare_mspn.train()
    for s in (0, 1):
        group1 = spare_mspn.multi_stage_mspn[s].downsample.layer1
        assert not any(p.requires_grad for p in group1.parameters()) and not group1.training
        assert all(p.requires_grad for p in spare_mspn.multi_stage_mspn[s].downsample.layer2.parameters())
    assert not spare_mspn.top.training and not any(p.requires_grad for p in spare_mspn.top.parameters())
    spare_mspn.freeze(0)
    spare_mspn.eval()


# ----------------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------------


def test_config_file_equals_the_converters_config() -> None:
    cfg = load_config(REPO / "config/model/das_official_panoptic.yaml")
    assert cfg == official_model_config()
    assert cfg.compat == "official" and cfg.strides == (8, 16, 32, 64)


def test_depth_units_mean_the_same_as_the_official_cm_units() -> None:
    cfg = official_model_config()
    z_m, dz_m, f = 3.2, -0.35, 1396.0
    official_target, official_d = 20.0 * (100.0 * z_m) / f, (100.0 * dz_m) / 50.0  # DAS_SPEC §2.2 (cm)
    assert cfg.depth_factor * z_m / f == pytest.approx(official_target)
    assert dz_m / cfg.z_norm == pytest.approx(official_d)


def test_conversion_keeps_every_model_tensor_and_drops_only_flows_and_root_xy(
    official: dict[str, Tensor], model_and_state: tuple[DAS, dict[str, Tensor]]
) -> None:
    model, state = model_and_state
    assert set(state) == set(model.state_dict())
    result = convert_state_dict(official, target=model_layout(model))
    assert {g: len(v) for g, v in result.dropped.items()} == {"flow": 292, "root_xy": 10}
    assert len(result.flows) == 292 and torch.equal(result.flows["flow2d_update.mask"], _flow_mask(2))
    assert torch.equal(state["head.scales.2.d"], official["bbox_head.scales.2.3.scale"])
    assert torch.equal(state["head.conv_sigma.bias"], official["bbox_head.conv_poses.1.bias"])
    assert torch.equal(state["update.layers.0.update_value.weight"],
                       official["bbox_head.recursive_update_branch.layer_0.next_level_offset.update_offset_value.weight"])
    assert int(state["fpn.fpn_convs.3.bn.num_batches_tracked"]) == 1234


# --- reference forward on the official names (DAS_SPEC §4.2, §4.4, §4.5; OFFICIAL_CHECKPOINT.md §4-§6) ---


def _bilinear_zero(x: Tensor, py: Tensor, px: Tensor) -> Tensor:
    """x (C, H, W) read at pixel-index positions py, px (any shape S) → (C, *S); corners outside are 0."""
    c, h, w = x.shape
    y0, x0 = torch.floor(py), torch.floor(px)
    out = x.new_zeros((c, *py.shape))
    for dy, wy in ((0, 1 - (py - y0)), (1, py - y0)):
        for dx, wx in ((0, 1 - (px - x0)), (1, px - x0)):
            yy, xx = y0 + dy, x0 + dx
            inside = ((yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)).to(x.dtype)
            v = x[:, yy.clamp(0, h - 1).long(), xx.clamp(0, w - 1).long()]
            out = out + v * (wy * wx * inside)
    return out


def _dcn(sd: dict[str, Tensor], p: str, x: Tensor) -> Tensor:
    """mmcv ModulatedDeformConv2dPack, 3×3, stride 1, pad 1, on (1, C, H, W)."""
    om = F.conv2d(x, sd[p + ".conv_offset.weight"], sd[p + ".conv_offset.bias"], padding=1)[0]
    offset, mask = om[:18], torch.sigmoid(om[18:])
    _, c, h, w = x.shape
    ii, jj = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
    weight = sd[p + ".weight"]
    out = torch.zeros(weight.shape[0], h, w)
    for t in range(9):
        row, col = divmod(t, 3)
        sampled = _bilinear_zero(x[0], ii - 1 + row + offset[2 * t], jj - 1 + col + offset[2 * t + 1]) * mask[t]
        out += torch.einsum("oc,chw->ohw", weight[:, :, row, col], sampled)
    if p + ".bias" in sd:
        out += sd[p + ".bias"].view(-1, 1, 1)
    return out[None]


def _conv_gn(sd: dict[str, Tensor], p: str, x: Tensor, dcn: bool = False) -> Tensor:
    if dcn:
        y = _dcn(sd, p + ".conv", x)
    else:
        wt = sd[p + ".conv.weight"]
        y = F.conv2d(x, wt, sd.get(p + ".conv.bias"), padding=wt.shape[-1] // 2)
    return F.relu(F.group_norm(y, 32, sd[p + ".gn.weight"], sd[p + ".gn.bias"], eps=1e-5))


def _conv_bn(sd: dict[str, Tensor], p: str, x: Tensor, stride: int = 1) -> Tensor:
    wt = sd[p + ".conv.weight"]
    y = F.conv2d(x, wt, None, stride=stride, padding=wt.shape[-1] // 2)
    return F.batch_norm(y, sd[p + ".bn.running_mean"], sd[p + ".bn.running_var"], sd[p + ".bn.weight"],
                        sd[p + ".bn.bias"], training=False, eps=1e-5)


def _conv1(sd: dict[str, Tensor], p: str, x: Tensor) -> Tensor:
    return F.conv2d(x, sd[p + ".weight"], sd[p + ".bias"])


def _reference_fpn(sd: dict[str, Tensor], feats: list[Tensor]) -> list[Tensor]:
    lat = [_conv_bn(sd, f"neck.lateral_convs.{i}", feats[i + 1]) for i in range(3)]  # start_level 1
    for i in (2, 1):
        lat[i - 1] = lat[i - 1] + F.interpolate(lat[i], size=lat[i - 1].shape[-2:], mode="nearest")
    outs = [_conv_bn(sd, f"neck.fpn_convs.{i}", lat[i]) for i in range(3)]
    return outs + [_conv_bn(sd, "neck.fpn_convs.3", outs[-1], stride=2)]  # no ReLU before the 1st extra conv


def _reference_update(sd: dict[str, Tensor], pose_feat: Tensor, u0: Tensor) -> Tensor:
    r = "bbox_head.recursive_update_branch"
    g = F.relu(F.group_norm(F.conv2d(pose_feat, sd[r + ".reduction.conv.weight"]), 32,
                            sd[r + ".reduction.gn.weight"], sd[r + ".reduction.gn.bias"]))
    p = r + ".layer_0.next_level_offset"
    g = g + _conv_gn(sd, p + ".update_feat_conv", g, dcn=True)
    delta = _conv1(sd, p + ".sampling_offset", g)[0]  # (K·4·2, H, W), ch 8k + 2m + c
    conf = _conv1(sd, p + ".sampling_conf", g)[0]  # (3K, H, W)
    w = torch.sigmoid(_conv1(sd, p + ".update_weight", g))[0]
    blended = (1 - w) * u0[0] + w * _conv1(sd, p + ".update_offset_value", g)[0]
    _, h, wd = blended.shape
    gy, gx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(wd) + 0.5, indexing="ij")  # grid units

    def read(m: Tensor, x: Tensor, y: Tensor) -> Tensor:  # grid units → pixel index = grid − 0.5
        return _bilinear_zero(m, y - 0.5, x - 0.5)

    new = torch.zeros_like(blended)
    for k in range(K):
        uk = blended[3 * k : 3 * k + 3]
        ax, ay = uk[0], uk[1]
        rs = []
        for m in range(4):
            dk = delta[8 * k + 2 * m : 8 * k + 2 * m + 2]
            at_target = read(dk, gx + ax, gy + ay)
            rs.append((ax + at_target[0], ay + at_target[1]))
        rs += [(delta[8 * k + 2 * m], delta[8 * k + 2 * m + 1]) for m in range(4)]
        cands, logits = [], []
        for rx, ry in rs:
            v = read(uk, gx + rx, gy + ry)
            cands.append(torch.stack([v[0] + rx, v[1] + ry, v[2]]))
            logits.append(read(conf[3 * k : 3 * k + 3], gx + rx, gy + ry))
        weights = torch.softmax(torch.stack(logits), dim=0)
        new[3 * k : 3 * k + 3] = (weights * torch.stack(cands)).sum(0)
    new[3 * ROOT + 2] = 0.0
    return new[None]


def _reference_head(sd: dict[str, Tensor], x: Tensor, level: int) -> dict[str, Tensor]:
    h = "bbox_head"
    towers = {}
    for t in ("pose_convs", "cls_convs", "reg_convs"):
        towers[t] = _conv_gn(sd, f"{h}.{t}.1", _conv_gn(sd, f"{h}.{t}.0", x), dcn=True)
    scale = [sd[f"{h}.scales.{level}.{j}.scale"] for j in range(4)]
    cls = _conv1(sd, f"{h}.conv_cls", _conv_gn(sd, f"{h}.conv_cls_prev.0", towers["cls_convs"]))
    ctr = _conv1(sd, f"{h}.conv_centerness", _conv_gn(sd, f"{h}.conv_centerness_prev.0", towers["reg_convs"]))
    depth = _conv1(sd, f"{h}.conv_regs.1", _conv_gn(sd, f"{h}.conv_reg_prevs.1.0", towers["reg_convs"])) * scale[1]
    raw = _conv1(sd, f"{h}.conv_poses.0", _conv_gn(sd, f"{h}.conv_pose_prevs.0.0", towers["pose_convs"]))
    u0 = raw.clone()
    u0[:, 0::3] *= scale[2]
    u0[:, 1::3] *= scale[2]
    u0[:, 2::3] *= scale[3]
    u0[:, 3 * ROOT + 2] = 0.0
    logits = _conv1(sd, f"{h}.conv_poses.1", _conv_gn(sd, f"{h}.conv_pose_prevs.1.0", towers["pose_convs"]))
    logits[:, 3 * ROOT + 2] = 1.0
    return {"cls": cls, "ctr": ctr, "depth": depth, "sigma": torch.sigmoid(logits) + 1e-9,
            "offsets": _reference_update(sd, towers["pose_convs"], u0)}


def test_converted_model_reproduces_the_official_fpn_head_and_update(
    official: dict[str, Tensor], model_and_state: tuple[DAS, dict[str, Tensor]]
) -> None:
    model, _ = model_and_state
    torch.manual_seed(1)
    image = torch.randn(1, 3, 64, 64)
    captured: list[list[Tensor]] = []
    hook = model.backbone.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.no_grad():
            ours = model(image)
    finally:
        hook.remove()
    with torch.no_grad():
        ref_levels = _reference_fpn(official, captured[0])
    assert ours.strides == (8, 16, 32, 64)
    assert [tuple(x.shape[-2:]) for x in ref_levels] == [(8, 8), (4, 4), (2, 2), (1, 1)]
    for level, x in enumerate(ref_levels):
        with torch.no_grad():
            ref = _reference_head(official, x, level)
        pairs = [(ours.cls_logits, "cls"), (ours.centerness_logits, "ctr"), (ours.root_depth, "depth"),
                 (ours.sigma, "sigma"), (ours.offsets, "offsets")]
        for maps, name in pairs:
            got, want = maps[level], ref[name]
            tol = 1e-4 * max(1.0, float(want.abs().max()))
            assert torch.allclose(got, want, atol=tol, rtol=1e-4), (name, level, float((got - want).abs().max()))
        if level == 0:  # the update really moved the offsets, so the comparison above tests it
            with torch.no_grad():
                assert float((ours.offsets[0] - model.head.forward_level(x, 0).offsets).abs().max()) > 1e-2


def test_cli_converts_a_file_into_a_checkpoint_that_loads_strictly(
    official_file: Path, tmp_path: Path, model_and_state: tuple[DAS, dict[str, Tensor]]
) -> None:
    from safetensors.torch import load_file

    from das_core.cli import main
    from das_core.training.losses.criterion import DASLoss

    flows = tmp_path / "flows.safetensors"
    assert main(["convert-official", str(official_file), str(tmp_path / "das_official"), "--flows", str(flows)]) == 0
    ckpt = load_checkpoint(tmp_path / "das_official")
    assert ckpt.config == official_model_config()
    assert ckpt.record["source"]["epoch"] == 22 and len(ckpt.record["source"]["sha256"]) == 64
    assert ckpt.record["dropped"] == {"flow": 292, "root_xy": 10}
    assert ckpt.record["parameters"] == 65_566_100  # 66,157,210 (no flows) − 591,110 (root-xy branch)
    model, _ = model_and_state  # same config; compare layouts instead of overwriting its weights
    assert {k: tuple(v.shape) for k, v in ckpt.state_dict.items()} == {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert all(v.dtype in (torch.float32, torch.int64) for v in ckpt.state_dict.values())  # fp16 file → fp32
    DASLoss.from_config(ckpt.config).load_state_dict(load_file(str(flows)), strict=True)


# --- refusing what is not the released checkpoint ---


class _Hostile:
    """Unpickling this would create a file: weights_only loading must refuse it without running it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (str(self.marker), "w"))


def test_refuses_a_pickle_with_code_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    with path.open("wb") as f:
        pickle.dump({"state_dict": {"x": _Hostile(marker)}}, f, protocol=2)
    with pytest.raises(OfficialCheckpointError, match="refused to unpickle"):
        convert_official(path, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is a text file, not a checkpoint\n", "not a PyTorch checkpoint"),
        ([torch.zeros(3)], "holds a list"),
        ({"state_dict": {"conv1.weight": torch.zeros(64, 3, 7, 7)}}, "not a DAS checkpoint"),
        ({"state_dict": {"backbone.x": torch.zeros(1), "epoch": 3}}, "non-tensor entries"),
    ],
)
def test_refuses_files_that_are_not_checkpoints(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "file.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(OfficialCheckpointError, match=message):
        convert_official(path, tmp_path / "out")


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"model = dict(type='DAS', backbone=dict(type='MSPN'))\n", "a text file (starts \"model = dict"),
        (b"cat\n", "a text file (starts 'cat')"),  # 'c' is pickle's GLOBAL opcode: was "objects other than tensors"
        (b"", "an empty file"),
        (bytes(range(200, 256)), "binary data starting with c8 c9"),
    ],
)
def test_a_file_that_is_no_torch_container_is_named_for_what_it_is(tmp_path: Path, content: bytes,
                                                                    what: str) -> None:
    path = tmp_path / "epoch_22.pth"
    path.write_bytes(content)
    with pytest.raises(OfficialCheckpointError, match="neither a zip archive nor a pickle") as info:
        convert_official(path, tmp_path / "out")
    assert what in str(info.value) and "other than tensors" not in str(info.value)


def test_legacy_pickle_checkpoints_are_still_read(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pth"
    torch.save({"state_dict": {"a": torch.ones(2)}}, path, _use_new_zipfile_serialization=False)
    assert torch.equal(read_state_dict(path)["a"], torch.ones(2))


def test_refuses_a_different_layout_and_names_the_keys(official: dict[str, Tensor]) -> None:
    four_laterals = dict(official)
    four_laterals["neck.lateral_convs.3.conv.weight"] = torch.zeros(256, 256, 1, 1)
    with pytest.raises(OfficialCheckpointError, match=r"4 FPN laterals.*neck\.lateral_convs\.3\.conv\.weight"):
        convert_state_dict(four_laterals)
    no_update = {k: v for k, v in official.items() if "recursive_update_branch" not in k}
    with pytest.raises(OfficialCheckpointError, match=r"16 keys missing .*reduction\.conv\.weight"):
        convert_state_dict(no_update)
    wrong_k = dict(official)
    wrong_k["bbox_head.conv_poses.0.weight"] = torch.zeros(63, 256, 1, 1)
    with pytest.raises(OfficialCheckpointError, match=r"conv_poses\.0\.weight: \[63, 256, 1, 1\]"):
        convert_state_dict(wrong_k)
    nan = dict(official)
    nan["neck.fpn_convs.0.bn.bias"] = torch.full((256,), float("nan"))
    with pytest.raises(OfficialCheckpointError, match="non-finite"):
        convert_state_dict(nan)


def test_refuses_a_training_config_with_another_neck(tmp_path: Path, official: dict[str, Tensor]) -> None:
    path = tmp_path / "on_input.pth"
    torch.save({"meta": {"config": "neck=dict(type='FPN', start_level=1, add_extra_convs='on_input')"},
                "state_dict": {"neck.x": torch.zeros(1)}}, path)
    with pytest.raises(OfficialCheckpointError, match="add_extra_convs='on_input'"):
        convert_official(path, tmp_path / "out")


# ----------------------------------------------------------------------------------------------
# Decoding in compatibility mode (DAS_SPEC §7): hand-computed cases
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height", "resized"), [(1023, 768, (853, 640)), (1920, 1080, (1138, 640)),
                                                        (2048, 2048, (640, 640)), (3, 1, (1333, 444))])
def test_official_compat_rounds_resize_sizes_half_up_as_mmcv(width: int, height: int,
                                                            resized: tuple[int, int]) -> None:
    """mmcv ``rescale_size``: ``int(x·s + 0.5)``; Python's ``round`` gave 852 for 1023×768 (852.5, a tie)."""
    from das_core.engine.preprocess import preprocess

    cfg = official_model_config().input
    image = np.zeros((height, width, 3), np.uint8)
    batch, record = preprocess(image, cfg)
    assert (record.resized_width, record.resized_height) == resized
    assert batch.shape[-2:] == (math.ceil(resized[1] / 32) * 32, math.ceil(resized[0] / 32) * 32)


def _one_level_dense(scores: list[float], offsets: Tensor, root_depth: float) -> DenseOutputs:
    """A 2×2 level (P = 4) with the given scores; every cell has the same offsets (K, 3)."""
    p = len(scores)
    return DenseOutputs(
        scores=torch.tensor([scores]),
        root_depth=torch.full((1, p), root_depth),
        offsets=offsets.expand(1, p, K, 3).clone(),
        sigma=torch.full((1, p, K, 3), 0.25),
    )


def test_official_decoding_divides_by_the_scale_without_half_pixel_terms() -> None:
    cfg = official_model_config()
    record = ResizeRecord.for_image(1920, 1080, cfg.input.long_side, cfg.input.short_side, cfg.input.size_divisor)
    assert (record.resized_width, record.resized_height, record.padded_width, record.padded_height) == (1138, 640, 1152, 640)
    sx, sy = 1138 / 1920, 640 / 1080
    cam = Intrinsics(fx=1400.0, fy=1390.0, cx=950.0, cy=530.0)
    offsets = torch.zeros(K, 3)
    offsets[:, 0] = torch.linspace(-1.0, 1.0, K)  # u, stride units
    offsets[:, 1] = 1.5  # v
    offsets[:, 2] = 0.4  # d, z_norm units
    offsets[ROOT, 2] = 0.0
    dense = _one_level_dense([0.9, 0.01, 0.01, 0.01], offsets, root_depth=0.004)  # Z/f_eff, m per px
    points, strides = cell_centers([(2, 2)], (16,))
    (out,) = decode(dense, points, strides, [(2, 2)], [record], [cam], cfg)
    persons = out.to_persons()
    assert len(persons) == 1
    # Cell 0 centre (8, 8); joint k at (8 + 16·u_k, 8 + 16·1.5) network px → ÷ (sx, sy).
    u_net = 8.0 + 16.0 * offsets[:, 0]
    v_net = torch.full((K,), 8.0 + 16.0 * 1.5)
    want_2d = torch.stack([u_net / sx, v_net / sy], dim=-1)
    assert torch.allclose(torch.from_numpy(persons.joints_2d[0]), want_2d, atol=1e-3)
    # Z_root = (Z/f_eff) · sqrt(fx·sx·fy·sy); Z_k = Z_root + z_norm·d; X = (u − cx)·Z/fx.
    z_root = 0.004 * math.sqrt(1400.0 * sx * 1390.0 * sy)
    z = z_root + 0.5 * offsets[:, 2]
    want_3d = torch.stack([(want_2d[:, 0] - 950.0) * z / 1400.0, (want_2d[:, 1] - 530.0) * z / 1390.0, z], dim=-1)
    assert torch.allclose(torch.from_numpy(persons.joints_3d[0]), want_3d.float(), atol=1e-4)
    assert persons.joints_3d[0, ROOT, 2] == pytest.approx(z_root, rel=1e-5)
    # Our native convention differs by exactly 0.5·(1/s − 1) px.
    native_cfg = dataclasses.replace(cfg, compat="native")
    native = decode(dense, points, strides, [(2, 2)], [record], [cam], native_cfg)[0].to_persons()
    diff = native.joints_2d[0] - persons.joints_2d[0]
    assert diff[:, 0] == pytest.approx(0.5 * (1 / sx - 1), abs=1e-3)
    assert diff[:, 1] == pytest.approx(0.5 * (1 / sy - 1), abs=1e-3)


def test_official_decoding_thresholds_at_0_07_and_suppresses_duplicates_by_oks() -> None:
    cfg = official_model_config()
    record = ResizeRecord.for_image(640, 640, cfg.input.long_side, cfg.input.short_side, cfg.input.size_divisor)
    cam = Intrinsics(fx=500.0, fy=500.0, cx=320.0, cy=320.0)
    # Cells of a 2×2 stride-64 level: centres (32, 32), (96, 32), (32, 96), (96, 96). Offsets are relative to
    # the cell, so with zero offsets every cell's pose is a point at its own centre — give them extent.
    offsets = torch.zeros(K, 3)
    offsets[:, 0] = torch.linspace(-0.3, 0.3, K)
    offsets[:, 1] = torch.linspace(-0.5, 0.5, K)
    # Scores: 0.9 kept; 0.0700 is not > 0.07; 0.0701 is; 0.5 is.
    dense = _one_level_dense([0.9, 0.0700, 0.0701, 0.5], offsets, root_depth=0.01)
    points, strides = cell_centers([(2, 2)], (64,))
    persons = decode(dense, points, strides, [(2, 2)], [record], [cam], cfg)[0].to_persons()
    assert persons.scores.tolist() == pytest.approx([0.9, 0.5, 0.0701])
    # Move cell 3's pose onto cell 0's: OKS = 1 > 0.9 → the lower-scored duplicate goes.
    dup = dense.offsets.clone()
    dup[0, 3, :, 0] -= 1.0  # one stride left
    dup[0, 3, :, 1] -= 1.0  # one stride up
    persons = decode(dense._replace(offsets=dup), points, strides, [(2, 2)], [record], [cam], cfg)[0].to_persons()
    assert persons.scores.tolist() == pytest.approx([0.9, 0.0701])


def test_dense_score_is_centre_times_centerness() -> None:
    from das_core.model.outputs import HeadOutputs

    logit_c, logit_n = torch.tensor(0.3), torch.tensor(-1.2)
    maps = HeadOutputs(
        cls_logits=[logit_c.view(1, 1, 1, 1)], centerness_logits=[logit_n.view(1, 1, 1, 1)],
        root_depth=[torch.full((1, 1, 1, 1), 6.0)], offsets=[torch.zeros(1, 3 * K, 1, 1)],
        sigma=[torch.ones(1, 3 * K, 1, 1)], offsets_init=None, strides=(8,),
    )
    dense = to_dense(maps, official_model_config().depth_factor)
    assert float(dense.scores) == pytest.approx(float(torch.sigmoid(logit_c) * torch.sigmoid(logit_n)))
    assert float(dense.root_depth) == pytest.approx(6.0 / 2000.0)  # official 20·Z[cm]/f ÷ 20 → Z[cm]/f ÷ 100
