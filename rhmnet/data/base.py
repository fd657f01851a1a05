"""Common machinery of the training datasets: a per-process random generator derived from torch's seed
(so DataLoader workers and distributed ranks draw different, reproducible samples) and the bounded
"try another video" loop."""

from __future__ import annotations

import os
import warnings
from collections import Counter

import numpy as np
import torch
from torch.utils.data import Dataset

from rhmnet.data.io import DatasetError
from rhmnet.data.sample import Sample


class DatasetWarning(UserWarning):
    """Items of a dataset were skipped (the message counts and names them)."""


def distributed_rank() -> int:
    """Rank of this process in a distributed run (0 when not distributed)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return int(torch.distributed.get_rank())
    return int(os.environ.get("RANK", "0"))


def _process_key() -> tuple[int, int, int]:
    """Identifies the random stream of this process: torch's seed (per DataLoader worker it is the
    loader's base seed + worker id), the worker id and the distributed rank."""
    worker = torch.utils.data.get_worker_info()
    return torch.initial_seed(), (worker.id + 1) if worker is not None else 0, distributed_rank()


def warn_skipped(dataset: str, reason: str, names: list[str], total: int) -> None:
    """Emit one counted warning for items skipped for the same reason."""
    if not names:
        return
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    warnings.warn(
        f"{dataset}: skipped {len(names)} of {total} items ({reason}): {shown}", DatasetWarning, stacklevel=3
    )


class SeededDataset(Dataset):
    """A map-style dataset whose samples are random draws.

    Randomness comes from a numpy generator created lazily per process from ``torch.initial_seed()``,
    the DataLoader worker id and the distributed rank, so the same torch seed gives the same samples,
    and workers / ranks get different streams. Subclasses implement :meth:`try_sample`.
    """

    name: str = "dataset"

    def __init__(self, max_draws: int = 100) -> None:
        self.max_draws = max_draws
        self._rng: np.random.Generator | None = None
        self._rng_key: tuple[int, int, int] | None = None
        self.skip = 0
        self.stats: Counter[str] = Counter()

    def __len__(self) -> int:
        raise NotImplementedError

    def rng(self) -> np.random.Generator:
        """The random generator of the current process (re-derived when the process/seed changes)."""
        key = _process_key()
        if self._rng is None or key != self._rng_key:
            self._rng = np.random.default_rng(list(key))
            self._rng_key = key
        return self._rng

    def reseed(self, seed: int) -> None:
        """Restart this process's random stream from ``seed``."""
        self._rng = np.random.default_rng(seed)
        self._rng_key = _process_key()

    def change_skip(self, skip: int) -> None:
        """Set the maximum frame gap of the curriculum (no effect for image datasets)."""
        self.skip = int(skip)

    def try_sample(self, index: int, rng: np.random.Generator) -> Sample | None:
        """One attempt at a sample from item ``index``; ``None`` when it yields no valid clip."""
        raise NotImplementedError

    def draw(self, index: int, rng: np.random.Generator) -> Sample:
        """A valid sample, starting from item ``index`` and drawing random other items when it fails;
        raises DatasetError after ``max_draws`` failures."""
        max_draws = self.max_draws
        tried: list[str] = []
        for _ in range(max_draws):
            sample = self.try_sample(index, rng)
            if sample is not None:
                return sample
            self.stats["invalid_draws"] += 1
            tried.append(self.item_name(index))
            index = int(rng.integers(len(self)))
        shown = ", ".join(sorted(set(tried))[:8])
        raise DatasetError(
            f"{self.name}: no valid clip after {max_draws} draws (tried: {shown}); the scribbles may be too "
            "small for MINIMUM_AREA / CROP_SIZE, or lack background or object strokes"
        )

    def item_name(self, index: int) -> str:
        return str(index)

    def __getitem__(self, index: int) -> Sample:
        return self.draw(int(index) % len(self), self.rng())
