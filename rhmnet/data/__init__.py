"""Scribble datasets (COCO, DAVIS, YouTube-VOS), their file formats, stroke drawing (``strokes``) and object
pasting (``composition``). Training entry points: :func:`build_train_dataset` and :func:`set_skip`."""

from rhmnet.data.build import build_train_dataset, set_skip
from rhmnet.data.io import (
    DAVIS_PALETTE,
    DatasetError,
    read_davis_eval_scribble,
    read_image,
    read_palette_png,
    read_scribble,
    read_ytb_eval_scribble,
    write_palette_png,
    write_scribble,
)
from rhmnet.labels import BACKGROUND, NUM_CHANNELS

__all__ = [
    "BACKGROUND",
    "DAVIS_PALETTE",
    "DatasetError",
    "NUM_CHANNELS",
    "build_train_dataset",
    "read_davis_eval_scribble",
    "read_image",
    "read_palette_png",
    "read_scribble",
    "read_ytb_eval_scribble",
    "set_skip",
    "write_palette_png",
    "write_scribble",
]
