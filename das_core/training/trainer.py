"""Train a DAS model from a YAML experiment config.

Examples:
  das train --config config/train/synthetic_r18.yaml
  das train --config config/train/synthetic_r18.yaml --set optim.lr=0.004 --set max_iters=2000
  das train --config config/train/synthetic_r18.yaml --resume          # continue runs/…/last
  torchrun --nproc_per_node 4 training/train.py --config config/train/synthetic_r50.yaml

Reference recipe (DAS_SPEC §8): SGD momentum 0.9, weight decay 1e-4, base LR 0.002 for a total batch of
16 (4 GPUs × 4 images), biases LR ×2 without decay, norm layers without decay, linear warm-up over 250
iterations from 1/3 of the LR, LR ×0.1 at 16/22 and 20/22 of training, global gradient-norm clip 35,
mixed precision. When you change the total batch, scale ``optim.lr`` linearly with it.

Everything a run writes lives in ``output_dir``: ``config.yaml`` (the resolved config), ``last.safetensors``
+ ``last.yaml`` (model checkpoint, das_core.checkpoint format), ``last.train.pt`` (optimiser, scheduler,
iteration, RNG and loss-flow states for ``--resume``), ``final.*`` when the run ends, ``metrics.jsonl``
and TensorBoard event files; with ``ema_decay`` > 0 also ``last_ema.*`` and ``final_ema.*``, the moving average
of the weights (a checkpoint like ``final``, loaded the same way). Only rank 0 writes. Resume is exact: a run
stopped after k iterations and resumed gives the same weights as an uninterrupted run (every sample's augmentation is seeded from
(seed, epoch, index), so it does not depend on the number of data workers either).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from das_core.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from das_core.config import ConfigError, OptimConfig, TrainConfig, dump_config, load_train_config, parse_overrides
from das_core.model.das import DAS
from das_core.pose25d import Pose25D
from das_core.training.batching import RunBatches, SeededDataset
from das_core.training.losses.criterion import DASLoss
from das_core.training.randconv import random_convolution
from das_core.training.targets import Targets, assign_targets

__all__ = [
    "NonFiniteLossError",
    "TrainResult",
    "add_arguments",
    "build_optimizer",
    "fit_max_iters",
    "lr_factor",
    "run",
    "train",
]

logger = logging.getLogger(__name__)

TRAIN_STATE_SUFFIX = ".train.pt"
# Iterations of a budgeted run used to measure its speed. Not earlier: on the H200 the loader workers and cuDNN's
# autotuning still slowed iterations 20-60 to 0.36 s against 0.23 s from iteration 100 on, and a schedule fitted to
# that speed ended after 3.4 of 5 minutes (docs/results/realism/ft5/train_start.log).
_CALIB_FROM, _CALIB_TO = 60, 120
_BUDGET_SAFETY = 0.97  # the fitted schedule aims to end 3 % before max_minutes


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN/Inf; the message shows every loss term at that iteration."""


@dataclass
class TrainResult:
    """What :func:`train` did. ``model`` is the trained (unwrapped) network on its device."""

    iterations: int
    stopped_by: str  # "max_iters" | "max_minutes" | "stop_at"
    output_dir: Path
    model: nn.Module
    criterion: nn.Module
    metrics: dict[str, float] = field(default_factory=dict)
    images_per_s: float = 0.0


# ----------------------------------------------------------------------------------------------
# Distributed setup (torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (NCCL on GPU, gloo on CPU) and pick the device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device is None:
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None:
        # "--device cuda" means this process's GPU; set_device refuses a device without an index.
        dev = torch.device("cuda", local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        # NVLink SHARP (NVLS) multicast is unavailable on the lent machines and hangs NCCL init there.
        os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank), dev


def _all_reduce_max(value: float, info: DistInfo, device: torch.device) -> float:
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


# ----------------------------------------------------------------------------------------------
# Optimiser and schedule (DAS_SPEC §8)
# ----------------------------------------------------------------------------------------------

_NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)


