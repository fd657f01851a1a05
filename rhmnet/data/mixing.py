"""A dataset that mixes several clip datasets with given probabilities, for a fixed number of samples per
epoch, with optional temporal flip (the authors mix YouTube-VOS : DAVIS = 92 : 8)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rhmnet.config import ConfigError
from rhmnet.data.base import SeededDataset
from rhmnet.data.sample import Sample, flip_sample_in_time


class MixedClipDataset(SeededDataset):
    """``samples_per_epoch`` random draws: a dataset by probability, then a uniform item of it; the clip
    is reversed in time with probability 0.5 when ``temporal_flip`` (after object selection)."""

    name = "mixed"

    def __init__(
        self,
        datasets: Sequence[SeededDataset],
        probabilities: Sequence[float] | None,
        samples_per_epoch: int,
        temporal_flip: bool = False,
        init_skip: int = 0,
    ) -> None:
        super().__init__()
        if not datasets:
            raise ConfigError("MixedClipDataset needs at least one dataset")
        if probabilities is None:  # proportional to the dataset sizes
            probabilities = [float(len(d)) for d in datasets]
        if len(probabilities) != len(datasets) or min(probabilities) < 0 or sum(probabilities) <= 0:
            raise ConfigError(
                f"need one non-negative sampling weight per dataset with a positive sum, got "
                f"{list(probabilities)} for {len(datasets)} datasets"
            )
        if samples_per_epoch < 1:
            raise ConfigError(f"samples per epoch must be >= 1, got {samples_per_epoch}")
        total = float(sum(probabilities))
        self.datasets = list(datasets)
        self.probabilities = np.array([p / total for p in probabilities], dtype=np.float64)
        self.samples_per_epoch = samples_per_epoch
        self.temporal_flip = temporal_flip
        self.change_skip(init_skip)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def change_skip(self, skip: int) -> None:
        """Forward the curriculum's frame gap to every dataset."""
        self.skip = int(skip)
        for dataset in self.datasets:
            dataset.change_skip(skip)

    def draw(self, index: int, rng: np.random.Generator) -> Sample:
        """A clip from a randomly chosen dataset (``index`` only counts samples)."""
        dataset = self.datasets[int(rng.choice(len(self.datasets), p=self.probabilities))]
        sample = dataset.draw(int(rng.integers(len(dataset))), rng)
        if self.temporal_flip and rng.random() < 0.5:
            sample = flip_sample_in_time(sample)
        return sample

    def __getitem__(self, index: int) -> Sample:
        return self.draw(int(index), self.rng())
