"""COCO scribble pre-training set: pseudo-clips warped from single images.

Layout: ``<img_dir>/<file_name>``, ``<anno_dir>/<anno_name>`` (scribble ``.bmp``) and a JSON file
``{"images": [{"file_name", "anno_name", "num_objects", ...}, ...]}``; in a scribble file the value
equal to ``num_objects`` is the background (so ``num_objects`` counts the background too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rhmnet.data.augment import (
    coco_pseudo_clip,
    crop_clip,
    ensure_min_size,
    flip_clip,
    random_crop_windows,
    resize_short_side,
)
from rhmnet.data.base import SeededDataset
from rhmnet.data.io import DatasetError, read_image, read_json, read_scribble
from rhmnet.data.sample import ClipOptions, Sample, build_sample, make_info
from rhmnet.labels import remap_coco_scribble


@dataclass(frozen=True)
class CocoEntry:
    """One image of the scribble JSON."""

    file_name: str
    anno_name: str
    num_objects: int


def read_coco_scribble_json(path: str | Path) -> list[CocoEntry]:
    """The image entries of a COCO scribble JSON; missing fields or an empty list are errors."""
    data = read_json(path)
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list):
        raise DatasetError(f"{path}: expected an object with an 'images' list")
    if not images:
        raise DatasetError(f"{path}: empty image set (the 'images' list is empty)")
    entries = []
    for position, item in enumerate(images):
        try:
            entries.append(
                CocoEntry(str(item["file_name"]), str(item["anno_name"]), int(item["num_objects"]))
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(
                f"{path}: images[{position}] lacks a valid file_name/anno_name/num_objects ({exc!r})"
            ) from None
    return entries


class CocoScribbleDataset(SeededDataset):
    """Pseudo-clips of ``options.clip_length`` frames from COCO images with scribbles (the authors' "COCO
    pre-training"): short side resize, flip, perspective/affine warps, one shared crop window."""

    name = "COCO"

    def __init__(
        self,
        img_dir: str | Path,
        anno_dir: str | Path,
        json_path: str | Path,
        options: ClipOptions,
        transform_mode: str = "perspective",
        affine_range: tuple[int, ...] = (6, 8, 8),
    ) -> None:
        super().__init__(max_draws=options.max_draws)
        self.img_dir, self.anno_dir = Path(img_dir), Path(anno_dir)
        self.entries = read_coco_scribble_json(json_path)
        self.options = options
        self.transform_mode = transform_mode
        self.affine_range = tuple(int(a) for a in affine_range)

    def __len__(self) -> int:
        return len(self.entries)

    def item_name(self, index: int) -> str:
        return self.entries[index].file_name

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Image [H, W, 3] and remapped label map [H, W] (background 11, values >= 11 dropped)."""
        entry = self.entries[index]
        image_path, anno_path = self.img_dir / entry.file_name, self.anno_dir / entry.anno_name
        image = read_image(image_path)
        scribble = read_scribble(anno_path, max_value=None)
        if image.shape[:2] != scribble.shape:
            raise DatasetError(
                f"{anno_path}: scribble size {scribble.shape[1]}x{scribble.shape[0]} differs "
                f"from image {image_path} ({image.shape[1]}x{image.shape[0]})"
            )
        top = int(scribble.max()) if scribble.size else 0
        if top > entry.num_objects:
            raise DatasetError(
                f"{anno_path}: scribble value {top} above the background value "
                f"num_objects={entry.num_objects} given in the JSON"
            )
        return image, remap_coco_scribble(scribble, entry.num_objects)

    def try_sample(self, index: int, rng: np.random.Generator) -> Sample | None:
        """One pseudo-clip from image ``index``; ``None`` when no valid crop / object is found."""
        opts = self.options
        image, label = resize_short_side(*self.load(index), opts.resize_short_side)
        (image,), (label,) = flip_clip([image], [label], rng)
        image, label = ensure_min_size(image, label, opts.crop_size)
        frames, labels = coco_pseudo_clip(
            image, label, opts.clip_length, self.affine_range, self.transform_mode, rng
        )
        windows = random_crop_windows(labels, opts.crop_size, opts.minimum_area, rng, jitter=0)
        if windows is None:
            self.stats["invalid_crops"] += 1
            return None
        frames, labels = crop_clip(frames, labels, windows, opts.crop_size)
        info: dict[str, Any] = make_info(self.entries[index].file_name, range(opts.clip_length), self.name)
        sample = build_sample(frames, labels, opts, rng, info, flip_start=1)
        if sample is None:
            self.stats["no_object"] += 1
        return sample
