"""Object pasting (rhmnet/data/composition.py) and the training option that composes clips with it
(DATASETS.PASTE_OBJECTS_PROBABILITY): exact labels, occlusion order, at most 10 objects, scribbles inside
their own objects, determinism, and the option's checks."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rhmnet.config import Config, ConfigError, load_config
from rhmnet.data.build import build_train_dataset
from rhmnet.data.composition import (
    CompositionOptions,
    PasteTransform,
    compose_clip,
    largest_id,
    object_ids,
    paste_objects,
)
from rhmnet.data.io import DatasetError
from rhmnet.data.strokes import ScribbleStyle, distance_to_objects, scribble_from_labels
from rhmnet.data.video import VideoScribbleDataset
from rhmnet.labels import BACKGROUND, MAX_OBJECTS
from tests.data.test_datasets import check_sample

PASTE = ("DATASETS.PASTE_OBJECTS_PROBABILITY=1.0", "DATASETS.PASTE_MAX_OBJECTS=3")


def random_frames(count: int, height: int, width: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8) for _ in range(count)]


def test_paste_labels_are_the_moved_masks_exactly() -> None:
    """An integer offset at scale 1 moves the donor mask by whole pixels: the composed labels and pixels are
    checked against that shifted mask, pixel by pixel, on every frame (the donor moves, the offset not)."""
    frames, donor_frames = random_frames(3, 40, 60, 0), random_frames(3, 40, 60, 1)
    labels, donor_labels = [], []
    for t in range(3):
        label = np.zeros((40, 60), np.uint8)
        label[10:30, 10:30] = 1
        label[0:4, 0:4] = 255  # void
        labels.append(label)
        donor = np.zeros((40, 60), np.uint8)
        donor[5 + t : 15 + t, 5:25] = 1  # moves down one pixel a frame
        donor[30:35, 40:50] = 2  # not pasted
        donor_labels.append(donor)
    out_frames, out_labels, pasted = paste_objects(
        frames, labels, donor_frames, donor_labels, {1: 3}, PasteTransform(1.0, 12.0, 8.0)
    )
    for t in range(3):
        moved = np.zeros((40, 60), bool)
        moved[13 + t : 23 + t, 17:37] = True
        expected = labels[t].copy()
        expected[moved] = 3
        assert np.array_equal(out_labels[t], expected)
        assert np.array_equal(pasted[t], np.where(moved, 3, 0))
        assert np.array_equal(out_frames[t][moved], donor_frames[t][5 + t : 15 + t, 5:25].reshape(-1, 3))
        assert np.array_equal(out_frames[t][~moved], frames[t][~moved])
        assert np.array_equal(labels[t][10:30, 10:30], np.ones((20, 20), np.uint8))  # inputs untouched


def test_scaled_paste_keeps_labels_exact() -> None:
    frames, donor_frames = random_frames(2, 64, 64, 2), random_frames(2, 64, 64, 3)
    labels = [np.zeros((64, 64), np.uint8) for _ in range(2)]
    donor = np.zeros((64, 64), np.uint8)
    cv2.circle(donor, (20, 20), 10, 1, -1)
    _, out_labels, pasted = paste_objects(frames, labels, donor_frames, [donor, donor], {1: 1},
                                          PasteTransform(2.0, 0.0, 0.0))
    for label, mask in zip(out_labels, pasted):
        assert np.array_equal(label, mask)
        assert abs((mask == 1).sum() / (donor == 1).sum() - 4.0) < 0.3


def test_later_pastes_occlude_earlier_objects() -> None:
    """Each paste is in front: where two overlap the later id wins, and the target's own object keeps only
    the pixels nobody covers. compose_clip's result equals replaying its pastes in order."""
    frames = random_frames(3, 96, 128, 4)
    labels = []
    for _ in range(3):
        label = np.zeros((96, 128), np.uint8)
        label[30:70, 40:90] = 1
        labels.append(label)
    donors = []
    for seed in (5, 6):
        donor_labels = []
        for _ in range(3):
            donor = np.zeros((96, 128), np.uint8)
            cv2.circle(donor, (60, 50), 22, 1, -1)
            donor_labels.append(donor)
        donors.append((random_frames(3, 96, 128, seed), donor_labels))
    options = CompositionOptions(size_range=(0.4, 0.5), min_area=50, keep_fraction=0.0)
    for seed in range(6):
        composition = compose_clip(frames, labels, donors, np.random.default_rng(seed), max_pasted=2,
                                   options=options)
        assert [p.new_ids for p in composition.pastes] == [(2,), (3,)]
        replay_frames, replay_labels, masks = list(frames), list(labels), []
        for paste in composition.pastes:
            donor_frames, donor_labels = donors[paste.donor]
            replay_frames, replay_labels, pasted = paste_objects(
                replay_frames, replay_labels, donor_frames, donor_labels,
                dict(zip(paste.source_ids, paste.new_ids)), paste.transform)
            masks.append(pasted)
        for t in range(3):
            assert np.array_equal(composition.labels[t], replay_labels[t])
            assert np.array_equal(composition.frames[t], replay_frames[t])
            first, second = masks[0][t] > 0, masks[1][t] > 0
            assert (composition.labels[t][second] == 3).all()  # the last paste is in front everywhere
            assert (composition.labels[t][first & ~second] == 2).all()
            own = labels[t] == 1
            assert np.array_equal(composition.labels[t] == 1, own & ~first & ~second)


