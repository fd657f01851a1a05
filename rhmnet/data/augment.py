"""Clip augmentation with OpenCV: the same geometric transform for a frame and its label map (bilinear
for frames, nearest for labels). Randomness always comes from an explicit ``np.random.Generator``.

Video clips (as the authors train them): short side to 480, clip flip, per-frame random affine, one random
resize for the clip and a crop window that covers the labelled pixels and drifts from frame to frame.
COCO pseudo-clips: short side to 480, flip, perspective (or affine) warps of the single image, and one
crop window shared by all frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from rhmnet.labels import BACKGROUND

Frames = list[np.ndarray]  # uint8 [H, W, 3] each
Labels = list[np.ndarray]  # uint8 [H, W] each

MAX_CROP_TRIES = 21
CROP_JITTER = 20  # pixels per frame of the crop window's random walk


def _pil_nearest_sources(in_size: int, out_size: int) -> np.ndarray:
    """Source index of each output pixel along one axis, as Pillow's NEAREST resize picks it: the sample
    position starts at half a step (step = in/out) and advances by one step per pixel (summed in double
    precision, in that order), then is truncated."""
    step = in_size / out_size
    increments = np.full(out_size, step, dtype=np.float64)
    increments[0] = step * 0.5
    return np.minimum(np.cumsum(increments).astype(np.int64), in_size - 1)


def resize_label_nearest(label: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label map to ``size`` = (width, height) exactly as ``PIL.Image.resize(size, NEAREST)``
    does (the authors' label resizing). OpenCV's INTER_NEAREST samples half a pixel off from it."""
    width, height = size
    rows = _pil_nearest_sources(label.shape[0], height)
    cols = _pil_nearest_sources(label.shape[1], width)
    return np.ascontiguousarray(label[rows[:, None], cols[None, :]])


