"""Batches for training: one aspect-ratio batch sampler (landscape and portrait never share a batch,
DAS_SPEC §3.1), sharded over DDP ranks, and the per-sample seeding that makes a resumed run exact."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["EpochBatches", "RunBatches", "SeededDataset"]


class SeededDataset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Wraps a dataset; item ``(index, seed)`` seeds ``random``, NumPy and torch, then loads ``index``.

    The global RNG states of the calling process are restored afterwards, so loading in the main process
    (``num_workers: 0``) does not disturb the training RNG.
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> Any:
        index, seed = item
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            random.seed(seed)
            np.random.seed(seed % 2**32)
            torch.default_generator.manual_seed(seed)  # CPU only: never reseed the CUDA generators
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


class EpochBatches:
    """The batches of one epoch for one rank: aspect-grouped, shuffled by (seed, epoch), sharded by rank.

    Batches are formed over the whole data set and then dealt to ranks, so every rank gets exactly
    ``per_rank`` full batches (DDP needs the same number of steps everywhere; dealing indices first, as
    ``DistributedSampler`` does, can leave ranks with different numbers of full aspect-group batches).
    """

    def __init__(self, groups: Sequence[int], batch_size: int, seed: int, epoch: int, rank: int = 0,
                 world_size: int = 1) -> None:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(len(groups), generator=g).tolist()
        # Landscape and portrait images never share a batch (DAS_SPEC §3.1); leftovers are dropped.
        buckets: dict[int, list[int]] = {}
        batches: list[list[int]] = []
        for i in order:
            b = buckets.setdefault(int(groups[i]), [])
            b.append(i)
            if len(b) == batch_size:
                batches.append(b)
                buckets[int(groups[i])] = []
        if not batches:  # fewer images than one batch: one (possibly mixed-aspect) short batch
            batches = [order[:batch_size]]
        batches = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        self.per_rank = max(1, len(batches) // world_size)
        total = self.per_rank * world_size
        batches = (batches * math.ceil(total / len(batches)))[:total]
        self.batches = batches[rank::world_size]


class RunBatches:
    """Batch sampler for a whole run: epoch after epoch of :class:`EpochBatches`, never ending.

    Starts at ``start_epoch`` leaving out its first ``skip`` batches (resume in the middle of an epoch).
    Items are ``(index, sample_seed)`` for :class:`SeededDataset`, the seed a function of (seed, epoch, index).
    One DataLoader serves the whole run, so workers start once.
    """

    def __init__(self, groups: Sequence[int], batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 start_epoch: int = 0, skip: int = 0) -> None:
        self.groups = list(groups)
        self.batch_size, self.seed, self.rank, self.world_size = batch_size, seed, rank, world_size
        self.start_epoch, self.skip = start_epoch, skip
        self.per_epoch = EpochBatches(self.groups, batch_size, seed, 0, rank, world_size).per_rank

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch, skip = self.start_epoch, self.skip
        while True:
            batches = EpochBatches(self.groups, self.batch_size, self.seed, epoch, self.rank, self.world_size).batches
            for batch in batches[skip:]:
                yield [(i, ((self.seed * 1_000_003 + epoch) * 10_000_019 + i) % 2**63) for i in batch]
            epoch, skip = epoch + 1, 0
