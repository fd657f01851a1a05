"""A dataset that mixes several clip datasets with given probabilities, for a fixed number of samples per
epoch, with optional temporal flip (the authors mix YouTube-VOS : DAVIS = 92 : 8) and optional mosaic
clips: two videos side by side, so that single-object videos also teach the model to tell objects apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rhmnet.config import ConfigError
from rhmnet.data.base import SeededDataset
from rhmnet.data.io import DatasetError
from rhmnet.data.sample import Sample, build_sample, flip_sample_in_time, make_info
from rhmnet.data.video import Clip, VideoScribbleDataset
from rhmnet.labels import BACKGROUND


def mosaic_widths(width: int) -> tuple[int, int]:
    """Widths of the left and right halves of a mosaic crop of ``width``, both multiples of 4."""
    left = width // 2 // 4 * 4
    if left < 4 or width - left < 4:
        raise ConfigError(f"a mosaic needs a crop width of at least 8 pixels, got {width}")
    return left, width - left


def join_side_by_side(left: Clip, right: Clip) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames and labels of two clips placed side by side. The right clip's objects are renumbered after
    the left clip's largest object id (ids that would reach the background label are dropped to
    unlabelled); the background label stays shared."""
    left_frames, left_labels, _ = left
    right_frames, right_labels, _ = right
    left_objects = max(int(lab[lab != BACKGROUND].max(initial=0)) for lab in left_labels)
    renumber = np.arange(256, dtype=np.int64)
    renumber[1:BACKGROUND] += left_objects
    renumber[renumber >= BACKGROUND] = 0
    renumber[BACKGROUND] = BACKGROUND
    renumber = renumber.astype(np.uint8)
    frames = [np.concatenate([a, b], axis=1) for a, b in zip(left_frames, right_frames)]
    labels = [np.concatenate([a, renumber[b]], axis=1) for a, b in zip(left_labels, right_labels)]
    return frames, labels


def normalised_weights(weights: Sequence[float] | None, count: int) -> np.ndarray:
    """Sampling weights of ``count`` datasets as probabilities; a clear error unless there is one
    non-negative weight per dataset with a positive sum."""
    values = [] if weights is None else [float(w) for w in weights]
    if len(values) != count or min(values, default=-1.0) < 0 or sum(values) <= 0:
        raise ConfigError(
            f"need one non-negative sampling weight per dataset with a positive sum, got {values} for {count} "
            "datasets"
        )
    total = sum(values)
    return np.array([w / total for w in values], dtype=np.float64)


