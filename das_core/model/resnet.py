"""ResNet-18/34/50 feature backbones returning C2..C5 (strides 4, 8, 16, 32).

Parameter names follow torchvision (``conv1``, ``bn1``, ``layer1..4``, blocks
``layerN.i.conv1/bn1/conv2/bn2[/conv3/bn3]/downsample.0/downsample.1``) so ImageNet weights saved by
torchvision or timm load from a local file with :func:`~das_core.model.backbone.load_pretrained_backbone`.
Bottlenecks put the stride on the 3×3 conv (torchvision "v1.5"), matching those weights; the paper's
ablations used a Caffe-style ResNet-50 (DAS_SPEC §4.1b), whose detectron2 weights would need renaming.
"""

from __future__ import annotations

from torch import Tensor, nn

from das_core.model.backbone import Backbone, FeatureInfo, check_feature_info, make_norm

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet"]


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual; ``stride`` on the first."""

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int, norm: str) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 3, stride, 1, bias=False)
        self.bn1 = make_norm(norm, width)
        self.conv2 = nn.Conv2d(width, out_ch, 3, 1, 1, bias=False)
        self.bn2 = make_norm(norm, out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride, norm)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (``stride``) → 1×1 (×4 channels) with a residual."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int, norm: str) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = make_norm(norm, width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = make_norm(norm, width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = make_norm(norm, out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride, norm)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def _shortcut(in_ch: int, out_ch: int, stride: int, norm: str) -> nn.Sequential | None:
    # ``downsample.0`` conv / ``downsample.1`` norm: torchvision's names.
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), make_norm(norm, out_ch))


_ARCHS: dict[int, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(Backbone):
    """ResNet feature extractor: ``forward(x (B,3,H,W)) -> [C2, C3, C4, C5]`` at strides 4, 8, 16, 32.

    Args:
        depth: 18, 34 or 50.
        frozen_stages: 0 = train everything; n ≥ 1 freezes the stem and ``layer1..layer n`` (parameters
            get ``requires_grad=False`` and their BatchNorms stay in eval mode), DAS_SPEC §4.1b.
        norm: ``bn``, ``syncbn`` or ``frozen_bn`` (config ``backbone.norm``).
        num_stages: build ``layer1..layer num_stages`` only (4 = full; 3 drops C5, which holds ~75 % of a
            ResNet-18's weights — used for the small shipped demo model). Returns that many maps.
    """

    def __init__(self, depth: int = 50, frozen_stages: int = 1, norm: str = "bn", num_stages: int = 4) -> None:
        super().__init__()
        if depth not in _ARCHS:
            raise ValueError(f"backbone.name: ResNet depth {depth} not supported; choose from {sorted(_ARCHS)}")
        if not 0 <= frozen_stages <= 4:
            raise ValueError(f"backbone.frozen_stages: ResNet has a stem + 4 stages, got {frozen_stages} (use 0..4)")
        if not 2 <= num_stages <= 4:
            raise ValueError(f"backbone.num_stages: ResNet has 4 stages, got {num_stages} (use 2..4)")
        if frozen_stages > num_stages:
            raise ValueError(f"backbone.frozen_stages ({frozen_stages}) exceeds backbone.num_stages ({num_stages})")
        block, counts = _ARCHS[depth]
        self.depth = depth
        self.num_stages = num_stages
        self.frozen_stages = frozen_stages
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = make_norm(norm, 64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_ch, stride = 64, 4
        self.feature_info = []
        # Stage names stay layer1..layer4 so torchvision / timm weights load (their naming, not ours).
        for i, (width, n) in enumerate(zip((64, 128, 256, 512)[:num_stages], counts[:num_stages], strict=False), start=1):
            s = 1 if i == 1 else 2
            blocks = [block(in_ch, width, s, norm)] + [block(width * block.expansion, width, 1, norm) for _ in range(n - 1)]
            self.add_module(f"layer{i}", nn.Sequential(*blocks))
            in_ch, stride = width * block.expansion, stride * s
            self.feature_info.append(FeatureInfo(in_ch, stride))
        check_feature_info(self.feature_info)
        self._init_weights()
        self._freeze()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages == 0:
            return []
        return [self.conv1, self.bn1] + [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]

    def _freeze(self) -> None:
        for m in self._frozen_modules():
            for p in m.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> ResNet:
        super().train(mode)
        # Frozen stages keep their BN statistics fixed even in training (mmdet semantics).
        for m in self._frozen_modules():
            m.eval()
        return self

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, H/4, W/4)
        outs = []
        for i in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{i}")(x)
            outs.append(x)
        return outs


def resnet(name: str, frozen_stages: int = 1, norm: str = "bn", num_stages: int = 4) -> ResNet:
    """``resnet18`` / ``resnet34`` / ``resnet50`` by config name (``backbone.name``)."""
    if not name.startswith("resnet") or not name[6:].isdigit():
        raise ValueError(f"backbone.name: {name!r} is not a ResNet name")
    return ResNet(int(name[6:]), frozen_stages=frozen_stages, norm=norm, num_stages=num_stages)