def test_at_most_ten_objects() -> None:
    frames = random_frames(2, 80, 200, 7)
    labels = [np.zeros((80, 200), np.uint8) for _ in range(2)]
    for label in labels:
        for obj in range(1, 10):  # nine objects of the clip's own
            label[5:25, 20 * obj - 18 : 20 * obj - 4] = obj
    donor_labels = [np.zeros((80, 200), np.uint8) for _ in range(2)]
    for donor in donor_labels:
        donor[40:70, 10:40], donor[40:70, 60:90], donor[40:70, 120:150] = 1, 2, 3
    donors = [(random_frames(2, 80, 200, 8), donor_labels)] * 3
    options = CompositionOptions(size_range=(0.3, 0.4), min_area=20, keep_fraction=0.0)
    composition = compose_clip(frames, labels, donors, np.random.default_rng(0), max_pasted=9, options=options)
    assert sum(len(p.new_ids) for p in composition.pastes) == 1 and largest_id(composition.labels) == MAX_OBJECTS
    assert all(max(object_ids(label)) <= MAX_OBJECTS for label in composition.labels)
    full = [np.where(label > 0, label, 10).astype(np.uint8) for label in labels]  # object 10 fills the rest
    assert not compose_clip(frames, full, donors, np.random.default_rng(0), 9, options).pastes


def test_background_margin_keeps_strokes_off_objects() -> None:
    labels = np.zeros((120, 160), np.uint8)
    cv2.circle(labels, (60, 60), 25, 1, -1)
    labels[100:, 140:] = 255
    style = ScribbleStyle(radius=(2, 3), background_margin=20.0)
    for seed in range(4):
        scribble, skipped, has_background = scribble_from_labels(labels, [1], 2, np.random.default_rng(seed), style)
        assert has_background and not skipped
        assert (labels[scribble == 1] == 1).all()
        assert distance_to_objects(labels)[scribble == 2].min() >= 20


def composed_dataset(make_cfg: Callable[..., Config], *extra: str) -> VideoScribbleDataset:
    """The DAVIS-layout dataset of a composing mix (the synthetic videos, with dense masks)."""
    mix = build_train_dataset(make_cfg(*PASTE, "DATASETS.SAMPLE_PROBABILITY=[0,1]", *extra), "video")
    (dataset,) = mix.datasets
    return dataset


def test_composed_clips_scribble_each_object_inside_itself(make_cfg: Callable[..., Config]) -> None:
    dataset = composed_dataset(make_cfg)
    rng = np.random.default_rng(0)
    clips, several = 0, 0
    while clips < 6:
        clip = dataset.try_composed_clip(int(rng.integers(len(dataset))), rng)
        if clip is None:
            continue
        clips += 1
        assert "+" in clip.name and len(clip.frames) == len(clip.scribbles) == len(clip.dense) == 3
        for scribble, dense in zip(clip.scribbles, clip.dense):
            assert scribble.shape == dense.shape == (64, 64)
            for obj in object_ids(scribble):
                if obj != BACKGROUND:
                    assert (dense[scribble == obj] == obj).all()  # each object's strokes inside itself
            assert (dense[scribble == BACKGROUND] == 0).all()  # background strokes on background only
            assert largest_id([dense]) <= MAX_OBJECTS
        several += len(object_ids(clip.dense[0])) >= 2
    assert several >= 3


