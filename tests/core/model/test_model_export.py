"""The DCN head + multi-source update export to ONNX (opset 17) and match in onnxruntime."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import Tensor, nn

from das_core.model.head import DASHead
from das_core.model.update import RecursiveUpdate

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


class _HeadAndUpdate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = DASHead(in_channels=8, num_joints=3, root_index=1, num_levels=1, feat_channels=8,
                            stacked_convs=1, use_dcn=True, num_groups=4, centerness_channels=4)
        self.update = RecursiveUpdate(in_channels=8, num_joints=3, root_index=1, num_layers=1, num_points=2,
                                      mode="multi", use_dcn=True, num_groups=4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.head.forward_level(x, 0)
        return out.cls_logits, self.update(out.pose_feat, out.offsets), out.sigma


def test_dcn_head_exports_to_onnx_and_matches_onnxruntime(tmp_path):
    torch.manual_seed(0)
    model = _HeadAndUpdate().eval()
    # Non-trivial DCN offsets and update displacements so the exported sampling is really exercised.
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.3)
    x = torch.randn(1, 8, 6, 7)
    path = tmp_path / "head.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False,
                          input_names=["x"], output_names=["cls", "offsets", "sigma"])
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x.numpy()})
    with torch.no_grad():
        want = model(x)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(torch.from_numpy(g), w, atol=1e-4, rtol=1e-4)
