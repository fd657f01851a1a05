"""Label conventions: remapping rules, one-hot, uint8 area downsampling, ignore bands, object selection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rhmnet.data.sample import select_objects
from rhmnet.labels import (
    BACKGROUND,
    area_downsample,
    clip_targets,
    ignore_band,
    one_hot,
    relabel_selected,
    remap_coco_scribble,
    remap_davis_eval_scribble,
    remap_video_scribble,
    remap_ytb_eval_scribble,
)
from tests.conftest import shared_path


def test_video_remap_largest_value_becomes_background() -> None:
    scribble = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    assert remap_video_scribble(scribble).tolist() == [[0, 1, 2, BACKGROUND]]
    # a frame without background scribble: its largest value still becomes 11 (the authors' rule)
    assert remap_video_scribble(np.array([[0, 1, 2]], np.uint8)).tolist() == [[0, 1, BACKGROUND]]
    # an empty frame stays unlabeled
    assert remap_video_scribble(np.zeros((2, 2), np.uint8)).max() == 0


def test_coco_remap() -> None:
    scribble = np.array([[0, 1, 2, 11, 12, 13]], dtype=np.uint8)
    assert remap_coco_scribble(scribble, num_objects=13).tolist() == [[0, 1, 2, 0, 0, BACKGROUND]]
    assert remap_coco_scribble(np.array([[1, 3]], np.uint8), num_objects=3).tolist() == [[1, BACKGROUND]]


def test_eval_remaps() -> None:
    scribble = np.array([[0, 1, 2, 3]], dtype=np.uint8)
    assert remap_davis_eval_scribble(scribble).tolist() == [[0, 1, 2, 0]]
    assert remap_davis_eval_scribble(scribble, with_bg=True).tolist() == [[0, 1, 2, BACKGROUND]]
    # without background strokes, num_objects keeps the largest object
    assert remap_davis_eval_scribble(scribble, num_objects=3).tolist() == [[0, 1, 2, 3]]
    assert remap_ytb_eval_scribble(scribble, num_objects=2).tolist() == [[0, 1, 2, 0]]
    assert remap_ytb_eval_scribble(scribble, num_objects=2, with_bg=True).tolist() == [[0, 1, 2, BACKGROUND]]


def test_one_hot_channels() -> None:
    labels = np.array([[0, 1], [11, 3]], dtype=np.uint8)
    onehot = one_hot(labels)
    assert onehot.shape == (12, 2, 2) and onehot.dtype == np.uint8
    assert onehot.sum(0).tolist() == [[1, 1], [1, 1]]
    assert onehot[11, 1, 0] == 1 and onehot[3, 1, 1] == 1
    assert one_hot(np.zeros((3, 2, 2), np.uint8)).shape == (3, 12, 2, 2)


@pytest.mark.parametrize("count, expected", [(8, 0), (9, 1), (16, 1), (0, 0)])
def test_area_downsample_is_uint8_majority(count: int, expected: int) -> None:
    block = np.zeros((1, 4, 4), dtype=np.uint8)
    block.reshape(-1)[:count] = 1
    assert area_downsample(block).tolist() == [[[expected]]]


def test_area_downsample_non_square() -> None:
    maps = np.ones((12, 8, 16), dtype=np.uint8)
    assert area_downsample(maps).shape == (12, 2, 4)
    with pytest.raises(TypeError):
        area_downsample(maps.astype(np.float32))


def test_ignore_band_is_dilation_minus_scribble() -> None:
    onehot = one_hot(np.pad(np.ones((1, 1), np.uint8), 10))  # one pixel of object 1 in the middle
    band = ignore_band(onehot, [1], kernel_size=5)
    assert band[1].sum() == 24 and band[1, 10, 10] == 0
    assert band[[0, 2, 11]].sum() == 0


def test_relabel_selected() -> None:
    labels = np.array([[1, 2, 3, 11, 0]], dtype=np.uint8)
    assert relabel_selected(labels, [3, 1], True).tolist() == [[2, 11, 1, 11, 0]]
    assert relabel_selected(labels, [3, 1], False).tolist() == [[2, 0, 1, 11, 0]]


def test_select_objects_minimum_area_and_random_subset() -> None:
    frame = np.zeros((20, 20), dtype=np.uint8)
    for obj in range(1, 6):
        frame[obj * 3, :] = obj  # 20 pixels each
    frame[0, :5] = 6  # 5 pixels: too small
    rng = np.random.default_rng(0)
    assert select_objects(frame, None, 10, 10, rng) == [1, 2, 3, 4, 5]
    picks = {tuple(select_objects(frame, None, 3, 10, rng)) for _ in range(30)}
    assert all(len(p) == 3 and set(p) <= {1, 2, 3, 4, 5} for p in picks)
    assert len(picks) > 1 and any(list(p) != sorted(p) for p in picks)  # random subset, shuffled order
    last = frame.copy()
    last[last == 2] = 0
    assert 2 not in select_objects(frame, last, 10, 10, rng)


def test_targets_match_reference_outputs() -> None:
    """The reference training inputs were produced by the authors' code (35x35 dilation)."""
    data = torch.load(shared_path("reference", "reference_outputs.pt"), weights_only=False)["train_inputs"]
    labels = data["scribble_labels"].numpy()
    for b in range(labels.shape[0]):
        ds, ignore = clip_targets(labels[b], int(data["num_objects"][b]), dilate_kernel_size=35)
        assert np.array_equal(ds, data["ds_scribble_labels"][b].numpy().astype(np.uint8))
        assert np.array_equal(ignore, data["ignore_regions"][b].numpy().astype(np.uint8))