@pytest.mark.parametrize("layout", ["davis", "youtube"])
def test_composed_samples_keep_the_contract_and_the_seed(make_cfg: Callable[..., Config], layout: str) -> None:
    weights = "[0,1]" if layout == "davis" else "[1,0]"
    cfg = make_cfg(*PASTE, f"DATASETS.SAMPLE_PROBABILITY={weights}")
    first, second = build_train_dataset(cfg, "video"), build_train_dataset(cfg, "video")
    first.reseed(5)
    second.reseed(5)
    for index in range(3):
        sample, again = first[index], second[index]
        check_sample(sample)
        assert "+" in sample["info"]["name"]
        assert all(torch.equal(sample[k], again[k]) for k in ("images", "scribbles", "memory_scribbles"))
    assert first.datasets[0].stats["composed_clips"] >= 3


def test_pasting_off_changes_nothing(make_cfg: Callable[..., Config]) -> None:
    """With probability 0 no random number is drawn for pasting: the samples are the default config's."""
    plain = build_train_dataset(make_cfg(), "video")
    off = build_train_dataset(make_cfg("DATASETS.PASTE_MAX_OBJECTS=5"), "video")
    plain.reseed(3)
    off.reseed(3)
    for index in range(3):
        assert torch.equal(plain[index]["scribbles"], off[index]["scribbles"])
    assert not off.datasets[0].paste_sources


def test_pasting_is_off_with_a_warning_without_dense_masks(make_cfg: Callable[..., Config],
                                                           synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    davis = tmp_path / "DAVIS"
    shutil.copytree(synthetic_roots["davis"], davis, ignore=shutil.ignore_patterns("Annotations"))
    cfg = make_cfg(*PASTE, "DATASETS.SAMPLE_PROBABILITY=[0,1]", f"DATASETS.DAVIS.PATH={davis}")
    with pytest.warns(UserWarning, match="object pasting off for this dataset: .*needs dense masks"):
        dataset = build_train_dataset(cfg, "video")
    davis_videos = dataset.datasets[-1]
    assert not davis_videos.paste_sources
    dataset.reseed(0)
    assert all(not dataset[i]["info"]["name"].count("+") for i in range(3))  # plain clips, no composed ones
    with pytest.raises(DatasetError, match="object pasting is off"):
        davis_videos.try_composed_clip(0, np.random.default_rng(0))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("DATASETS.PASTE_OBJECTS_PROBABILITY=1.5", r"PASTE_OBJECTS_PROBABILITY: must be in \[0, 1\]"),
        ("DATASETS.PASTE_OBJECTS_PROBABILITY=-0.1", r"PASTE_OBJECTS_PROBABILITY: must be in \[0, 1\]"),
        ("DATASETS.PASTE_MAX_OBJECTS=0", r"PASTE_MAX_OBJECTS: must be in \[1, 9\]"),
        ("DATASETS.PASTE_MAX_OBJECTS=10", r"PASTE_MAX_OBJECTS: must be in \[1, 9\]"),
    ],
)
def test_paste_keys_are_checked_at_load(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("lite", [override])


@pytest.mark.parametrize("name", ["authors_default", "video_training", "pre_training", "small_synthetic"])
def test_paper_configs_do_not_paste(name: str) -> None:
    assert load_config(name).DATASETS.PASTE_OBJECTS_PROBABILITY == 0.0


def test_lite_pastes_into_half_the_clips() -> None:
    """RHMNet-Lite's choice by held-out validation (docs/generalisation.md)."""
    cfg = load_config("lite")
    assert cfg.DATASETS.PASTE_OBJECTS_PROBABILITY == 0.5 and cfg.MODEL.LABEL_READOUT == "features"
