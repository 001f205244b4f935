#!/usr/bin/env python3
"""Export a trained checkpoint for deployment: verified ONNX, and optionally an AOTInductor package and a
TensorRT engine, next to each other with a ``manifest.json`` that says what each file expects.

The network input size follows from the camera frame size and the model's test scale (``--frame-size``).
The ONNX file is checked against PyTorch in onnxruntime (``das_core.engine.export.ONNX_TOLERANCES``) before
anything else is built from it.

Examples:
  python training/export.py runs/r50/best --out deploy/r50 --frame-size 1280x720
  python training/export.py runs/r50/best --out deploy/r50 --aoti --precision fp16          # on the robot's GPU
  python training/export.py runs/r50/best --out deploy/r50 --tensorrt --precision int8 --calib-images frames/
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch

from das_core.config import dump_config
from das_core.engine.export import (
    DEFAULT_OPSET,
    ONNX_TOLERANCES,
    OUTPUT_NAMES,
    export_aoti,
    export_onnx,
    load_model,
    network_input_shape,
    parse_size,
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="NAME (NAME.safetensors + NAME.yaml), or a model YAML for a random-weight dry run")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--frame-size", type=parse_size, default=(1280, 720), help="camera WIDTHxHEIGHT")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    p.add_argument("--aoti", action="store_true", help="also build an AOTInductor .pt2 (on --device)")
    p.add_argument("--tensorrt", action="store_true", help="also build a TensorRT engine (needs tensorrt)")
    p.add_argument("--precision", choices=("fp32", "fp16", "bf16", "int8"), default="fp16",
                   help="precision of the AOTI package / TensorRT engine (ONNX is always fp32)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--calib-images", type=Path, help="TensorRT int8 calibration frames")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    cfg, model, has_weights = load_model(args.checkpoint, "cpu")
    h, w = network_input_shape(cfg, *args.frame_size)
    shape = (args.batch, 3, h, w)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{cfg.name}-{h}x{w}-b{args.batch}"
    manifest: dict = {
        "source": str(args.checkpoint),
        "random_weights": not has_weights,
        "frame_size": list(args.frame_size),
        "input": {"name": "images", "shape": list(shape), "dtype": "float32",
                  "normalisation": {"mean": list(cfg.input.mean), "std": list(cfg.input.std), "layout": "RGB, NCHW"}},
        "outputs": list(OUTPUT_NAMES),
        "torch": torch.__version__,
        "files": {},
    }
    onnx_path = export_onnx(model, cfg, args.out / f"{stem}.onnx", shape, opset=args.opset, verify=True)
    manifest["files"]["onnx"] = {"path": onnx_path.name, "opset": args.opset, "precision": "fp32",
                                 "verified_tolerances": {k: list(v) for k, v in ONNX_TOLERANCES.items()}}
    if args.aoti:
        if args.precision == "int8":
            raise SystemExit("AOTInductor: int8 is not supported; use --precision fp16/bf16/fp32")
        pt2 = export_aoti(model, cfg, args.out / f"{stem}-{args.precision}-{torch.device(args.device).type}.pt2",
                          shape, device=args.device, precision=args.precision)
        manifest["files"]["aoti"] = {"path": pt2.name, "precision": args.precision, "device": args.device}
    if args.tensorrt:
        from das_core.engine.export import build_engine

        trt_precision = "fp16" if args.precision == "bf16" else args.precision
        batches = None
        if trt_precision == "int8":
            from das_core.engine.export import calibration_batches

            if args.calib_images is None:
                raise SystemExit("TensorRT int8 needs --calib-images")
            batches = calibration_batches(args.calib_images, cfg, shape, 64)
        engine = build_engine(onnx_path, args.out / f"{stem}-{trt_precision}.engine", precision=trt_precision,
                              calib_batches=batches)
        manifest["files"]["tensorrt"] = {"path": engine.name, "precision": trt_precision}
    (args.out / f"{stem}.yaml").write_text(dump_config(cfg), encoding="utf-8")
    manifest["config"] = f"{stem}.yaml"
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    print(args.out / "manifest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
