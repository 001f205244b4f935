"""Average the weights of checkpoints of one model (a "model soup", Wortsman et al. 2022).

Example:
  python training/average_checkpoints.py das_core/assets/das_demo runs/stage4/final_fp16 runs/soup

Fine-tunings that start from the same weights stay in one basin of the loss, so the average of their weights is a
model too, and often better than each on data that neither was tuned for: here, a fine-tuning that gained on the
synthetic test split but lost on real images, averaged with the checkpoint it started from. Every floating-point
tensor (BatchNorm's running statistics included) is the weighted mean, computed in fp32 and stored in the first
checkpoint's dtype; integer tensors (``num_batches_tracked``) come from the first checkpoint. The model section of
the YAML (decode thresholds and calibration included) is the first checkpoint's: refit them on validation data
afterwards (``bash training/calibrate_checkpoint.sh DST DATA JSON_DIR``: ``sweep_threshold.py``,
``confidence_calibration.py``, ``calibrate_uncertainty.py``, then the synthetic figures).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from das_core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402


def average_state_dicts(ckpts: list[Checkpoint], weights: list[float]) -> dict[str, torch.Tensor]:
    """The weighted mean of every floating-point tensor; a model mismatch is an error that names the tensor."""
    first = ckpts[0].state_dict
    for i, ck in enumerate(ckpts[1:], start=1):
        if ck.config.name != ckpts[0].config.name:
            raise ValueError(f"checkpoint {i} is a {ck.config.name}, checkpoint 0 a {ckpts[0].config.name}")
        if set(ck.state_dict) != set(first):
            diff = sorted(set(ck.state_dict) ^ set(first))
            raise ValueError(f"checkpoint {i} has other tensors than checkpoint 0: {diff[:4]}")
        shapes = [k for k in first if tuple(ck.state_dict[k].shape) != tuple(first[k].shape)]
        if shapes:
            raise ValueError(f"checkpoint {i}: {shapes[0]} has shape {tuple(ck.state_dict[shapes[0]].shape)}, "
                             f"checkpoint 0 {tuple(first[shapes[0]].shape)}")
    total = sum(weights)
    out = {}
    for key, ref in first.items():
        if not ref.is_floating_point():
            out[key] = ref.clone()
            continue
        acc = sum(w / total * ck.state_dict[key].float() for w, ck in zip(weights, ckpts, strict=True))
        out[key] = acc.to(ref.dtype)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="checkpoints to average (NAME, NAME.safetensors or NAME.yaml)")
    parser.add_argument("dst", help="checkpoint to write")
    parser.add_argument("--weights", nargs="+", type=float, default=None,
                        help="one non-negative weight per input (default: equal)")
    args = parser.parse_args(argv)
    if len(args.inputs) < 2:
        parser.error("give at least two checkpoints to average and the output")
    weights = args.weights or [1.0] * len(args.inputs)
    if len(weights) != len(args.inputs) or min(weights) < 0 or sum(weights) <= 0:
        parser.error(f"--weights: {len(args.inputs)} non-negative numbers with a positive sum, got {weights}")
    ckpts = [load_checkpoint(p) for p in args.inputs]
    state = average_state_dicts(ckpts, weights)
    record = dict(ckpts[0].record, averaged_from=[{"checkpoint": str(p), "weight": w}
                                                  for p, w in zip(args.inputs, weights, strict=True)])
    paths = save_checkpoint(args.dst, state, ckpts[0].config, record)
    print(" ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
