"""Training clips from videos with per-frame scribbles (shared by the DAVIS and YouTube-VOS datasets)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rhmnet.data.augment import augment_video_clip, is_valid_crop, resize_short_side
from rhmnet.data.base import DatasetWarning, SeededDataset, warn_skipped
from rhmnet.data.composition import CompositionOptions, compose_clip, object_ids
from rhmnet.data.io import DatasetError, list_files, read_image, read_palette_png, read_scribble
from rhmnet.data.sample import ClipOptions, Sample, build_sample, make_info
from rhmnet.data.strokes import VOID, scribble_from_labels, style_for_short_side
from rhmnet.labels import BACKGROUND, MAX_OBJECTS, remap_video_scribble

COMPOSED_STROKE_STEP = 4.0  # walk step (pixels) of the strokes drawn on composed clips: half the steps of the
# files' 2.0, whose walks were two thirds of a composed clip's loading time
OBJECT_VALUES = tuple(range(1, MAX_OBJECTS + 1))  # the crop of a composed clip covers its objects, not all
# of its densely labelled background
Clip = tuple[list[np.ndarray], list[np.ndarray], list[int]]  # augmented frames, their labels, frame indices
DenseClip = tuple[list[np.ndarray], list[np.ndarray], list[int]]  # frames, dense masks, frame indices


@dataclass
class ComposedClip:
    """An augmented clip with pasted objects: frames, the scribbles drawn on them, the dense labels they
    were drawn from (0 background, ids, 255 void), the target's frame indices and a name
    (``<video>+<donor>...``)."""

    frames: list[np.ndarray]
    scribbles: list[np.ndarray]
    dense: list[np.ndarray]
    indices: list[int]
    name: str


@dataclass(frozen=True)
class VideoEntry:
    """One training video: its frames and the per-frame scribble files, paired by position."""

    name: str
    images: tuple[Path, ...]
    scribbles: tuple[Path, ...]
    masks: tuple[Path, ...] = ()  # dense masks paired with the frames (object pasting), when known


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


def load_masked_frame(image_path: Path, mask_path: Path, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    """A frame and its dense mask (0 background, object ids, 255 void), short side resized to ``short_side``."""
    image = read_image(image_path)
    mask = read_palette_png(mask_path)
    if image.shape[:2] != mask.shape:
        raise DatasetError(
            f"{mask_path}: mask size {mask.shape[1]}x{mask.shape[0]} differs from frame {image_path} "
            f"({image.shape[1]}x{image.shape[0]})"
        )
    return resize_short_side(image, mask, short_side)


def with_masks(
    dataset: str, videos: Sequence[VideoEntry], mask_dir: Callable[[str], Path]
) -> tuple[list[VideoEntry], list[int]]:
    """The videos with their dense masks (``mask_dir(name)/<frame>.png``) attached, and the indices of the
    videos that have a mask for every frame; the others are named in one counted warning."""
    entries, complete, missing = [], [], []
    for index, video in enumerate(videos):
        folder = mask_dir(video.name)
        masks = tuple(folder / f"{image.stem}.png" for image in video.images)
        if all(m.is_file() for m in masks):
            entries.append(VideoEntry(video.name, video.images, video.scribbles, masks))
            complete.append(index)
        else:
            entries.append(video)
            missing.append(f"{video.name} (in {folder})")
    warn_skipped(dataset, "no dense mask for every frame: never composed with pasted objects", missing, len(videos))
    return entries, complete


def dense_to_crop_labels(mask: np.ndarray) -> np.ndarray:
    """A dense mask in the label convention that clip augmentation and crop checks use: background 11,
    objects keep their ids (ids above 10 and void become unlabelled 0, as do the borders of warps)."""
    out = mask.copy()
    out[(mask > MAX_OBJECTS)] = 0
    out[mask == 0] = BACKGROUND
    return out


def crop_labels_to_dense(label: np.ndarray) -> np.ndarray:
    """The inverse of :func:`dense_to_crop_labels` after augmentation: background 0, unlabelled -> void."""
    out = label.copy()
    out[label == 0] = VOID
    out[label == BACKGROUND] = 0
    return out


class VideoScribbleDataset(SeededDataset):
    """Random clips of scribbled training videos, as the authors sample them.

    ``skip_divisor`` scales the frame-gap curriculum (YouTube-VOS uses skip // 5, since its frames are
    already 5 apart). With ``options.paste_probability`` > 0 that share of the clips is composed
    (:meth:`try_composed_clip`): objects of other videos of this dataset pasted in, found through
    ``mask_dir`` (a video's dense-mask folder).
    """

    def __init__(
        self,
        videos: Sequence[VideoEntry],
        options: ClipOptions,
        name: str,
        skip_divisor: int = 1,
        init_skip: int = 0,
        mask_dir: Callable[[str], Path] | None = None,
    ) -> None:
        super().__init__(max_draws=options.max_draws)
        if not videos:
            raise DatasetError(f"{name}: empty video list")
        self.videos = list(videos)
        self.options = options
        self.name = name
        self.skip_divisor = skip_divisor
        self.paste_sources: list[int] = []  # videos with dense masks: targets and donors of composed clips
        if options.paste_probability > 0:
            self.enable_pasting(mask_dir)
        self.change_skip(init_skip)

    def enable_pasting(self, mask_dir: Callable[[str], Path] | None) -> None:
        """Attach the videos' dense masks. With fewer than two videos that have them this dataset's clips are
        never composed, and one warning says so (the other datasets of a mix still paste)."""
        if mask_dir is None:
            warnings.warn(f"{self.name}: object pasting off for this dataset: its dense masks are not known",
                          DatasetWarning, stacklevel=2)
            return
        self.videos, sources = with_masks(self.name, self.videos, mask_dir)
        if len(sources) < 2:
            where = mask_dir(self.videos[0].name).parent
            warnings.warn(
                f"{self.name}: object pasting off for this dataset: DATASETS.PASTE_OBJECTS_PROBABILITY needs dense "
                f"masks (<video>/<frame>.png under {where}) for at least two videos; found them for {len(sources)}",
                DatasetWarning,
                stacklevel=2,
            )
            return
        self.paste_sources = sources

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

    def load_dense_clip(self, index: int, rng: np.random.Generator) -> DenseClip:
        """Frames, dense masks and frame indices of a random frame sampling of video ``index`` at the
        training resolution."""
        video = self.videos[index]
        indices = sample_frame_indices(len(video.images), self.options.clip_length, self.skip, rng)
        loaded = [load_masked_frame(video.images[i], video.masks[i], self.options.resize_short_side) for i in indices]
        return [f for f, _ in loaded], [m for _, m in loaded], indices

    def try_composed_clip(
        self, index: int, rng: np.random.Generator
    ) -> ComposedClip | None:
        """A clip of video ``index`` (a random video with masks when it has none) with 1 to
        ``options.paste_max_objects`` objects of other videos pasted in (:func:`compose_clip`), augmented
        like every clip, and scribbles drawn on each augmented frame from the composed labels
        (:func:`scribble_from_labels`, the training style of the resolution); ``None`` when no valid crop
        or scribble came out."""
        opts = self.options
        if len(self.paste_sources) < 2:
            raise DatasetError(f"{self.name}: object pasting is off (no probability, or too few dense masks)")
        if not self.videos[index].masks:
            index = self.paste_sources[int(rng.integers(len(self.paste_sources)))]
        frames, masks, indices = self.load_dense_clip(index, rng)
        wanted = int(rng.integers(1, opts.paste_max_objects + 1))
        others = [i for i in self.paste_sources if i != index]
        donor_indices = [others[int(i)] for i in rng.choice(len(others), size=min(wanted, len(others)), replace=False)]
        donors = [self.load_dense_clip(i, rng)[:2] for i in donor_indices]
        options = CompositionOptions(min_area=max(opts.minimum_area, 1))
        composition = compose_clip(frames, masks, donors, rng, wanted, options)
        used = [self.videos[donor_indices[p.donor]].name for p in composition.pastes]
        if not used:
            self.stats["paste_not_placed"] += 1
        crop_labels = [dense_to_crop_labels(m) for m in composition.labels]
        clip = augment_video_clip(composition.frames, crop_labels, opts.crop_size, opts.minimum_area, rng,
                                  cover_values=OBJECT_VALUES)
        if clip is None:
            self.stats["invalid_crops"] += 1
            return None
        style = dataclasses.replace(style_for_short_side(opts.resize_short_side), step=COMPOSED_STROKE_STEP)
        dense = [crop_labels_to_dense(label) for label in clip[1]]
        scribbles = [scribble_from_labels(d, object_ids(d), BACKGROUND, rng, style)[0] for d in dense]
        if not all(is_valid_crop(s, opts.minimum_area) for s in scribbles):
            self.stats["invalid_composed_scribbles"] += 1
            return None
        return ComposedClip(clip[0], scribbles, dense, indices, "+".join([self.videos[index].name, *used]))

    def pasting(self, rng: np.random.Generator) -> bool:
        """Whether the next clip is composed (draws nothing when pasting is off)."""
        return bool(self.paste_sources) and rng.random() < self.options.paste_probability

    def try_sample(self, index: int, rng: np.random.Generator) -> Sample | None:
        """Up to ``max_sample_tries`` frame samplings of video ``index`` (or composed clips, see
        :meth:`try_composed_clip`); ``None`` if none is valid."""
        video = self.videos[index]
        for _ in range(self.options.max_sample_tries):
            if self.pasting(rng):
                composed = self.try_composed_clip(index, rng)
                if composed is None:
                    continue
                info = make_info(composed.name, composed.indices, self.name)
                sample = build_sample(composed.frames, composed.scribbles, self.options, rng, info)
                self.stats["no_object" if sample is None else "composed_clips"] += 1
                return sample
            clip = self.try_clip(index, rng)
            if clip is None:
                continue
            frames, labels, indices = clip
            sample = build_sample(frames, labels, self.options, rng, make_info(video.name, indices, self.name))
            if sample is None:
                self.stats["no_object"] += 1
            return sample
        return None