def resize_pair(image: np.ndarray, label: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Resize a frame (OpenCV bilinear) and its label map (PIL nearest, as the authors) to ``size`` =
    (width, height)."""
    if (image.shape[1], image.shape[0]) == size:
        return image, label
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), resize_label_nearest(label, size)


def resize_short_side(image: np.ndarray, label: np.ndarray, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Scale a frame and its labels so that the shorter side equals ``short_side`` (aspect kept)."""
    height, width = label.shape
    if height < width:
        size = (int(width / height * short_side), short_side)
    else:
        size = (short_side, int(height / width * short_side))
    return resize_pair(image, label, size)


def ensure_min_size(
    image: np.ndarray, label: np.ndarray, min_hw: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Upscale (aspect kept) a frame and its labels that are smaller than ``min_hw`` in either side."""
    height, width = label.shape
    factor = max(min_hw[0] / height, min_hw[1] / width)
    if factor <= 1:
        return image, label
    size = (max(min_hw[1], math.ceil(width * factor)), max(min_hw[0], math.ceil(height * factor)))
    return resize_pair(image, label, size)


def flip_clip(
    frames: Frames, labels: Labels, rng: np.random.Generator, p: float = 0.5
) -> tuple[Frames, Labels]:
    """Flip the whole clip horizontally with probability ``p``."""
    if rng.random() < p:
        frames = [np.ascontiguousarray(f[:, ::-1]) for f in frames]
        labels = [np.ascontiguousarray(lab[:, ::-1]) for lab in labels]
    return frames, labels


def flip_frames_independently(
    frames: Frames, labels: Labels, rng: np.random.Generator, start: int = 0, p: float = 0.5
) -> tuple[Frames, Labels]:
    """Flip each frame from index ``start`` on horizontally, independently, with probability ``p``."""
    frames, labels = list(frames), list(labels)
    for i in range(start, len(frames)):
        if rng.random() < p:
            frames[i] = np.ascontiguousarray(frames[i][:, ::-1])
            labels[i] = np.ascontiguousarray(labels[i][:, ::-1])
    return frames, labels


def _about_center(matrix: np.ndarray, cx: float, cy: float) -> np.ndarray:
    to_origin = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=np.float64)
    back = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], dtype=np.float64)
    return back @ matrix @ to_origin


# imgaug 0.4.0 turns its y-shear into an x-shear by rotating with this rounded value of pi / 2
IMGAUG_HALF_PI = 3.141592 / 2


def skimage_affine(
    scale: tuple[float, float] = (1.0, 1.0), rotation: float = 0.0, shear: float = 0.0,
    translation: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """3x3 matrix of scikit-image's ``AffineTransform(scale, rotation, shear, translation)`` in the
    convention of scikit-image 0.19 (the authors' version; angles in radians, x to the right, y down):
    the shear angle is added to the rotation of the y basis vector."""
    sx, sy = scale
    return np.array([
        [sx * math.cos(rotation), -sy * math.sin(rotation + shear), translation[0]],
        [sx * math.sin(rotation), sy * math.cos(rotation + shear), translation[1]],
        [0.0, 0.0, 1.0],
    ])


def imgaug_shear_matrix(shear_deg: float) -> np.ndarray:
    """Linear part (3x3, about the origin) of imgaug 0.4.0's ``Affine(shear=(a, b))`` for a sampled angle.

    A tuple samples one angle s and uses it as x- and y-shear. imgaug builds the y-shear as a skimage
    shear between rotations by -pi/2 and +pi/2, then applies skimage's x-shear: the result is
    ``[[cos s - sin^2 s, -sin s], [sin s cos s, cos s]]`` (determinant cos^2 s), close to a rotation by s.
    """
    s = math.radians(shear_deg)
    y_shear = skimage_affine(rotation=IMGAUG_HALF_PI) @ skimage_affine(shear=s) @ skimage_affine(
        rotation=-IMGAUG_HALF_PI)
    return skimage_affine(shear=s) @ y_shear


def random_affine_steps(
    height: int,
    width: int,
    rng: np.random.Generator,
    p: float = 0.5,
    rotate: float = 30.0,
    shear: float = 15.0,
    translate: int = 15,
    scale: tuple[float, float] = (0.8, 1.2),
) -> list[np.ndarray]:
    """The active steps of the authors' imgaug 0.4.0 affine pipeline as 3x3 matrices mapping input to output
    pixels, in the order they apply: rotation (±``rotate``°), shear (one angle in ±``shear``° used as x- and
    y-shear, :func:`imgaug_shear_matrix`), translation (±``translate`` px, x and y drawn separately) and
    scaling (x and y drawn separately), each active with probability ``p``, in random order, about the image
    centre ((W-1)/2, (H-1)/2)."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    steps: list[np.ndarray] = []
    if rng.random() < p:
        angle = math.radians(rng.uniform(-rotate, rotate))
        cos, sin = math.cos(angle), math.sin(angle)
        steps.append(_about_center(np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1.0]]), cx, cy))
    if rng.random() < p:
        steps.append(_about_center(imgaug_shear_matrix(rng.uniform(-shear, shear)), cx, cy))
    if rng.random() < p:
        tx, ty = rng.integers(-translate, translate + 1, size=2)
        steps.append(np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]]))
    if rng.random() < p:
        sx, sy = rng.uniform(scale[0], scale[1], size=2)
        steps.append(_about_center(np.array([[sx, 0, 0], [0, sy, 0], [0, 0, 1.0]]), cx, cy))
    return [steps[index] for index in rng.permutation(len(steps))]


def random_affine_matrix(height: int, width: int, rng: np.random.Generator, **ranges: Any) -> np.ndarray:
    """The 2x3 matrix of :func:`random_affine_steps` (``ranges``: its keyword arguments) as one combined
    warp: imgaug warps once per active step, each time filling the outside with zeros
    (docs/differences.md)."""
    matrix = np.eye(3)
    for step in random_affine_steps(height, width, rng, **ranges):
        matrix = step @ matrix
    return matrix[:2]


