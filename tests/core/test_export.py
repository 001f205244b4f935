"""ONNX export of a whole (tiny) DAS, with DCN and the multi-source update on, against PyTorch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from das_core.checkpoint import save_checkpoint
from das_core.config import ModelConfig, config_from_dict, load_config
from das_core.engine.export import (
    ONNX_TOLERANCES,
    OUTPUT_NAMES,
    DenseExportWrapper,
    ExportError,
    compare_dense,
    example_input,
    export_onnx,
    network_input_shape,
)
from das_core.model.das import DAS

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# the unit-test DAS (DCN head + 2-layer update), one definition for the tests and scripts/gpu/aoti_repro.py
TINY = yaml.safe_load((Path(__file__).resolve().parents[2] / "config/model/das_tiny.yaml").read_text())
# Same network without DCN and update: for tests of the commands and plumbing, not of the numerics.
PLAIN = {**TINY, "head": {**TINY["head"], "use_dcn": False}, "update": {"mode": "none"}}


def tiny_das(seed: int = 0) -> tuple[ModelConfig, DAS]:
    """Tiny DAS whose DCN sampling offsets, update displacements and fresh offsets are far from their zero
    init (joint offsets of a few cells), so the exported GridSample really samples between cells.

    (Randomising *every* conv with a large std makes the stacked DCN + 2-layer update chaotic: float
    rounding differences then grow to O(1) in any two implementations, PyTorch vs PyTorch included.)
    """
    cfg = config_from_dict(ModelConfig, TINY)
    torch.manual_seed(seed)
    model = DAS.from_config(cfg).eval()
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d) and any(k in name for k in ("offset", "sampling", "update_value")):
                m.weight.normal_(0.0, 0.1)
                m.bias.normal_(0.0, 1.0)
    return cfg, model


def test_tiny_das_with_dcn_and_update_exports_and_matches_pytorch_in_onnxruntime(tmp_path) -> None:
    cfg, model = tiny_das()
    # verify=False: the check below is done by hand, on a batch of 2 through the symbolic batch axis
    path = export_onnx(model, cfg, tmp_path / "tiny.onnx", (1, 3, 64, 96), dynamic_batch=True, verify=False)
    proto = onnx.load(str(path))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert "GridSample" in {n.op_type for n in proto.graph.node}
    assert [o.name for o in proto.graph.output] == list(OUTPUT_NAMES)

    # A fresh batch of 2 through the symbolic batch axis, compared output by output.
    x = example_input((2, 3, 64, 96), seed=3)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(list(OUTPUT_NAMES), {"images": x.numpy()})
    with torch.no_grad():
        want = DenseExportWrapper(model, cfg.depth_factor)(x)
    assert want[2].abs().max() > 1.0  # joint offsets of more than a cell: sampling between cells
    cmp = compare_dense(got, want, ONNX_TOLERANCES)
    assert cmp.ok, cmp.summary()
    assert got[2].shape == (2, 8 * 12 + 4 * 6 + 2 * 3, 15, 3)


def test_compare_dense_flags_an_output_beyond_its_tolerance() -> None:
    ref = tuple(torch.zeros(1, 4) if i < 2 else torch.zeros(1, 4, 15, 3) for i in range(4))
    bad = (ref[0], ref[1], ref[2] + 0.01, ref[3])
    cmp = compare_dense(bad, ref)
    assert not cmp.ok and cmp.worst_ratio["offsets"] > 1.0 and cmp.worst_ratio["scores"] == 0.0


def test_opset_below_17_is_refused(tmp_path) -> None:
    cfg, model = tiny_das()
    with pytest.raises(ExportError, match="opset 16"):
        export_onnx(model, cfg, tmp_path / "x.onnx", (1, 3, 64, 96), opset=16)


def test_network_input_of_a_1280x720_frame_for_r50_is_640x1152() -> None:
    from pathlib import Path

    cfg = load_config(Path(__file__).resolve().parents[2] / "config" / "model" / "das_r50_fpn.yaml")
    assert network_input_shape(cfg, 1280, 720) == (640, 1152)


def test_export_command_writes_an_onnx_file_from_a_checkpoint(tmp_path, capsys) -> None:
    from das_core.cli import main

    cfg = config_from_dict(ModelConfig, PLAIN)
    save_checkpoint(tmp_path / "ckpt", DAS.from_config(cfg).state_dict(), cfg)
    out = tmp_path / "tiny.onnx"
    args = ["export", str(tmp_path / "ckpt"), "--format", "onnx", "--frame-size", "96x64", "-o", str(out), "--no-verify"]
    assert main(args) == 0  # (the numerical check is the test above; this one tests the command)
    assert out.is_file() and str(out) in capsys.readouterr().out


def test_export_command_for_tensorrt_without_tensorrt_says_what_to_install(tmp_path, capsys) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    from das_core.cli import main

    cfg = config_from_dict(ModelConfig, PLAIN)
    save_checkpoint(tmp_path / "ckpt", DAS.from_config(cfg).state_dict(), cfg)
    assert main(["export", str(tmp_path / "ckpt"), "--format", "tensorrt", "--precision", "fp16"]) == 1
    assert "pip install tensorrt" in capsys.readouterr().err