class MixedClipDataset(SeededDataset):
    """``samples_per_epoch`` random draws: a dataset by probability, then a uniform item of it; the clip
    is reversed in time with probability 0.5 when ``temporal_flip`` (after object selection).

    During the first ``warmup_epochs`` epochs (see :meth:`set_epoch`) datasets are drawn by
    ``warmup_probabilities`` instead: e.g. a first phase on synthetic multi-object clips only.

    With probability ``mosaic_probability`` a sample is instead a mosaic: two clips, each drawn as above
    (dataset by probability, uniform video) and cropped to half the crop width, side by side. Only
    scribbles are used, so it keeps the training scribble-supervised."""

    name = "mixed"

    def __init__(
        self,
        datasets: Sequence[SeededDataset],
        probabilities: Sequence[float] | None,
        samples_per_epoch: int,
        temporal_flip: bool = False,
        init_skip: int = 0,
        mosaic_probability: float = 0.0,
        warmup_probabilities: Sequence[float] | None = None,
        warmup_epochs: int = 0,
    ) -> None:
        super().__init__()
        if not datasets:
            raise ConfigError("MixedClipDataset needs at least one dataset")
        if probabilities is None:  # proportional to the dataset sizes
            probabilities = [float(len(d)) for d in datasets]
        self.datasets = list(datasets)
        self.probabilities = normalised_weights(probabilities, len(self.datasets))
        self.warmup_epochs = int(warmup_epochs)
        self.warmup_probabilities = (
            normalised_weights(warmup_probabilities, len(self.datasets)) if self.warmup_epochs else self.probabilities
        )
        self.epoch = 0
        self.samples_per_epoch = samples_per_epoch
        self.temporal_flip = temporal_flip
        if mosaic_probability > 0:
            not_video = [d.name for d in self.datasets if not isinstance(d, VideoScribbleDataset)]
            if not_video:
                raise ConfigError(f"mosaic clips need video datasets, not {', '.join(not_video)}")
        self.mosaic_probability = float(mosaic_probability)
        self.change_skip(init_skip)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def change_skip(self, skip: int) -> None:
        """Forward the curriculum's frame gap to every dataset."""
        self.skip = int(skip)
        for dataset in self.datasets:
            dataset.change_skip(skip)

    def set_epoch(self, epoch: int) -> None:
        """The epoch being drawn: it selects the warm-up or the main mixing probabilities."""
        self.epoch = int(epoch)

    def current_probabilities(self) -> np.ndarray:
        """The mixing probabilities of the current epoch."""
        return self.warmup_probabilities if self.epoch < self.warmup_epochs else self.probabilities

    def choose_dataset(self, rng: np.random.Generator) -> SeededDataset:
        """A dataset drawn by the current epoch's mixing probabilities."""
        return self.datasets[int(rng.choice(len(self.datasets), p=self.current_probabilities()))]

    def draw_clip(
        self, crop_hw: tuple[int, int], rng: np.random.Generator
    ) -> tuple[VideoScribbleDataset, str, Clip]:
        """A valid clip cropped to ``crop_hw`` from a random dataset and video: (dataset, video, clip)."""
        for _ in range(self.max_draws):
            dataset = self.choose_dataset(rng)
            assert isinstance(dataset, VideoScribbleDataset)  # checked in __init__
            index = int(rng.integers(len(dataset)))
            clip = dataset.try_clip(index, rng, crop_hw)
            if clip is not None:
                return dataset, dataset.item_name(index), clip
            self.stats["invalid_draws"] += 1
        raise DatasetError(
            f"mosaic: no valid {crop_hw[0]}x{crop_hw[1]} clip after {self.max_draws} draws; the scribbles may "
            "be too small for MINIMUM_AREA / CROP_SIZE"
        )

    def draw_mosaic(self, rng: np.random.Generator) -> Sample:
        """Two clips side by side, each half the crop width; objects of both can be selected."""
        height, width = self.datasets[0].options.crop_size
        left_width, right_width = mosaic_widths(width)
        for _ in range(self.max_draws):
            dataset, left_name, left = self.draw_clip((height, left_width), rng)
            _, right_name, right = self.draw_clip((height, right_width), rng)
            if right_name == left_name:  # the same object twice would teach nothing about identity
                self.stats["same_video_mosaic"] += 1
                continue
            frames, labels = join_side_by_side(left, right)
            info = make_info(f"{left_name}+{right_name}", left[2], "mosaic")
            sample = build_sample(frames, labels, dataset.options, rng, info)
            if sample is not None:
                return sample
            self.stats["no_object"] += 1
        raise DatasetError(f"mosaic: no clip pair with a selectable object after {self.max_draws} draws")

    def draw(self, index: int, rng: np.random.Generator) -> Sample:
        """A clip from a randomly chosen dataset, or a mosaic (``index`` only counts samples)."""
        if self.mosaic_probability > 0 and rng.random() < self.mosaic_probability:
            sample = self.draw_mosaic(rng)
        else:
            dataset = self.choose_dataset(rng)
            sample = dataset.draw(int(rng.integers(len(dataset))), rng)
        if self.temporal_flip and rng.random() < 0.5:
            sample = flip_sample_in_time(sample)
        return sample

    def __getitem__(self, index: int) -> Sample:
        return self.draw(int(index), self.rng())