def param_groups(modules: Sequence[nn.Module], cfg: OptimConfig) -> list[dict[str, Any]]:
    """Three groups: weights (LR, decay), non-norm biases (LR × bias_lr_mult, decay × bias_decay_mult),
    norm weights and biases (LR, decay × norm_decay_mult). Frozen parameters are left out."""
    weights: list[Tensor] = []
    biases: list[Tensor] = []
    norms: list[Tensor] = []
    seen: set[int] = set()
    for module in modules:
        for m in module.modules():
            for name, p in m.named_parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                if isinstance(m, _NORM_TYPES) or m.__class__.__name__.endswith(("Norm2d", "Norm")):
                    norms.append(p)
                elif name == "bias":
                    biases.append(p)
                else:
                    weights.append(p)
    wd = cfg.weight_decay
    groups = [
        {"params": weights, "lr": cfg.lr, "weight_decay": wd, "name": "weights"},
        {"params": biases, "lr": cfg.lr * cfg.bias_lr_mult, "weight_decay": wd * cfg.bias_decay_mult, "name": "biases"},
        {"params": norms, "lr": cfg.lr, "weight_decay": wd * cfg.norm_decay_mult, "name": "norms"},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(modules: Sequence[nn.Module], cfg: OptimConfig) -> torch.optim.Optimizer:
    groups = param_groups(modules, cfg)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay)


def lr_factor(iteration: int, max_iters: int, cfg: OptimConfig) -> float:
    """LR multiplier at ``iteration`` (0-based): linear warm-up from ``warmup_ratio``, then step or cosine."""
    if cfg.schedule == "step":
        factor = cfg.step_gamma ** sum(iteration >= round(m * max_iters) for m in cfg.step_milestones)
    else:
        factor = 0.5 * (1.0 + math.cos(math.pi * min(iteration, max_iters) / max_iters))
    if iteration < cfg.warmup_iters:
        # mmcv "linear" warm-up: starts at warmup_ratio, reaches 1 at warmup_iters
        k = (1.0 - iteration / cfg.warmup_iters) * (1.0 - cfg.warmup_ratio)
        factor *= 1.0 - k
    return factor


def fit_max_iters(iteration: int, seconds_per_iter: float, elapsed_s: float, max_minutes: float, max_iters: int) -> int:
    """Schedule length that ends ``_BUDGET_SAFETY`` of the way into ``max_minutes`` at the measured speed.

    Never longer than ``max_iters`` and never shorter than ``iteration + 1``.
    """
    left = max_minutes * 60.0 * _BUDGET_SAFETY - elapsed_s
    fit = iteration + int(max(left, 0.0) / max(seconds_per_iter, 1e-9))
    return max(iteration + 1, min(fit, max_iters))


# ----------------------------------------------------------------------------------------------
# Model + loss as one module (so DDP also all-reduces the RealNVP flows of the RLE loss)
# ----------------------------------------------------------------------------------------------


class TrainStep(nn.Module):
    """images (B, 3, H, W) normalised + B ``Pose25D`` (network-input pixels) → dict of 0-dim losses."""

    def __init__(self, model: nn.Module, criterion: nn.Module, cfg: Any) -> None:
        super().__init__()
        self.model = model
        self.criterion = criterion
        self.cfg = cfg

    def forward(self, images: Tensor, gts: list[Pose25D], targets: Targets | None = None) -> dict[str, Tensor]:
        outputs = self.model(images)
        sizes = [(int(m.shape[-2]), int(m.shape[-1])) for m in outputs.cls_logits]
        if targets is None:
            targets = assign_targets(gts, sizes, outputs.strides, self.cfg, device=images.device)
        elif targets.positive.shape[1] != sum(h * w for h, w in sizes):
            raise RuntimeError("precomputed targets do not match the feature maps (stride/size mismatch)")
        result: dict[str, Tensor] = self.criterion(outputs, targets)
        return result


