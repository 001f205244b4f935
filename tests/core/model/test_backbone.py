"""Backbones: the feature_info invariant, torchvision-name weight loading, frozen stages, norms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from das_core.model.backbone import FrozenBatchNorm2d, PretrainedLoadError, load_pretrained_backbone
from das_core.model.resnet import ResNet, resnet


def _mspn():
    mspn = pytest.importorskip("das_core.model.mspn")
    return mspn.MSPN(num_stages=1, norm="bn")


BACKBONES = {
    "resnet18": lambda: resnet("resnet18", frozen_stages=0),
    "resnet34": lambda: resnet("resnet34", frozen_stages=0),
    "resnet50": lambda: resnet("resnet50", frozen_stages=0),
    "mspn": _mspn,
}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_feature_maps_match_feature_info(name):
    torch.manual_seed(0)
    model = BACKBONES[name]().eval()
    assert [f.stride for f in model.feature_info] == [4, 8, 16, 32]
    x = torch.randn(1, 3, 32, 64)
    with torch.no_grad():
        feats = model(x)
    assert len(feats) == len(model.feature_info)
    for f, info in zip(feats, model.feature_info, strict=True):
        assert f.shape == (1, info.channels, 32 // info.stride, 64 // info.stride)
        assert torch.isfinite(f).all()


def _torchvision_style_state(model: ResNet) -> dict[str, torch.Tensor]:
    """What torchvision's resnet18().state_dict() holds: our names + fc.*, with recognisable values."""
    g = torch.Generator().manual_seed(5)
    state = {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    state["fc.weight"] = torch.randn(1000, 512, generator=g)
    state["fc.bias"] = torch.randn(1000, generator=g)
    return state


def test_torchvision_named_weights_load_from_pth_with_module_prefix(tmp_path):
    src = resnet("resnet18", frozen_stages=0)
    state = _torchvision_style_state(src)
    # Expected torchvision key names, spelled out once so a rename here cannot go unnoticed.
    for key in ["conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                "layer2.0.downsample.1.weight", "layer4.1.bn2.bias"]:
        assert key in state
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}}, path)
    dst = resnet("resnet18", frozen_stages=0)
    report = load_pretrained_backbone(dst, path)
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.ignored) == ["fc.bias", "fc.weight"]
    torch.testing.assert_close(dst.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    torch.testing.assert_close(dst.bn1.running_mean, state["bn1.running_mean"])


def test_safetensors_weights_load_and_missing_keys_are_reported(tmp_path):
    from safetensors.torch import save_file

    src = resnet("resnet50", frozen_stages=0)
    state = {k: v for k, v in _torchvision_style_state(src).items() if not k.startswith("layer4.") and k != "fc.weight"}
    state["fc.weight"] = torch.zeros(1000, 2048)
    state["extra.thing"] = torch.zeros(3)
    path = tmp_path / "r50.safetensors"
    save_file({"backbone." + k: v.contiguous() for k, v in state.items()}, str(path))
    dst = resnet("resnet50", frozen_stages=0, norm="frozen_bn")
    report = load_pretrained_backbone(dst, path)
    assert report.missing and all(k.startswith("layer4.") for k in report.missing)
    assert report.unexpected == ["extra.thing"]
    torch.testing.assert_close(dst.layer1[0].bn3.running_var, state["layer1.0.bn3.running_var"])
    with pytest.raises(PretrainedLoadError, match="missing"):
        load_pretrained_backbone(dst, path, strict=True)


def test_wrong_weights_file_is_a_clear_error(tmp_path):
    model = resnet("resnet18", frozen_stages=0)
    with pytest.raises(PretrainedLoadError, match="not found"):
        load_pretrained_backbone(model, tmp_path / "nope.pth")
    path = tmp_path / "other.pth"
    torch.save({"encoder.blocks.0.weight": torch.zeros(3)}, path)
    with pytest.raises(PretrainedLoadError, match="no tensor matches"):
        load_pretrained_backbone(model, path)
    r50 = tmp_path / "r50.pth"
    torch.save(resnet("resnet50", frozen_stages=0).state_dict(), r50)
    with pytest.raises(PretrainedLoadError, match="shape"):
        load_pretrained_backbone(model, r50)


def test_frozen_stages_freeze_stem_and_layer1_and_keep_their_bn_in_eval():
    model = resnet("resnet18", frozen_stages=1).train()
    assert not any(p.requires_grad for p in model.conv1.parameters())
    assert not any(p.requires_grad for p in model.layer1.parameters())
    assert all(p.requires_grad for p in model.layer2.parameters())
    assert not model.bn1.training and not model.layer1[0].bn1.training and model.layer2[0].bn1.training
    assert all(p.requires_grad for p in resnet("resnet18", frozen_stages=0).parameters())
    with pytest.raises(ValueError, match="backbone.frozen_stages"):
        resnet("resnet18", frozen_stages=5)


def test_norm_kinds():
    assert isinstance(resnet("resnet18", norm="frozen_bn").layer2[0].bn1, FrozenBatchNorm2d)
    assert isinstance(resnet("resnet18", norm="syncbn").layer2[0].bn1, nn.SyncBatchNorm)
    fbn = resnet("resnet18", norm="frozen_bn")
    assert not any("bn" in n for n, _ in fbn.named_parameters())  # frozen BN holds buffers only
