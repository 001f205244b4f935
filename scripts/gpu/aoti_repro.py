"""Why an AOTInductor package disagrees with eager fp32: per-output, per-level max error of each stage that
could introduce it, in ONE process on ONE input.

For each precision, on the same fixed-seed normalised input, it compares with eager fp32 (the reference):

* ``eager_autocast``   — eager PyTorch under autocast (what the ``eager`` / ``compile`` backends run);
* ``eager_converted``  — eager PyTorch with the weights converted to the precision (the form
  ``das_core.engine.export.export_aoti`` exports: everything in fp16/bf16 except explicit ``.float()`` casts,
  GroupNorm included);
* ``exported``         — the ``torch.export`` program of that form, run eagerly (``ep.module()``): torch.export alone;
* ``aoti``             — the AOTInductor package of that form, called with the input in the layout it was
  traced with (``--example-layout``: NCHW by default, as ``export_aoti`` does since issue 14; ``cl`` as before);
  ``aoti_foreign_layout``: the same package fed the other layout (a package checks no strides);
* ``jit_inductor``     — (``--jit``) ``torch.compile`` of the same exported program: Inductor without AOT packaging;
* ``aoti_fp32_head``   — (``--variants fp32_head``) the package of the mixed form: backbone + FPN converted, head +
  update in fp32.

So: ``eager_converted`` ≈ ``aoti`` ≫ ``eager_autocast`` means the exported *form* loses the precision (not
Inductor); ``exported`` ≈ eager but ``aoti`` off means Inductor/AOTI; ``aoti`` fine but ``aoti_foreign_layout``
off means a caller passing the wrong strides gets garbage (AOTInductor does not check input strides).

Usage::

    python scripts/gpu/aoti_repro.py --device cuda --model das_r50_fpn --precisions fp16 --out aoti.json
    python scripts/gpu/aoti_repro.py --device cpu --model tiny --precisions bf16 --out /tmp/aoti_cpu.json
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from das_core.config import ModelConfig, load_config  # noqa: E402
from das_core.engine.export import DenseExportWrapper, example_input, load_model, network_input_shape  # noqa: E402
from das_core.model.dense import level_sizes  # noqa: E402
from das_core.model.outputs import DenseOutputs  # noqa: E402

DTYPES = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}


def build(model_name: str) -> tuple[ModelConfig, nn.Module]:
    if model_name == "tiny":
        # the unit-test DAS of tests/core/test_export.py (DCN + 2-layer update), for a CPU run in minutes
        cfg = load_config(Path(__file__).resolve().parents[2] / "config/model/das_tiny.yaml")
        from das_core.model.das import DAS

        torch.manual_seed(0)
        model = DAS.from_config(cfg).eval()
        with torch.no_grad():  # sampling offsets far from their zero init, as in tests/core/test_export.py
            for name, m in model.named_modules():
                if isinstance(m, nn.Conv2d) and any(k in name for k in ("offset", "sampling", "update_value")):
                    m.weight.normal_(0.0, 0.1)
                    m.bias.normal_(0.0, 1.0)
        return cfg, model
    cfg, model, _ = load_model(model_name, "cpu")
    return cfg, model


def prepared(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """The model as every compiled path runs it: eval, on device, gather sampler, chosen memory format."""
    m = copy.deepcopy(model).to(device).eval()
    if channels_last:
        m = m.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    if getattr(m, "update", None) is not None:
        m.update.sampler = "gather"
    if hasattr(m, "fp32_head"):
        m.fp32_head = False  # reduced precision covers the head too (make_backend does the same)
    return m


class HalfGroupNorm(nn.Module):
    """GroupNorm computed in float32 and cast back: what autocast does for group_norm (DAS_SPEC §4.4)."""

    def __init__(self, gn: nn.GroupNorm) -> None:
        super().__init__()
        self.gn = gn.float()

    def forward(self, x: Tensor) -> Tensor:
        return self.gn(x.float()).to(x.dtype)


def converted(model: nn.Module, dtype: torch.dtype | None, form: str) -> nn.Module:
    """``form``: ``all`` (export_aoti's: every weight in dtype), ``fp32_head`` (backbone + FPN only) or
    ``fp32_norm`` (all but GroupNorm, which runs in fp32 as under autocast)."""
    m = copy.deepcopy(model)
    if dtype is None:
        return m
    if form == "fp32_head":
        m.backbone.to(dtype)
        m.fpn.to(dtype)
        return m
    m = m.to(dtype)
    if form == "fp32_norm":
        for mod in list(m.modules()):
            for child_name, child in list(mod.named_children()):
                if isinstance(child, nn.GroupNorm):
                    setattr(mod, child_name, HalfGroupNorm(child))
    return m


class FormWrapper(nn.Module):
    """DenseExportWrapper with the head fed in fp32 for the ``fp32_head`` form."""

    def __init__(self, model: nn.Module, depth_factor: float, dtype: torch.dtype | None, form: str) -> None:
        super().__init__()
        self.inner = DenseExportWrapper(model, depth_factor, input_dtype=dtype)
        self.model, self.dtype, self.form, self.depth_factor = model, dtype, form, depth_factor

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        if self.form != "fp32_head" or self.dtype is None:
            return self.inner(images)
        from das_core.model.dense import concat_levels, level_to_dense

        pyramid = self.model.forward_pyramid(images.to(self.dtype))
        levels = []
        for i, x in enumerate(pyramid):
            maps = self.model.forward_level(x.float(), i)[:5]
            levels.append(level_to_dense(*maps, depth_factor=self.depth_factor))
        return tuple(t.float() for t in concat_levels(levels))


def errors(got: tuple[Tensor, ...] | DenseOutputs, ref: DenseOutputs, sizes: list[tuple[int, int]]) -> dict[str, Any]:
    """Max |Δ| per output, and per level for offsets (stride units) and scores."""
    out: dict[str, Any] = {}
    starts = [0]
    for h, w in sizes:
        starts.append(starts[-1] + h * w)
    for name, a, b in zip(DenseOutputs._fields, got, ref, strict=True):
        d = (a.detach().float().cpu() - b.detach().float().cpu()).abs()
        finite = bool(torch.isfinite(a).all())
        out[name] = float(d.max()) if finite else float("inf")
        if name in ("offsets", "scores"):
            out[f"{name}_per_level"] = [float(d[:, s:e].max()) if e > s else 0.0
                                        for s, e in zip(starts[:-1], starts[1:], strict=True)]
        if name == "offsets":
            out["offsets_mean"] = float(d.mean())
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_precision(cfg: ModelConfig, model: nn.Module, precision: str, args: argparse.Namespace,
                  device: torch.device, shape: tuple[int, int, int, int], report: dict[str, Any]) -> None:
    dtype = DTYPES[precision]
    sizes = level_sizes(shape[2], shape[3], cfg.strides)
    mem = torch.channels_last if args.channels_last else torch.contiguous_format  # the weights' layout
    # the input layout the package is traced with (export_aoti: NCHW) and the other one
    ex_mem = torch.channels_last if args.example_layout == "cl" else torch.contiguous_format
    other = torch.contiguous_format if args.example_layout == "cl" else torch.channels_last
    x = example_input(shape, device)
    res: dict[str, Any] = report.setdefault(precision, {})

    def save() -> None:
        if args.out:
            args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")

    with torch.no_grad():
        ref = DenseOutputs(*DenseExportWrapper(prepared(model, device, False).float(), cfg.depth_factor)(x))
        base = prepared(model, device, args.channels_last)
        if dtype is not None:
            ac = DenseExportWrapper(base, cfg.depth_factor, autocast=dtype)
            try:
                res["eager_autocast"] = errors(ac(x.contiguous(memory_format=mem)), ref, sizes)
            except RuntimeError as exc:  # e.g. fp16 autocast on an old CPU build
                res["eager_autocast"] = {"error": str(exc)}
        forms = ["all"] + [v for v in args.variants if v in ("fp32_head", "fp32_norm")]
        for form in forms if dtype is not None else ["all"]:
            tag = "" if form == "all" else f"_{form}"
            net = FormWrapper(converted(base, dtype, form), cfg.depth_factor, dtype, form).eval()
            xin = x.contiguous(memory_format=ex_mem)
            res[f"eager_converted{tag}"] = errors(net(xin), ref, sizes)
            print(f"[aoti_repro] {precision}{tag}: eager_converted offsets max {res[f'eager_converted{tag}']['offsets']:.4g}",
                  flush=True)
            save()
            if form != "all" and "aoti" not in args.variants_aoti:
                continue
            t0 = time.perf_counter()
            ep = torch.export.export(net, (xin,))
            res[f"export_s{tag}"] = round(time.perf_counter() - t0, 1)
            res[f"exported{tag}"] = errors(ep.module()(xin), ref, sizes)
            save()
            if args.no_aoti:
                continue
            pkg = args.workdir / (f"{cfg.name}-{precision}{tag}-{'cl' if args.channels_last else 'nchw'}"
                                  f"-in{args.example_layout}.pt2")
            t0 = time.perf_counter()
            torch._inductor.aoti_compile_and_package(ep, package_path=str(pkg),
                                                     inductor_configs={"max_autotune": False, **args.config})
            res[f"aoti_build_s{tag}"] = round(time.perf_counter() - t0, 1)
            fn = torch._inductor.aoti_load_package(str(pkg))
            got = fn(xin)
            sync(device)
            res[f"aoti{tag}"] = errors(got, ref, sizes)
            res[f"aoti_foreign_layout{tag}"] = errors(fn(x.contiguous(memory_format=other)), ref, sizes)
            # the same package twice on the same input: run-to-run determinism of the package itself
            res[f"aoti_rerun{tag}"] = errors(fn(xin), DenseOutputs(*(t.clone() for t in got)), sizes)
            save()
            if args.jit:  # JIT Inductor on the same exported form: Inductor itself vs the AOT packaging
                t0 = time.perf_counter()
                jit = torch.compile(ep.module(), dynamic=False)
                res[f"jit_inductor{tag}"] = errors(jit(xin), ref, sizes)
                res[f"jit_build_s{tag}"] = round(time.perf_counter() - t0, 1)
                print(f"[aoti_repro] {precision}{tag}: jit inductor offsets max "
                      f"{res[f'jit_inductor{tag}']['offsets']:.4g}", flush=True)
            print(f"[aoti_repro] {precision}{tag}: aoti offsets max {res[f'aoti{tag}']['offsets']:.4g}, foreign "
                  f"layout {res[f'aoti_foreign_layout{tag}']['offsets']:.4g} (build {res[f'aoti_build_s{tag}']} s)",
                  flush=True)
            save()


def _config_item(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"--inductor-config {text!r}: expected KEY=VALUE")
    if value in ("True", "False"):
        return key, value == "True"
    try:
        return key, int(value)
    except ValueError:
        return key, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="das_r50_fpn", help="config name / checkpoint, or 'tiny'")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precisions", nargs="+", default=["fp16"], choices=sorted(DTYPES))
    parser.add_argument("--frame", default="1280x720", help="host frame WIDTHxHEIGHT (sets the input shape)")
    parser.add_argument("--nchw", dest="channels_last", action="store_false",
                        help="NCHW weights (default: channels_last weights, as the GPU backends use)")
    parser.add_argument("--example-layout", choices=["nchw", "cl"], default="nchw",
                        help="input layout the package is traced (and fed) with: nchw as export_aoti does since "
                             "issue 14, cl as it did before (the H100's refused packages)")
    parser.add_argument("--variants", nargs="*", default=[], choices=["fp32_head", "fp32_norm"],
                        help="also the mixed forms (eager, and their packages with --aoti-variants)")
    parser.add_argument("--aoti-variants", dest="variants_aoti", action="store_const", const=("aoti",), default=(),
                        help="build packages of the --variants forms too (one more build each)")
    parser.add_argument("--jit", action="store_true",
                        help="also torch.compile (JIT Inductor) the exported form: is it Inductor or AOT packaging?")
    parser.add_argument("--inductor-config", dest="config_items", nargs="*", default=[], metavar="KEY=VALUE",
                        help="extra Inductor configs for the package build, to bisect a packaging bug, e.g. "
                             "allow_buffer_reuse=False layout_optimization=False (values: True/False/int/str)")
    parser.add_argument("--no-aoti", action="store_true", help="stop after torch.export (no package builds)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/das-aoti-repro"))
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    args.config = dict(_config_item(item) for item in args.config_items)
    args.workdir.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    cfg, model = build(args.model)
    w, h = (int(v) for v in args.frame.lower().split("x"))
    hw = network_input_shape(cfg, w, h)
    shape = (1, 3, *hw)
    report: dict[str, Any] = {"model": cfg.name, "device": str(device), "torch": torch.__version__,
                              "input": list(shape), "channels_last": args.channels_last,
                              "example_layout": args.example_layout,
                              "inductor_configs": args.config,
                              "units": "max |Δ| vs eager fp32; offsets in strides, scores probabilities"}
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    t0 = time.perf_counter()
    for precision in args.precisions:
        try:
            run_precision(cfg, model, precision, args, device, shape, report)
        except Exception as exc:  # noqa: BLE001 - keep what the other precisions measured
            report.setdefault(precision, {})["error"] = f"{type(exc).__name__}: {exc}"
            print(f"[aoti_repro] {precision}: {type(exc).__name__}: {exc}", flush=True)
    report["wall_s"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
