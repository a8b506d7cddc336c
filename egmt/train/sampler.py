"""A shuffling sampler whose order depends only on (seed, epoch), so runs resume exactly."""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class ResumableShuffleSampler(Sampler[int]):
    """Shuffle ``n`` indices per epoch, shard them over ranks, and start mid-epoch on resume.

    The permutation of epoch ``e`` is ``randperm(n)`` from a generator seeded with
    ``seed + e``, independent of everything else, so an interrupted and resumed run visits the
    same samples in the same order as an uninterrupted one. With ``world_size`` ranks the
    permutation is padded (by repeating its head) to a multiple of ``world_size`` and rank
    ``r`` takes every ``world_size``-th index from ``r``, as DistributedSampler does.
    """

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch's permutation and skip this rank's first ``start`` indices."""
        self.epoch, self.start = epoch, start

    def _shard(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        pad = (-len(perm)) % self.world_size
        perm += perm[:pad]
        return perm[self.rank :: self.world_size]

    def shard_size(self) -> int:
        """Indices this rank sees in a whole epoch."""
        return -(-self.n // self.world_size)

    def __iter__(self) -> Iterator[int]:
        return iter(self._shard()[self.start :])

    def __len__(self) -> int:
        return max(self.shard_size() - self.start, 0)
