"""Data loading for training: reproducible samples, a resumable distributed sampler and the loader.

Every sample is made a pure function of ``(TRAIN.SEED, epoch, global index)`` (plus the curriculum's
skip): :class:`EpochSeededDataset` restarts the dataset's random stream from that triple before each
item. Hence the data do not depend on the number of loader workers or on which rank loads an index,
and a run resumed in the middle of an epoch sees exactly the remaining samples of that epoch.

The order of indices comes from :class:`ResumableSampler` (``DistributedSampler`` with the global rank,
shuffled per epoch from ``TRAIN.SEED``) which can start part-way into an epoch.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from rhmnet.data.build import set_mix_epoch
from rhmnet.engine.distributed import DistContext


def derive_seed(*parts: int) -> int:
    """A 63-bit seed mixed from integers (stable across processes and platforms)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0] >> 1)


class EpochSeededDataset(Dataset):
    """Wraps a dataset with a ``reseed(seed)`` method (``rhmnet.data.base.SeededDataset``) so that item
    ``index`` of epoch ``e`` is drawn from a generator seeded with ``(seed, e, index)``. Datasets without
    ``reseed`` are passed through unchanged (their own randomness applies)."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset  # ``rhmnet.data.build.set_skip`` finds the wrapped dataset here
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's samples (reaches non-persistent workers when the next iterator starts); an
        epoch-dependent mix inside the wrapped dataset is told too."""
        self.epoch = int(epoch)
        set_mix_epoch(self.dataset, self.epoch)

    def __getitem__(self, index: int) -> Any:
        reseed = getattr(self.dataset, "reseed", None)
        if callable(reseed):
            reseed(derive_seed(self.seed, self.epoch, int(index)))
        return self.dataset[index]


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (global rank, per-epoch shuffle from ``seed``) that can skip the first
    ``start`` indices of this rank's share of an epoch, to resume mid-epoch."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int, shuffle: bool, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Next iteration yields this rank's indices of ``epoch`` from position ``start`` on."""
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"sampler start {start} outside 0..{self.num_samples}")
        self.set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return iter(list(super().__iter__())[self.start :])

    def __len__(self) -> int:
        return self.num_samples - self.start


class WorkerSeeder:
    """``worker_init_fn``: seeds Python's and NumPy's global generators of a loader worker from its torch
    seed (which differs per rank, epoch and worker: see :func:`build_loader`)."""

    def __call__(self, worker_id: int) -> None:
        seed = torch.initial_seed() % 2**32
        random.seed(seed)
        np.random.seed(seed)


def build_loader(
    dataset: Dataset, ctx: DistContext, batch_size: int, num_workers: int, seed: int, shuffle: bool = True,
    pin_memory: bool = True,
) -> tuple[DataLoader, ResumableSampler, torch.Generator]:
    """The training loader (drop_last, non-persistent workers, pinned memory when ``pin_memory`` and the
    device is CUDA: TRAIN.PIN_MEMORY), its sampler, and the generator whose seed
    :func:`start_epoch` sets per (rank, epoch) so worker seeds are reproducible and never consume the
    global torch generator."""
    sampler = ResumableSampler(dataset, ctx.world_size, ctx.rank, shuffle, seed)
    generator = torch.Generator()
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=pin_memory and ctx.device.type == "cuda",
        drop_last=True,
        worker_init_fn=WorkerSeeder() if num_workers > 0 else None,
        generator=generator,
        persistent_workers=False,
    )
    return loader, sampler, generator


def start_epoch(
    loader: DataLoader, sampler: ResumableSampler, generator: torch.Generator, ctx: DistContext,
    seed: int, epoch: int, start_batch: int = 0,
) -> Iterator[Any]:
    """Iterator over the batches of ``epoch`` from batch ``start_batch`` on (workers start here)."""
    dataset = loader.dataset
    if isinstance(dataset, EpochSeededDataset):
        dataset.set_epoch(epoch)
    sampler.set_position(epoch, start_batch * (loader.batch_size or 1))
    generator.manual_seed(derive_seed(seed, ctx.rank, epoch, 7))
    return iter(loader)


def to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """Move the tensors of a collated batch to ``device`` (other entries, e.g. ``info``, stay)."""
    non_blocking = device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if torch.is_tensor(v) else v for k, v in batch.items()}


class FixedSamples(Dataset):
    """A list of ready samples (for tests and debugging: a fixed data order)."""

    def __init__(self, samples: list[dict[str, Any]]) -> None:
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.samples[index]