class TrainCollate:
    """Collate + target assignment in the DataLoader workers.

    Assigning targets on the device in the training loop costs many small launches per image and
    level (measured on an H100: 57 ms of a 176 ms step at batch 32); in the workers it overlaps with
    the GPU. Level sizes follow from the padded batch size: ⌈H / S⌉ × ⌈W / S⌉, which ``DAS`` checks at
    its first forward.
    """

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def __call__(self, samples: list[Any]) -> Any:
        from das_core.data.dataset import collate

        batch = collate(samples, size_divisor=self.cfg.input.size_divisor)
        h, w = batch["images"].shape[-2:]
        sizes = [(-(-h // s), -(-w // s)) for s in self.cfg.strides]
        batch["targets"] = assign_targets(list(batch["gts"]), sizes, tuple(self.cfg.strides), self.cfg, device="cpu")
        return batch


# ----------------------------------------------------------------------------------------------
# Data: per-sample seeding makes augmentation a function of (seed, epoch, index) → exact resume
# ----------------------------------------------------------------------------------------------


def _build_dataset(cfg: TrainConfig, files: Sequence[str], train: bool) -> Any:
    from das_core.data.dataset import DASDataset

    if not files:
        raise ConfigError("data.train: no annotation files given")
    return DASDataset(list(files), cfg.model, cfg.augment if train else None, train, seed=cfg.seed)


def _aspect_groups(dataset: Any) -> list[int]:
    """0 = landscape (w ≥ h), 1 = portrait, per image of the dataset."""
    return [int(g) for g in dataset.group_flags]


def _loader(dataset: Any, batches: RunBatches, cfg: TrainConfig, pin: bool) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    return torch.utils.data.DataLoader(
        SeededDataset(dataset),
        batch_sampler=batches,
        collate_fn=TrainCollate(cfg.model),
        num_workers=cfg.data.num_workers,
        pin_memory=pin,
        # A private generator: creating the loader must not consume the global torch RNG (exact resume).
        generator=torch.Generator().manual_seed(cfg.seed),
        # Dense targets are ~1 MB per image: keep the queue short so shared memory stays bounded.
        prefetch_factor=2 if cfg.data.num_workers > 0 else None,
    )


def _unpack(batch: Any, cfg: Any, dev: torch.device) -> tuple[Tensor, list[Pose25D], Targets | None]:
    """A collated batch → (images (B, 3, H, W) normalised on ``dev``, list of B Pose25D, targets or None)."""
    from das_core.data.dataset import normalise_batch

    images = normalise_batch(batch["images"].to(dev, non_blocking=True), batch["image_sizes"], cfg.input)
    return images, list(batch["gts"]), batch.get("targets")


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------


def _rng_state(device: torch.device) -> dict[str, Any]:
    # Plain types and tensors only, so that torch.load(weights_only=True) can read them back.
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)  # type: ignore[misc]
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [str(name), torch.from_numpy(np.asarray(keys, np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": [py_version, list(py_state), py_gauss],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_training_checkpoint(out: Path, name: str, model: nn.Module, cfg: TrainConfig, record: dict[str, Any],
                             train_state: dict[str, Any] | None) -> Path:
    """``out/NAME.safetensors`` + ``.yaml`` (model) and, if given, ``out/NAME.train.pt`` (training state)."""
    st_path, _ = save_checkpoint(out / name, model.state_dict(), cfg.model, record)
    if train_state is not None:
        tmp = out / f".{name}{TRAIN_STATE_SUFFIX}.tmp"
        torch.save(train_state, tmp)
        os.replace(tmp, out / f"{name}{TRAIN_STATE_SUFFIX}")
    return st_path


def load_train_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training state to resume from (run without --resume first)")
    try:
        state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(f"{path}: unreadable training state: {exc}") from None
    return state


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------


def _amp_context(amp: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    if device.type != "cuda" or amp == "none":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def _validate(model: nn.Module, cfg: TrainConfig, device: torch.device) -> dict[str, float]:
    from das_core.evaluation.run import evaluate_model

    metrics: dict[str, float] = {}
    for path in cfg.data.val:
        result = evaluate_model(model, cfg.model, path, protocol="synthetic", device=device)
        metrics.update({f"val/{k}": v for k, v in result.items()})
    return metrics


@dataclass
class _Run:
    """The state one training run advances and checkpoints (model, optimiser, schedule, position)."""

    cfg: TrainConfig
    info: DistInfo
    dev: torch.device
    out: Path
    model: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    # The schedule's length lives in a mutable horizon so that a wall-clock budget can shorten it.
    horizon: dict[str, int]
    # ``ema_decay`` > 0: the moving average of model's weights and buffers (``ema.module`` is a DAS)
    ema: AveragedModel | None = None
    iteration: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    elapsed_before: float = 0.0

    @property
    def max_iters(self) -> int:
        return self.horizon["max_iters"]

    def advance(self, batches_per_epoch: int) -> None:
        self.iteration += 1
        self.batch_in_epoch += 1
        if self.batch_in_epoch >= batches_per_epoch:
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0

    def state(self, elapsed: float) -> dict[str, Any]:
        """Everything but the model weights that an exact resume needs (``last.train.pt``)."""
        return {
            "iteration": self.iteration,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            **({"budget_max_iters": self.max_iters} if self.max_iters != self.cfg.max_iters else {}),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "criterion": self.criterion.state_dict(),
            **({"ema_n_averaged": int(self.ema.n_averaged)} if self.ema is not None else {}),
            "rng": _gather_rng(self.dev, self.info),
            "elapsed_s": self.elapsed_before + elapsed,
        }


def _load_init_weights(model: nn.Module, path: str) -> None:
    """``init_weights``: every tensor of ``model`` from the checkpoint, cast to the model's dtype (an fp16
    shipped checkpoint starts an fp32 run); a missing, extra or differently shaped tensor is an error."""
    ckpt = load_checkpoint(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(ckpt.state_dict))
    unexpected = sorted(set(ckpt.state_dict) - set(own))
    shapes = [k for k in own if k in ckpt.state_dict and tuple(own[k].shape) != tuple(ckpt.state_dict[k].shape)]
    if missing or unexpected or shapes:
        raise ConfigError(f"init_weights: {path} does not fit this run's model: missing {missing[:4]}, "
                          f"unexpected {unexpected[:4]}, other shape {shapes[:4]}")
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in ckpt.state_dict.items()})
    logger.info("init_weights: %d tensors from %s", len(own), path)


def _build_run(cfg: TrainConfig, info: DistInfo, dev: torch.device, out: Path) -> _Run:
    """Model, loss, optimiser, schedule. Same seed on every rank → same initial weights."""
    torch.manual_seed(cfg.seed)
    model = DAS.from_config(cfg.model)
    if cfg.init_weights:
        _load_init_weights(model, cfg.init_weights)
    criterion = DASLoss.from_config(cfg.model)
    if cfg.sync_bn and info.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(dev)
    criterion.to(dev)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimizer = build_optimizer([model, criterion], cfg.optim)
    horizon = {"max_iters": cfg.max_iters}
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(it, horizon["max_iters"], cfg.optim))
    scaler = torch.amp.GradScaler("cuda", init_scale=512.0, enabled=cfg.amp == "fp16" and dev.type == "cuda")
    ema = None
    if cfg.ema_decay > 0:
        # use_buffers: the BatchNorm statistics are averaged with the weights they belong to
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
    return _Run(cfg, info, dev, out, model, criterion, optimizer, scheduler, scaler, horizon, ema)


def _resume(run: _Run) -> None:
    """Model weights from last.safetensors, everything else from last.train.pt."""
    ckpt = load_checkpoint(run.out / "last", device=run.dev)
    run.model.load_state_dict(ckpt.state_dict)
    state = load_train_state(run.out / f"last{TRAIN_STATE_SUFFIX}")
    run.criterion.load_state_dict(state["criterion"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    run.iteration, run.epoch = int(state["iteration"]), int(state["epoch"])
    run.batch_in_epoch = int(state["batch_in_epoch"])
    if run.ema is not None:
        if "ema_n_averaged" not in state:
            raise ConfigError(f"ema_decay: {run.out / 'last'} was trained without a weight average; "
                              "resume it with ema_decay: 0 or start a new run")
        run.ema.module.load_state_dict(load_checkpoint(run.out / "last_ema", device=run.dev).state_dict)
        run.ema.n_averaged.fill_(int(state["ema_n_averaged"]))
    if "budget_max_iters" in state:  # a budgeted run keeps its shortened schedule
        run.horizon["max_iters"] = min(run.cfg.max_iters, int(state["budget_max_iters"]))
    run.elapsed_before = float(state.get("elapsed_s", 0.0))
    _set_rng_state(state["rng"][min(run.info.rank, len(state["rng"]) - 1)], run.dev)
    logger.info("resumed from %s at iteration %d of %d", run.out / "last", run.iteration, run.max_iters)


def _seed_step_rngs(cfg: TrainConfig, info: DistInfo) -> None:
    """Per-rank RNG for anything random in the step itself (data RNG is per sample, see SeededDataset)."""
    torch.manual_seed(cfg.seed + 1 + info.rank)
    np.random.seed(cfg.seed + 1 + info.rank)
    random.seed(cfg.seed + 1 + info.rank)


def _step_module(run: _Run) -> nn.Module:
    step_module: nn.Module = TrainStep(run.model, run.criterion, run.cfg.model)
    if run.info.distributed:
        # find_unused_parameters: the ablations switch off parts of the head / loss (DAS_SPEC §8).
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[run.dev.index] if run.dev.type == "cuda" else None, find_unused_parameters=True
        )
    return step_module


def _optimisation_step(run: _Run, step_module: nn.Module, batch: Any) -> tuple[dict[str, float], int]:
    """Forward, backward, clip, step on one batch; returns the logged numbers and the batch size."""
    cfg, dev = run.cfg, run.dev
    images, gts, targets = _unpack(batch, cfg.model, dev)
    images = random_convolution(images, batch["image_sizes"], cfg.augment.randconv_prob,
                                cfg.augment.randconv_kernel_sizes)
    if targets is not None:
        targets = targets.to(dev)
    if cfg.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    with _amp_context(cfg.amp, dev):
        losses = step_module(images, gts, targets)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(losses["loss"]).backward()
    logged = {k: v.detach().float() for k, v in losses.items()}
    if cfg.optim.grad_clip > 0:
        run.scaler.unscale_(run.optimizer)
        params = [p for g in run.optimizer.param_groups for p in g["params"]]
        logged["grad_norm"] = nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip).float()
    # One host sync per iteration for all the logged numbers; nothing has been stepped yet.
    values = dict(zip(logged, torch.stack(list(logged.values())).tolist(), strict=True))
    if not math.isfinite(values["loss"]):
        raise NonFiniteLossError(
            f"non-finite loss at iteration {run.iteration}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items())
        )
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    if run.ema is not None:
        run.ema.update_parameters(run.model)
    return values, int(images.shape[0])


class _BudgetFit:
    """Fits the LR schedule into ``max_minutes``: measures the speed over iterations _CALIB_FROM.._CALIB_TO of this process,
    then shortens max_iters (rank 0 decides, everyone follows)."""

    def __init__(self, start_iteration: int) -> None:
        self.start_iteration = start_iteration
        self.calib_start: float | None = None

    def update(self, run: _Run, elapsed: float, bar: Any) -> None:
        done_here = run.iteration - self.start_iteration
        if done_here == _CALIB_FROM:
            self.calib_start = elapsed
        elif done_here == _CALIB_TO and self.calib_start is not None:
            per_iter = (elapsed - self.calib_start) / (_CALIB_TO - _CALIB_FROM)
            fit = fit_max_iters(run.iteration, per_iter, elapsed, run.cfg.max_minutes, run.max_iters)
            fit = int(_all_reduce_max(float(fit) if run.info.is_main else 0.0, run.info, run.dev))
            if fit < run.max_iters:
                logger.info("budget: %.3f s/iteration → schedule shortened to %d iterations", per_iter, fit)
                run.horizon["max_iters"] = fit
                if bar is not None:
                    bar.total = run.max_iters


class _Meter:
    """Loss averages and images/s over each logging window; rank 0 logs them."""

    def __init__(self) -> None:
        self.window_start, self.window_images, self.total_images = time.monotonic(), 0, 0
        self.sums: dict[str, float] = {}
        self.images_per_s = 0.0

    def add(self, values: dict[str, float], images: int) -> None:
        self.window_images += images
        self.total_images += images
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v

    def log(self, run: _Run, writer: Any, bar: Any) -> None:
        now = time.monotonic()
        interval, iteration = run.cfg.log_interval, run.iteration
        self.images_per_s = self.window_images / max(now - self.window_start, 1e-9)
        n = max(1, interval if iteration % interval == 0 else iteration % interval)
        avg = {k: v / n for k, v in self.sums.items()}
        lr = run.optimizer.param_groups[0]["lr"]
        if run.info.is_main:
            logger.info("iter %d/%d  %s  lr %.3g  %.1f img/s", iteration, run.max_iters,
                        "  ".join(f"{k} {v:.4f}" for k, v in avg.items()), lr, self.images_per_s)
            if bar is not None:
                bar.set_postfix(loss=f"{avg.get('loss', float('nan')):.3f}", img_s=f"{self.images_per_s:.1f}")
            _log_scalars(writer, run.out, iteration, {**{f"train/{k}": v for k, v in avg.items()},
                                                      "train/lr": lr, "train/images_per_s": self.images_per_s})
        self.sums, self.window_start, self.window_images = {}, now, 0


def _stop_reason(run: _Run, elapsed: float, stop_at: int | None) -> str:
    """"max_minutes" / "stop_at" when the run must stop now, else "max_iters" (agreed by every rank)."""
    over_budget = run.cfg.max_minutes > 0 and elapsed >= run.cfg.max_minutes * 60.0
    if _all_reduce_max(float(over_budget), run.info, run.dev) > 0:
        return "max_minutes"
    if stop_at is not None and run.iteration >= stop_at:
        return "stop_at"
    return "max_iters"


def train(cfg: TrainConfig, *, resume: bool = False, device: str | None = None,
          command: str | None = None, progress: bool = True, stop_at: int | None = None) -> TrainResult:
    """Train ``cfg.model`` on ``cfg.data.train``; see the module docstring for what is written where.

    ``stop_at``: stop (and checkpoint) after this iteration as if interrupted — the schedule still
    runs to ``max_iters`` (used to test exact resume).
    """
    info, dev = init_distributed(device)
    out = Path(cfg.output_dir)
    if dev.type != "cuda" and cfg.amp != "none":
        logger.info("amp=%s needs CUDA; training in float32 on %s", cfg.amp, dev)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
    run = _build_run(cfg, info, dev, out)
    if resume:
        _resume(run)
    else:
        _seed_step_rngs(cfg, info)
    step_module = _step_module(run)
    dataset = _build_dataset(cfg, cfg.data.train, train=True)
    batches = RunBatches(_aspect_groups(dataset), cfg.data.batch_size, cfg.seed, info.rank, info.world_size,
                         start_epoch=run.epoch, skip=run.batch_in_epoch)
    loader = _loader(dataset, batches, cfg, pin=dev.type == "cuda")
    writer = _summary_writer(out) if info.is_main else None
    bar = None
    if info.is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=run.max_iters, initial=run.iteration, desc="train", dynamic_ncols=True, file=sys.stderr)

    # The loop: per-rank batches, epoch after epoch, until max_iters, stop_at or the wall-clock budget.
    budget, meter = _BudgetFit(run.iteration), _Meter()
    start = time.monotonic()
    metrics: dict[str, float] = {}
    stopped_by = "max_iters"
    run.model.train()
    for batch in loader if run.iteration < run.max_iters else ():
        values, n_img = _optimisation_step(run, step_module, batch)
        run.advance(batches.per_epoch)
        meter.add(values, n_img * info.world_size)
        if bar is not None:
            bar.update(1)
        elapsed = time.monotonic() - start
        if cfg.max_minutes > 0 and cfg.budget_schedule:
            budget.update(run, elapsed, bar)
        if run.iteration % cfg.log_interval == 0 or run.iteration == run.max_iters:
            meter.log(run, writer, bar)
        stopped_by = _stop_reason(run, elapsed, stop_at)
        finished = run.iteration >= run.max_iters or stopped_by != "max_iters"
        if cfg.val_interval > 0 and cfg.data.val and (run.iteration % cfg.val_interval == 0 or finished):
            metrics = _validate_all_ranks(run.model, cfg, dev, info)
            if info.is_main:
                _log_scalars(writer, out, run.iteration, metrics)
            run.model.train()
        if run.iteration % cfg.ckpt_interval == 0 or finished:
            state_out = run.state(elapsed)
            if info.is_main:
                record = _record(cfg, command, run.iteration, metrics, meter.images_per_s)
                save_training_checkpoint(out, "last", run.model, cfg, record, state_out)
                if run.ema is not None:
                    save_training_checkpoint(out, "last_ema", run.ema.module, cfg, _ema_record(cfg, record), None)
        if finished:
            break

    if bar is not None:
        bar.close()
    _finish(run, command, metrics, meter, stopped_by, time.monotonic() - start, writer)
    return TrainResult(run.iteration, stopped_by, out, run.model, run.criterion, metrics, meter.images_per_s)


def _finish(run: _Run, command: str | None, metrics: dict[str, float], meter: _Meter, stopped_by: str,
            took: float, writer: Any) -> None:
    """Write final.*, log the summary, close the writer; under DDP every rank ends with rank 0's buffers."""
    if run.info.is_main:
        record = _record(run.cfg, command, run.iteration, metrics, meter.images_per_s)
        save_training_checkpoint(run.out, "final", run.model, run.cfg, record, None)
        if run.ema is not None:
            save_training_checkpoint(run.out, "final_ema", run.ema.module, run.cfg, _ema_record(run.cfg, record), None)
        logger.info("stopped by %s at iteration %d after %.1f min; %d images (%.1f img/s overall); checkpoint %s",
                    stopped_by, run.iteration, took / 60.0, meter.total_images, meter.total_images / max(took, 1e-9),
                    checkpoint_paths(run.out / "final")[0])
    if writer is not None:
        writer.close()
    if run.info.distributed:
        # DDP keeps parameters in sync; BN running statistics of the last step are per rank. Hand every
        # rank rank 0's (the ones saved), so all ranks end with the same model.
        for buf in run.model.buffers():
            dist.broadcast(buf, src=0)
        dist.barrier()


def _gather_rng(device: torch.device, info: DistInfo) -> list[dict[str, Any]]:
    """Every rank's RNG state (rank r resumes with entry r)."""
    mine = _rng_state(device)
    if not info.distributed:
        return [mine]
    everything: list[Any] = [None] * info.world_size
    dist.all_gather_object(everything, mine)
    return everything


def _validate_all_ranks(model: nn.Module, cfg: TrainConfig, device: torch.device, info: DistInfo) -> dict[str, float]:
    """Rank 0 evaluates; the others wait (the metrics are only logged by rank 0)."""
    metrics: dict[str, float] = {}
    if info.is_main:
        model.eval()
        with torch.no_grad():
            metrics = _validate(model, cfg, device)
        logger.info("validation: %s", "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    if info.distributed:
        dist.barrier()
    return metrics


def _record(cfg: TrainConfig, command: str | None, iteration: int, metrics: dict[str, float],
            images_per_s: float) -> dict[str, Any]:
    return {
        "recipe": command or "das train",
        "data": {"train": list(cfg.data.train), "val": list(cfg.data.val)},
        "iterations": iteration,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "images_per_s": round(float(images_per_s), 2),
    }


def _ema_record(cfg: TrainConfig, record: dict[str, Any]) -> dict[str, Any]:
    """The record of a weight-average checkpoint: the run's, without the validation figures (those are of the
    raw weights), and saying what the weights are."""
    return {**record, "metrics": {}, "weights": f"exponential moving average, decay {cfg.ema_decay}"}


def _summary_writer(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional (extra "train")
        logger.info("tensorboard not installed: scalars go to %s only", out / "metrics.jsonl")
        return None
    return SummaryWriter(log_dir=str(out))


def _log_scalars(writer: Any, out: Path, iteration: int, scalars: dict[str, float]) -> None:
    with (out / "metrics.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps({"iteration": iteration, **{k: float(v) for k, v in scalars.items()}}) + "\n")
    if writer is not None:
        for k, v in scalars.items():
            writer.add_scalar(k, v, iteration)
        writer.flush()


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training YAML (config/train/*.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set optim.lr=0.004 --set model.loss.pose_loss=l1")
    parser.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last (exact resume)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: cuda:LOCAL_RANK if available)")
    parser.add_argument("--output-dir", default=None, help="overrides output_dir of the config")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")


def run(args: argparse.Namespace) -> int:
    cfg = load_train_config(args.config, parse_overrides(args.set))
    if args.output_dir:
        cfg = replace(cfg, output_dir=args.output_dir)
    command = " ".join(["das train", f"--config {args.config}", *(f"--set {s}" for s in args.set)])
    result = train(cfg, resume=args.resume, device=args.device, command=command, progress=not args.no_progress)
    print(json.dumps({"iterations": result.iterations, "stopped_by": result.stopped_by,
                      "checkpoint": str(checkpoint_paths(result.output_dir / "final")[0]),
                      "images_per_s": round(result.images_per_s, 2), **result.metrics}))
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0