def warp_affine_pair(
    image: np.ndarray, label: np.ndarray, matrix: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a 2x3 affine matrix to a frame (bilinear) and its labels (nearest); outside is 0."""
    if np.allclose(matrix, np.eye(3)[:2]):
        return image, label
    size = (label.shape[1], label.shape[0])
    border = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    return (
        cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, **border),
        cv2.warpAffine(label, matrix, size, flags=cv2.INTER_NEAREST, **border),
    )


def warp_perspective_pair(
    image: np.ndarray, label: np.ndarray, homography: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a 3x3 homography to a frame (bilinear) and its labels (nearest); outside is 0."""
    size = (label.shape[1], label.shape[0])
    border = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    return (
        cv2.warpPerspective(image, homography, size, flags=cv2.INTER_LINEAR, **border),
        cv2.warpPerspective(label, homography, size, flags=cv2.INTER_NEAREST, **border),
    )


def random_affine_frames(frames: Frames, labels: Labels, rng: np.random.Generator) -> tuple[Frames, Labels]:
    """Independent random affine transform per frame (see :func:`random_affine_matrix`)."""
    out_frames, out_labels = [], []
    for image, label in zip(frames, labels):
        matrix = random_affine_matrix(label.shape[0], label.shape[1], rng)
        image, label = warp_affine_pair(image, label, matrix)
        out_frames.append(image)
        out_labels.append(label)
    return out_frames, out_labels


def is_valid_crop(label: np.ndarray, minimum_area: int) -> bool:
    """A cropped label map is usable when it keeps > ``minimum_area`` pixels of background scribble and
    > ``minimum_area`` pixels of object scribble (all objects together)."""
    background = int(np.count_nonzero(label == BACKGROUND))
    objects = int(np.count_nonzero(label)) - background
    return background > minimum_area and objects > minimum_area


def _window_start(low: int, high: int, size: int, extent: int, rng: np.random.Generator) -> int:
    """Start of a window of ``size`` in [0, extent) covering [low, high) as far as possible."""
    if high - low > size:
        return int(rng.integers(low, high - size + 1))
    if high - low == size:
        return low
    return int(rng.integers(max(0, high - size), min(low, extent - size) + 1))


def _labelled_box(labels: Labels, values: Sequence[int] | None = None) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) bounding box of every labelled pixel of the clip (only of the label ``values`` when
    given; 0-size box if none)."""
    union = np.zeros(labels[0].shape, dtype=np.uint8)
    for label in labels:
        union |= ((label > 0) if values is None else np.isin(label, values)).astype(np.uint8)
    x, y, w, h = cv2.boundingRect(union)
    return x, y, x + w, y + h


def random_crop_windows(
    labels: Labels,
    crop_hw: Sequence[int],
    minimum_area: int,
    rng: np.random.Generator,
    jitter: int = CROP_JITTER,
    max_tries: int = MAX_CROP_TRIES,
    cover_values: Sequence[int] | None = None,
) -> list[tuple[int, int]] | None:
    """Top-left corners (y, x), one per frame, of ``crop_hw`` windows that cover the labelled pixels of
    the clip (those of ``cover_values`` when given), drift by a cumulative ±``jitter`` random walk (0: one
    shared window) and are valid for every frame (:func:`is_valid_crop`). ``None`` after ``max_tries``
    failed tries."""
    crop_h, crop_w = crop_hw
    height, width = labels[0].shape
    if height < crop_h or width < crop_w:
        raise ValueError(f"frame {height}x{width} smaller than the crop {crop_h}x{crop_w}")
    x0, y0, x1, y1 = _labelled_box(labels, cover_values)
    for _ in range(max_tries):
        top = _window_start(y0, y1, crop_h, height, rng)
        left = _window_start(x0, x1, crop_w, width, rng)
        windows: list[tuple[int, int]] = []
        for label in labels:
            if jitter:
                top = min(max(0, int(rng.integers(top - jitter, top + jitter + 1))), height - crop_h)
                left = min(max(0, int(rng.integers(left - jitter, left + jitter + 1))), width - crop_w)
            if not is_valid_crop(label[top : top + crop_h, left : left + crop_w], minimum_area):
                break
            windows.append((top, left))
        else:
            return windows
    return None


def crop_clip(
    frames: Frames, labels: Labels, windows: Sequence[tuple[int, int]], crop_hw: Sequence[int]
) -> tuple[Frames, Labels]:
    """Cut each frame and label map at its window."""
    crop_h, crop_w = crop_hw
    out_frames = [f[t : t + crop_h, s : s + crop_w] for f, (t, s) in zip(frames, windows)]
    out_labels = [lab[t : t + crop_h, s : s + crop_w] for lab, (t, s) in zip(labels, windows)]
    return out_frames, out_labels


def random_sized_crop(
    frames: Frames,
    labels: Labels,
    crop_hw: Sequence[int],
    minimum_area: int,
    rng: np.random.Generator,
    scale_range: tuple[float, float] = (0.8, 1.1),
    max_tries: int = MAX_CROP_TRIES,
    cover_values: Sequence[int] | None = None,
) -> tuple[Frames, Labels] | None:
    """One random rescale for the clip (each side at least the crop), then drifting crop windows (covering
    the pixels of ``cover_values`` when given, else every labelled pixel)."""
    factor = rng.uniform(*scale_range)
    resized = [
        resize_pair(
            image,
            label,
            (max(crop_hw[1], int(label.shape[1] * factor)), max(crop_hw[0], int(label.shape[0] * factor))),
        )
        for image, label in zip(frames, labels)
    ]
    frames, labels = [r[0] for r in resized], [r[1] for r in resized]
    windows = random_crop_windows(labels, crop_hw, minimum_area, rng, max_tries=max_tries, cover_values=cover_values)
    if windows is None:
        return None
    return crop_clip(frames, labels, windows, crop_hw)


def augment_video_clip(
    frames: Frames,
    labels: Labels,
    crop_hw: Sequence[int],
    minimum_area: int,
    rng: np.random.Generator,
    cover_values: Sequence[int] | None = None,
) -> tuple[Frames, Labels] | None:
    """Clip flip, per-frame random affine, random sized crop (its windows cover the pixels of
    ``cover_values`` when given, else every labelled pixel); ``None`` when no valid crop was found."""
    frames, labels = flip_clip(frames, labels, rng)
    frames, labels = random_affine_frames(frames, labels, rng)
    return random_sized_crop(frames, labels, crop_hw, minimum_area, rng, cover_values=cover_values)


def _corner_offsets(
    height: int, width: int, divisor: int, rng: np.random.Generator, signed: bool
) -> np.ndarray:
    """Integer offsets [4, 2] for the four corners: in ±size/divisor (signed) or [0, size/divisor]."""
    x_low, y_low = ((-width) // divisor, (-height) // divisor) if signed else (0, 0)
    xs = rng.integers(x_low, width // divisor + 1, size=4)
    ys = rng.integers(y_low, height // divisor + 1, size=4)
    return np.stack([xs, ys], axis=1).astype(np.float64)


def coco_pseudo_clip(
    image: np.ndarray,
    label: np.ndarray,
    clip_length: int,
    affine_range: Sequence[int],
    mode: str,
    rng: np.random.Generator,
) -> tuple[Frames, Labels]:
    """A pseudo-clip from one image: frame 0 unwarped; frame 1 warped by moving the four corners by
    integers in ±size/affine_range[0]; each later frame adds U[0, size/affine_range[i]] to the previous
    offsets in their direction, warped from the original image. ``mode``: 'perspective' or 'affine'."""
    if mode not in ("perspective", "affine"):
        raise ValueError(f"unknown COCO transform mode {mode!r} (expected 'perspective' or 'affine')")
    height, width = label.shape
    corners = np.array([[0, 0], [0, height - 1], [width - 1, height - 1], [width - 1, 0]], dtype=np.float64)
    frames, labels = [image], [label]
    offsets = np.zeros((4, 2))
    for i in range(clip_length - 1):
        divisor = int(affine_range[min(i, len(affine_range) - 1)])
        if i == 0:
            offsets = _corner_offsets(height, width, divisor, rng, signed=True)
        else:
            offsets = offsets + _corner_offsets(height, width, divisor, rng, signed=False) * np.sign(offsets)
        source = (corners + offsets).astype(np.float32)
        if mode == "perspective":
            homography = cv2.getPerspectiveTransform(source, corners.astype(np.float32))
            warped = warp_perspective_pair(image, label, homography)
        else:
            design = np.hstack([source, np.ones((4, 1), np.float32)]).astype(np.float64)
            solution, *_ = np.linalg.lstsq(design, corners, rcond=None)
            warped = warp_affine_pair(image, label, solution.T)
        frames.append(warped[0])
        labels.append(warped[1])
    return frames, labels
