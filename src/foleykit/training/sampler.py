"""A resumable, shardable batch sampler: the data position is two integers (epoch, batch).

Each epoch is a permutation drawn from ``seed + epoch`` (independent of any global RNG), padded by
cycling so every process gets the same number of full batches, then split across processes
(``rank::world``). Resuming at ``(epoch, batch)`` replays exactly the batches an uninterrupted run
would have seen next.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices for one process.

    Args:
        num_items: Dataset length (> 0).
        batch_size: Items per batch on this process.
        seed: Base seed of the epoch permutations.
        shuffle: Permute each epoch (else keep the dataset order).
        rank: This process's index.
        world_size: Number of processes.
    """

    def __init__(
        self,
        *,
        num_items: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if num_items <= 0:
            raise ValueError("cannot sample batches from an empty dataset")
        if batch_size <= 0 or world_size <= 0 or not 0 <= rank < world_size:
            raise ValueError(
                f"bad sampler geometry: batch_size={batch_size} rank={rank} world_size={world_size}"
            )
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        """Full batches per process per epoch (at least one: small datasets are cycled)."""
        per_rank = math.ceil(self.num_items / self.world_size)
        return max(1, per_rank // self.batch_size)

    def set_position(self, epoch: int, batch: int) -> None:
        """Start the next iteration at ``batch`` of ``epoch``."""
        if batch < 0 or batch > self.batches_per_epoch:
            raise ValueError(f"batch {batch} out of range for an epoch of {self.batches_per_epoch} batches")
        self.epoch = epoch
        self.start_batch = batch

    def epoch_indices(self, epoch: int) -> list[int]:
        """Indices this process sees in ``epoch``, in order (a multiple of batch_size long)."""
        if self.shuffle:
            g = torch.Generator().manual_seed(int(self.seed) * 1_000_003 + int(epoch))
            order = torch.randperm(self.num_items, generator=g).tolist()
        else:
            order = list(range(self.num_items))
        need = self.batches_per_epoch * self.batch_size * self.world_size
        reps = math.ceil(need / len(order))
        full = (order * reps)[:need]
        return full[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        idx = self.epoch_indices(self.epoch)
        for b in range(self.start_batch, self.batches_per_epoch):
            yield idx[b * self.batch_size : (b + 1) * self.batch_size]

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch
