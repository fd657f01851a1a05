"""Training clips from videos with per-frame scribbles (shared by the DAVIS and YouTube-VOS datasets)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rhmnet.data.augment import augment_video_clip, resize_short_side
from rhmnet.data.base import SeededDataset, warn_skipped
from rhmnet.data.io import DatasetError, list_files, read_image, read_scribble
from rhmnet.data.sample import ClipOptions, Sample, build_sample, make_info
from rhmnet.labels import remap_video_scribble

Clip = tuple[list[np.ndarray], list[np.ndarray], list[int]]  # augmented frames, their labels, frame indices


@dataclass(frozen=True)
class VideoEntry:
    """One training video: its frames and the per-frame scribble files, paired by position."""

    name: str
    images: tuple[Path, ...]
    scribbles: tuple[Path, ...]


def pair_video_files(
    name: str, image_dir: Path, scribble_dir: Path, skipped: dict[str, list[str]]
) -> VideoEntry | None:
    """Pair the ``.jpg`` frames of ``image_dir`` with the ``.bmp`` scribbles of ``scribble_dir`` by
    sorted name. A video whose counts or names differ is recorded in ``skipped`` (the authors skip
    such videos) and gives ``None``."""
    images = list_files(image_dir, (".jpg", ".jpeg"))
    scribbles = list_files(scribble_dir, (".bmp",))
    if len(images) != len(scribbles):
        skipped.setdefault("frame and scribble counts differ", []).append(
            f"{name} ({len(images)} frames in {image_dir}, {len(scribbles)} scribbles in {scribble_dir})"
        )
        return None
    mismatched = [(i.stem, s.stem) for i, s in zip(images, scribbles) if i.stem != s.stem]
    if mismatched:
        skipped.setdefault("frame and scribble names differ", []).append(
            f"{name} (e.g. frame {mismatched[0][0]} vs scribble {mismatched[0][1]} in {scribble_dir})"
        )
        return None
    return VideoEntry(name, tuple(images), tuple(scribbles))


def finish_listing(
    dataset: str,
    entries: list[VideoEntry],
    skipped: dict[str, list[str]],
    total: int,
    clip_length: int,
    where: Path,
) -> list[VideoEntry]:
    """Drop videos shorter than the clip, warn (counted) about every skipped video, and fail clearly
    when nothing usable is left."""
    short = [e for e in entries if len(e.images) < clip_length]
    if short:
        skipped.setdefault(f"fewer than {clip_length} frames", []).extend(
            f"{e.name} ({len(e.images)} frames)" for e in short
        )
    kept = [e for e in entries if len(e.images) >= clip_length]
    for reason, names in skipped.items():
        warn_skipped(dataset, reason, names, total)
    if not kept:
        details = "; ".join(f"{reason}: {len(names)}" for reason, names in skipped.items()) or "none listed"
        raise DatasetError(f"{dataset}: no usable training videos under {where} (skipped: {details})")
    return kept


def sample_frame_indices(num_frames: int, clip_length: int, skip: int, rng: np.random.Generator) -> list[int]:
    """Frame indices of a clip: the first uniform, each next uniform in prev+1 .. prev+skip+1, capped so
    that the remaining frames still fit."""
    if num_frames < clip_length:
        raise ValueError(f"cannot sample {clip_length} frames from a video of {num_frames}")
    indices = [int(rng.integers(0, num_frames - clip_length + 1))]
    for i in range(1, clip_length):
        remaining = clip_length - i - 1
        high = min(num_frames - remaining, indices[-1] + skip + 2)  # exclusive
        indices.append(int(rng.integers(indices[-1] + 1, high)))
    return indices


def load_scribbled_frame(
    image_path: Path, scribble_path: Path, short_side: int
) -> tuple[np.ndarray, np.ndarray]:
    """A frame and its remapped scribble (largest value -> 11), short side resized to ``short_side``."""
    image = read_image(image_path)
    label = remap_video_scribble(read_scribble(scribble_path))
    if image.shape[:2] != label.shape:
        raise DatasetError(
            f"{scribble_path}: scribble size {label.shape[1]}x{label.shape[0]} differs from frame "
            f"{image_path} ({image.shape[1]}x{image.shape[0]})"
        )
    return resize_short_side(image, label, short_side)


class VideoScribbleDataset(SeededDataset):
    """Random clips of scribbled training videos, as the authors sample them.

    ``skip_divisor`` scales the frame-gap curriculum (YouTube-VOS uses skip // 5, since its frames are
    already 5 apart).
    """

    def __init__(
        self,
        videos: Sequence[VideoEntry],
        options: ClipOptions,
        name: str,
        skip_divisor: int = 1,
        init_skip: int = 0,
    ) -> None:
        super().__init__(max_draws=options.max_draws)
        if not videos:
            raise DatasetError(f"{name}: empty video list")
        self.videos = list(videos)
        self.options = options
        self.name = name
        self.skip_divisor = skip_divisor
        self.change_skip(init_skip)

    def __len__(self) -> int:
        return len(self.videos)

    def change_skip(self, skip: int) -> None:
        """Set the curriculum's maximum extra frame gap (divided by ``skip_divisor``)."""
        self.skip = int(skip) // self.skip_divisor

    def item_name(self, index: int) -> str:
        return self.videos[index].name

    def try_clip(
        self, index: int, rng: np.random.Generator, crop_hw: Sequence[int] | None = None
    ) -> Clip | None:
        """One sampling of frames of video ``index``, loaded and augmented to ``crop_hw`` (default: the
        options' crop): (frames, labels, frame indices), or ``None`` when no valid crop was found."""
        video = self.videos[index]
        opts = self.options
        indices = sample_frame_indices(len(video.images), opts.clip_length, self.skip, rng)
        loaded = [
            load_scribbled_frame(video.images[i], video.scribbles[i], opts.resize_short_side) for i in indices
        ]
        clip = augment_video_clip(
            [f for f, _ in loaded],
            [lab for _, lab in loaded],
            opts.crop_size if crop_hw is None else crop_hw,
            opts.minimum_area,
            rng,
        )
        if clip is None:
            self.stats["invalid_crops"] += 1
            return None
        return clip[0], clip[1], indices

    def try_sample(self, index: int, rng: np.random.Generator) -> Sample | None:
        """Up to ``max_sample_tries`` frame samplings of video ``index``; ``None`` if none is valid."""
        video = self.videos[index]
        for _ in range(self.options.max_sample_tries):
            clip = self.try_clip(index, rng)
            if clip is None:
                continue
            frames, labels, indices = clip
            sample = build_sample(frames, labels, self.options, rng, make_info(video.name, indices, self.name))
            if sample is None:
                self.stats["no_object"] += 1
            return sample
        return None
