"""Augmentation: frames and labels get the same geometry (nearest for labels), crops are valid, the
frame-gap curriculum bounds the sampled gaps."""

from __future__ import annotations

import numpy as np
import pytest

from rhmnet.data.augment import (
    augment_video_clip,
    coco_pseudo_clip,
    is_valid_crop,
    random_affine_matrix,
    random_crop_windows,
    resize_short_side,
    warp_affine_pair,
)
from rhmnet.data.video import sample_frame_indices


def _scene(height: int = 96, width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """A frame whose red square is object 1 and whose green bar is background scribble 11."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    label = np.zeros((height, width), dtype=np.uint8)
    image[30:60, 40:70] = (255, 0, 0)
    label[30:60, 40:70] = 1
    image[75:85, 10:120] = (0, 255, 0)
    label[75:85, 10:120] = 11
    return image, label


def test_affine_keeps_frames_and_labels_aligned() -> None:
    image, label = _scene()
    rng = np.random.default_rng(0)
    for _ in range(10):
        matrix = random_affine_matrix(*label.shape, rng, p=1.0)
        warped_image, warped_label = warp_affine_pair(image, label, matrix)
        assert set(np.unique(warped_label)) <= {0, 1, 11}  # nearest: no new label values
        inner = warped_label == 1
        inner &= np.roll(inner, 1, 0) & np.roll(inner, -1, 0) & np.roll(inner, 1, 1) & np.roll(inner, -1, 1)
        assert inner.any()
        assert (warped_image[inner, 0] > 200).all() and (warped_image[inner, 1] < 50).all()


def test_resize_short_side() -> None:
    image, label = _scene(96, 128)
    image, label = resize_short_side(image, label, 48)
    assert label.shape == (48, 64) and image.shape == (48, 64, 3)
    assert set(np.unique(label)) <= {0, 1, 11}


def test_crop_windows_are_valid_and_bounded() -> None:
    _, label = _scene()
    rng = np.random.default_rng(1)
    windows = random_crop_windows([label, label, label], (64, 64), 50, rng)
    assert windows is not None and len(windows) == 3
    for top, left in windows:
        assert 0 <= top <= 96 - 64 and 0 <= left <= 128 - 64
        assert is_valid_crop(label[top : top + 64, left : left + 64], 50)
    shared = random_crop_windows([label, label], (64, 64), 50, rng, jitter=0)
    assert shared is not None and shared[0] == shared[1]
    # nothing can satisfy an impossible minimum area: bounded tries, then None
    assert random_crop_windows([label], (64, 64), 10_000, rng) is None


def test_video_augmentation_output() -> None:
    image, label = _scene()
    rng = np.random.default_rng(2)
    results = [augment_video_clip([image] * 3, [label] * 3, (64, 64), 30, rng) for _ in range(5)]
    clips = [r for r in results if r is not None]
    assert clips
    for frames, labels in clips:
        assert [f.shape for f in frames] == [(64, 64, 3)] * 3
        assert [lab.shape for lab in labels] == [(64, 64)] * 3
        assert all(is_valid_crop(lab, 30) for lab in labels)


@pytest.mark.parametrize("mode", ["perspective", "affine"])
def test_coco_pseudo_clip(mode: str) -> None:
    image, label = _scene()
    frames, labels = coco_pseudo_clip(image, label, 3, (6, 8, 8), mode, np.random.default_rng(3))
    assert len(frames) == 3 and frames[0] is image and labels[0] is label
    assert not np.array_equal(labels[1], label) and not np.array_equal(labels[2], labels[1])
    assert all(set(np.unique(lab)) <= {0, 1, 11} for lab in labels)
    with pytest.raises(ValueError, match="transform mode"):
        coco_pseudo_clip(image, label, 3, (6, 8), "shear", np.random.default_rng(0))


@pytest.mark.parametrize("skip", [0, 1, 4, 25])
def test_frame_gaps_follow_the_curriculum(skip: int) -> None:
    rng = np.random.default_rng(skip)
    gaps = set()
    for _ in range(300):
        indices = sample_frame_indices(40, 3, skip, rng)
        assert 0 <= indices[0] and indices[-1] < 40
        gaps.update(np.diff(indices).tolist())
    assert min(gaps) >= 1 and max(gaps) == skip + 1
    # the cap keeps room for the remaining frames
    assert sample_frame_indices(3, 3, 10, rng) == [0, 1, 2]
