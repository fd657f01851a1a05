"""Turning an augmented clip (frames + label maps) into the training sample dict shared by all datasets.

Sample contract (every training dataset returns it; ``default_collate`` batches it):

- ``images`` float32 [L, 3, H, W]: RGB/255 normalised with the backbone's mean/std (``ClipOptions``);
- ``gray`` float32 [L, H, W]: 0.299R + 0.587G + 0.114B of the RGB in [0, 1];
- ``scribbles`` uint8 [L, H, W]: training labels (0 unlabeled, 1..n selected objects, 11 background;
  non-selected objects become 11 when ``others_to_background``, else 0);
- ``memory_scribbles`` uint8 [L, H, W]: the same with non-selected objects 0 (memory is built from it);
- ``ds_scribbles`` / ``ignore_regions`` float32 [L, 12, H/4, W/4]: binary reliable-region targets;
- ``num_objects`` int64 0-d; ``info`` {name, frames (int64 [L]), num_frames, dataset}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rhmnet.data.augment import flip_frames_independently
from rhmnet.labels import BACKGROUND, clip_targets, relabel_selected
from rhmnet.model.backbones import IMAGENET_NORMALISATION

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)

Sample = dict[str, Any]


@dataclass
class ClipOptions:
    """Options shared by the clip datasets (filled from ``cfg.DATASETS`` by ``build.py``; the values' ranges,
    e.g. crop sides multiples of 4 and 1..MAX_OBJECTS objects, are checked when the config loads)."""

    clip_length: int = 3
    crop_size: tuple[int, int] = (384, 384)  # (height, width)
    max_objects: int = 3
    minimum_area: int = 100
    others_to_background: bool = True  # cfg ADDITIONAL_BG
    memory_bg: bool = True  # keep the background scribble in the memory scribble
    in_clip_flip: bool = False  # cfg RANDOM_FLIP: flip frames independently
    bidirection: bool = False  # objects must also be scribbled on the last frame
    dilate_kernel_size: int = 35
    resize_short_side: int = 480
    max_sample_tries: int = 11  # frame samplings (video) per video before drawing another one
    max_draws: int = 100  # videos/images drawn for one sample before giving up with an error
    paste_probability: float = 0.0  # share of video clips composed with objects of other videos (cfg DATASETS.
    # PASTE_OBJECTS_PROBABILITY; rhmnet.data.composition)
    paste_max_objects: int = 2  # objects pasted into such a clip, at most (a clip holds at most 10 in all)
    mean: tuple[float, float, float] = IMAGENET_NORMALISATION.mean  # input normalisation: the backbone's
    std: tuple[float, float, float] = IMAGENET_NORMALISATION.std  # (build.py fills both from the model config)

    def __post_init__(self) -> None:
        self.crop_size = (int(self.crop_size[0]), int(self.crop_size[1]))


def select_objects(
    first: np.ndarray,
    last: np.ndarray | None,
    max_objects: int,
    minimum_area: int,
    rng: np.random.Generator,
) -> list[int]:
    """Object ids whose scribble on ``first`` (and on ``last`` when given) has > ``minimum_area``
    pixels, ascending; when more than ``max_objects`` qualify, a random subset in random order."""
    counts_first = np.bincount(first.ravel(), minlength=256)
    counts_last = np.bincount(last.ravel(), minlength=256) if last is not None else None
    candidates = [
        obj
        for obj in range(1, BACKGROUND)
        if counts_first[obj] > minimum_area and (counts_last is None or counts_last[obj] > minimum_area)
    ]
    if len(candidates) > max_objects:
        picked = rng.choice(len(candidates), size=max_objects, replace=False)
        candidates = [candidates[i] for i in picked]
    return candidates


def frames_to_tensors(
    frames: Sequence[np.ndarray], mean: Sequence[float], std: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 RGB frames [H, W, 3] -> (images [L, 3, H, W] normalised by ``mean``/``std``, grey [L, H, W]).

    Computed in numpy: tiny torch ops in loader processes pay for torch's thread pool."""
    rgb = np.stack(frames).astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
    gray = np.tensordot(GRAY_WEIGHTS, rgb, axes=([0], [1])).astype(np.float32)
    images = (rgb - np.asarray(mean, np.float32).reshape(1, 3, 1, 1)) / np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    return torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(np.ascontiguousarray(gray))


def build_sample(
    frames: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    options: ClipOptions,
    rng: np.random.Generator,
    info: dict[str, Any],
    flip_start: int = 0,
) -> Sample | None:
    """Optional in-clip flips (frames ``flip_start``.. when ``options.in_clip_flip``), object selection
    on frame 0, relabelling and targets. ``None`` when no object qualifies."""
    frames, labels = list(frames), list(labels)
    if options.in_clip_flip:
        frames, labels = flip_frames_independently(frames, labels, rng, start=flip_start)
    last = labels[-1] if options.bidirection else None
    selected = select_objects(labels[0], last, options.max_objects, options.minimum_area, rng)
    if not selected:
        return None
    scribbles = np.stack([relabel_selected(lab, selected, options.others_to_background) for lab in labels])
    memory = np.stack([relabel_selected(lab, selected, False) for lab in labels])
    if not options.memory_bg:
        memory[memory == BACKGROUND] = 0
    ds_scribbles, ignore = clip_targets(scribbles, len(selected), options.dilate_kernel_size)
    images, gray = frames_to_tensors(frames, options.mean, options.std)
    return {
        "images": images,
        "gray": gray,
        "scribbles": torch.from_numpy(scribbles),
        "memory_scribbles": torch.from_numpy(memory),
        "ds_scribbles": torch.from_numpy(ds_scribbles.astype(np.float32)),
        "ignore_regions": torch.from_numpy(ignore.astype(np.float32)),
        "num_objects": torch.tensor(len(selected), dtype=torch.int64),
        "info": info,
    }


def make_info(name: str, frames: Sequence[int], dataset: str) -> dict[str, Any]:
    """The ``info`` entry of a sample (collatable with ``default_collate``)."""
    return {
        "name": name,
        "frames": torch.as_tensor(list(frames), dtype=torch.int64),
        "num_frames": len(frames),
        "dataset": dataset,
    }


def flip_sample_in_time(sample: Sample) -> Sample:
    """Reverse the clip (all per-frame tensors and the frame list); memory then starts from the last frame."""
    out = dict(sample)
    for key in ("images", "gray", "scribbles", "memory_scribbles", "ds_scribbles", "ignore_regions"):
        out[key] = sample[key].flip(0)
    out["info"] = dict(sample["info"], frames=sample["info"]["frames"].flip(0))
    return out
