"""Split one training iteration's cost on a GPU: data loading alone vs the model + loss step alone.

Usage (device machine): ``python scripts/gpu/profile_train.py SYNTH/train.json``. This is how the
targets-in-the-main-loop bottleneck was found (57 ms of a 176 ms step at batch 32 on an H100), which led to
``das_core.training.trainer.TrainCollate`` (targets assigned in the DataLoader workers).
"""

from __future__ import annotations

import sys
import time

import torch

from das_core.config import load_train_config, parse_overrides
from das_core.model.das import DAS
from das_core.training.batching import EpochBatches, SeededDataset
from das_core.training.losses.criterion import DASLoss
from das_core.training.trainer import TrainCollate, _build_dataset  # noqa: PLC2701

BATCH = 32


def loader_rate(dataset: object, cfg: object, workers: int, batches: int = 15) -> tuple[float, dict]:
    """Images per second the DataLoader delivers (collate + targets included), and the last batch."""
    plan = EpochBatches(dataset.group_flags, BATCH, seed=0, epoch=0)  # type: ignore[attr-defined]
    loader = torch.utils.data.DataLoader(SeededDataset(dataset), batch_sampler=plan, num_workers=workers,
                                         collate_fn=TrainCollate(cfg.model), pin_memory=True)  # type: ignore[attr-defined]
    it = iter(loader)
    batch = next(it)
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        batch = next(it)
        n += batch["images"].shape[0]
    return n / (time.perf_counter() - start), batch


def step_time(cfg: object, batch: dict, device: torch.device, repeats: int = 10) -> float:
    """Seconds per optimiser step on one fixed batch (bf16 autocast, targets precomputed)."""
    model = DAS.from_config(cfg.model).to(device).train()  # type: ignore[attr-defined]
    criterion = DASLoss.from_config(cfg.model).to(device)  # type: ignore[attr-defined]
    optimizer = torch.optim.AdamW([*model.parameters(), *criterion.parameters()], lr=1e-4)
    images = batch["images"].to(device)
    targets = batch["targets"].to(device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            outputs = model(images)
        loss = criterion(outputs, targets)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    cfg = load_train_config("config/train/synthetic_r18s.yaml", parse_overrides([f"data.batch_size={BATCH}"]))
    dataset = _build_dataset(cfg, [sys.argv[1]], train=True)
    rate, batch = loader_rate(dataset, cfg, workers=14)
    print(f"loader, 14 workers: {rate:.0f} img/s", flush=True)
    dt = step_time(cfg, batch, torch.device("cuda"))
    print(f"model + loss step: {dt * 1000:.0f} ms ({BATCH / dt:.0f} img/s), input {tuple(batch['images'].shape)}")


if __name__ == "__main__":
    main()
