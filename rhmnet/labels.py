"""Label conventions and label-map arithmetic shared by training and evaluation.

Label maps are uint8 [H, W]: 0 = unlabeled, 1..10 = objects, 11 = background (K = 12 channels once
one-hot encoded). Scribble files store object n as n and the background as N+1; the remapping rules
below turn them into label maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

NUM_CHANNELS = 12  # K
BACKGROUND = NUM_CHANNELS - 1  # 11
MAX_OBJECTS = NUM_CHANNELS - 2  # 10
DOWNSAMPLE_STRIDE = 4


def remap_video_scribble(scribble: np.ndarray) -> np.ndarray:
    """Video training files: the largest value present becomes the background 11 (even when that
    frame has no background scribble). An all-zero frame stays unlabeled."""
    out = scribble.astype(np.uint8, copy=True)
    if out.size:
        top = int(out.max())
        if top > 0:
            out[out == top] = BACKGROUND
    return out


def remap_coco_scribble(scribble: np.ndarray, num_objects: int) -> np.ndarray:
    """COCO files: the value equal to the JSON ``num_objects`` field is background (11); every other
    value >= 11 becomes unlabeled (0)."""
    out = scribble.astype(np.uint8, copy=True)
    background = scribble == num_objects
    out[out >= BACKGROUND] = 0
    out[background] = BACKGROUND
    return out


def remap_davis_eval_scribble(
    scribble: np.ndarray, with_bg: bool = False, num_objects: int | None = None
) -> np.ndarray:
    """DAVIS evaluation files: the background scribble becomes 11 with ``with_bg``, else 0.

    The background value is the largest value present (the authors' rule) unless ``num_objects`` is
    given, in which case it is ``num_objects + 1`` exactly (needed for files without background strokes,
    e.g. converted DAVIS interactive scribbles, where the largest value is an object).
    """
    out = scribble.astype(np.uint8, copy=True)
    if not out.size:
        return out
    background_value = int(out.max()) if num_objects is None else num_objects + 1
    if background_value > 0:
        out[scribble == background_value] = BACKGROUND if with_bg else 0
    return out


def remap_ytb_eval_scribble(scribble: np.ndarray, num_objects: int, with_bg: bool = False) -> np.ndarray:
    """YouTube-VOS evaluation files: value ``num_objects + 1`` (the background) becomes 0, or 11 with
    ``with_bg``; ``num_objects`` is the highest object id of the whole video."""
    out = scribble.astype(np.uint8, copy=True)
    out[scribble == num_objects + 1] = BACKGROUND if with_bg else 0
    return out


def one_hot(labels: np.ndarray, num_channels: int = NUM_CHANNELS) -> np.ndarray:
    """uint8 one-hot of a label map: [..., H, W] -> [..., K, H, W] with channel k = (labels == k)."""
    channels = np.arange(num_channels, dtype=labels.dtype).reshape((num_channels, 1, 1))
    return (labels[..., None, :, :] == channels).astype(np.uint8)


def area_downsample(maps: np.ndarray, stride: int = DOWNSAMPLE_STRIDE) -> np.ndarray:
    """Area-downsample uint8 binary maps [C, H, W] by ``stride`` to [C, H//stride, W//stride].

    Done in uint8 like the reference: the block average is rounded, so with stride 4 a cell is 1 only
    when at least 9 of its 16 pixels are set.
    """
    if maps.dtype != np.uint8:
        raise TypeError(f"area_downsample expects uint8 maps, got {maps.dtype}")
    _, height, width = maps.shape
    size = (width // stride, height // stride)  # OpenCV wants (width, height)
    resized = cv2.resize(np.ascontiguousarray(maps.transpose(1, 2, 0)), size, interpolation=cv2.INTER_AREA)
    return resized.reshape(size[1], size[0], -1).transpose(2, 0, 1).copy()


def ignore_band(onehot: np.ndarray, channels: Sequence[int], kernel_size: int) -> np.ndarray:
    """Ignore bands for a one-hot map [K, H, W]: for each listed channel, the scribble dilated by a
    ``kernel_size`` square minus the scribble itself; other channels stay 0."""
    band = np.zeros_like(onehot, dtype=np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel_size, kernel_size))
    for channel in channels:
        scribble = onehot[channel]
        band[channel] = cv2.dilate(scribble, kernel) * (1 - scribble)
    return band


def clip_targets(
    labels: np.ndarray, num_objects: int, dilate_kernel_size: int, stride: int = DOWNSAMPLE_STRIDE
) -> tuple[np.ndarray, np.ndarray]:
    """Targets of the reliable-region head for a clip of label maps [L, H, W].

    Returns (downsampled one-hot scribbles, downsampled ignore bands of the object channels 1..n),
    both uint8 binary [L, K, H/stride, W/stride].
    """
    ds_targets, ds_ignore = [], []
    for frame in labels:
        onehot = one_hot(frame)
        band = ignore_band(onehot, range(1, num_objects + 1), dilate_kernel_size)
        ds_targets.append(area_downsample(onehot, stride))
        ds_ignore.append(area_downsample(band, stride))
    return np.stack(ds_targets), np.stack(ds_ignore)


def object_ids(labels: np.ndarray) -> list[int]:
    """Object ids (1..10) present in a label map, ascending."""
    values = np.unique(labels)
    return [int(v) for v in values if 0 < v < BACKGROUND]


def relabel_selected(labels: np.ndarray, selected: Sequence[int], others_to_background: bool) -> np.ndarray:
    """Map selected object ids to channels 1..n (in the given order), keep background 11, and turn
    every other object into background (``others_to_background``) or unlabeled."""
    lut = np.zeros(256, dtype=np.uint8)
    if others_to_background:
        lut[1:BACKGROUND] = BACKGROUND
    lut[BACKGROUND] = BACKGROUND
    for channel, obj in enumerate(selected, start=1):
        lut[obj] = channel
    return lut[labels]
