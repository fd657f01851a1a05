"""Scribble synthesis from dense masks and the synthetic dataset generator."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from rhmnet.data.io import read_json, read_palette_png, read_scribble
from rhmnet.dataprep.scribble_synthesis import ScribbleStyle, rng_for, scribble_from_labels
from rhmnet.dataprep.synthetic_videos import make_synthetic_dataset, parse_texture_spread, render_video, texture
from rhmnet.labels import remap_coco_scribble


def _labels() -> np.ndarray:
    labels = np.zeros((120, 160), dtype=np.uint8)
    cv2.ellipse(labels, (50, 60), (35, 18), 30, 0, 360, 1, -1)
    cv2.rectangle(labels, (100, 20), (150, 100), 2, -1)
    labels[5:8, 5:9] = 3  # 12 pixels: too small
    labels[110:, 150:] = 255  # void
    return labels


def test_strokes_lie_inside_their_regions() -> None:
    labels = _labels()
    for seed in range(5):
        scribble, skipped, has_background = scribble_from_labels(labels, [1, 2, 3], 4, rng_for(seed, "t"))
        assert has_background and skipped == [(3, 12)]
        assert (labels[scribble == 1] == 1).all() and (scribble == 1).sum() > 30
        assert (labels[scribble == 2] == 2).all() and (scribble == 2).sum() > 30
        assert (labels[scribble == 4] == 0).all()  # background strokes avoid objects and void
        assert not (scribble == 3).any()
        # strokes are thin lines, not filled regions
        assert (scribble == 1).sum() < 0.6 * (labels == 1).sum()


def test_synthesis_is_deterministic() -> None:
    labels = _labels()
    style = ScribbleStyle(radius=(1, 3))
    first = scribble_from_labels(labels, [1, 2], 3, rng_for(7, "a"), style)[0]
    assert np.array_equal(first, scribble_from_labels(labels, [1, 2], 3, rng_for(7, "a"), style)[0])
    assert not np.array_equal(first, scribble_from_labels(labels, [1, 2], 3, rng_for(8, "a"), style)[0])


def test_synthetic_layouts(synthetic_roots: dict[str, Path]) -> None:
    davis, ytb, coco = synthetic_roots["davis"], synthetic_roots["youtube"], synthetic_roots["coco"]
    train = (davis / "ImageSets" / "2017" / "train.txt").read_text().split()
    assert len(train) == 5 and len((davis / "ImageSets" / "2017" / "val.txt").read_text().split()) == 2
    seq = train[0]
    assert len(list((davis / "JPEGImages" / "480p" / seq).glob("*.jpg"))) == 12
    annotation = read_palette_png(davis / "Annotations" / "480p" / seq / "00000.png")
    num_objects = int(annotation.max())
    for group in range(5):
        scribble = read_scribble(davis / f"valid_scribbles{group}" / f"{seq}.bmp")
        assert int(scribble.max()) == num_objects + 1  # background value N+1
    assert len(list((davis / "train_scribbles" / seq).glob("*.bmp"))) == 12
    # YouTube-VOS: meta.json, frames 5 apart, valid annotations only on first appearances
    for split in ("train", "valid"):
        meta = read_json(ytb / split / "meta.json")["videos"]
        assert meta
    valid_meta = read_json(ytb / "valid" / "meta.json")["videos"]
    for video, entry in valid_meta.items():
        firsts = {obj["frames"][0] for obj in entry["objects"].values()}
        annotated = {p.stem for p in (ytb / "valid" / "Annotations" / video).glob("*.png")}
        assert annotated == firsts
        assert {p.stem for p in (ytb / "valid_scribbles" / video).glob("*.bmp")} == firsts
    train_meta = read_json(ytb / "train" / "meta.json")["videos"]
    video = sorted(train_meta)[0]
    frames = sorted(p.stem for p in (ytb / "train" / "JPEGImages" / video).glob("*.jpg"))
    assert frames[:3] == ["00000", "00005", "00010"]
    late = [obj["frames"][0] for e in {**train_meta, **valid_meta}.values() for obj in e["objects"].values()]
    assert any(first != "00000" for first in late), "some object enters late"
    # COCO: scribble JSON with num_objects = N + 1 (background value)
    entries = read_json(coco / "COCO_scribbles.json")["images"]
    assert entries and (coco / "annotations" / "instances_train.json").is_file()
    for entry in entries:
        raw = read_scribble(coco / "scribbles" / entry["anno_name"], max_value=None)
        assert int(raw.max()) == entry["num_objects"]
        remapped = remap_coco_scribble(raw, entry["num_objects"])
        assert (remapped == 11).any() and set(np.unique(remapped)) <= set(range(entry["num_objects"])) | {11}


def test_generator_is_deterministic_and_seeded(tmp_path: Path) -> None:
    kwargs = {"num_train": 1, "num_val": 1, "size": (64, 96), "frames": 4, "layouts": ("davis", "youtube")}
    a = make_synthetic_dataset(tmp_path / "a", seed=3, **kwargs)
    make_synthetic_dataset(tmp_path / "b", seed=3, **kwargs)
    c = make_synthetic_dataset(tmp_path / "c", seed=4, **kwargs)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)
    jpg = Path("JPEGImages/480p/synth-000/00000.jpg")
    assert (a["davis"] / jpg).read_bytes() != (c["davis"] / jpg).read_bytes()
    assert read_palette_png(a["davis"] / "Annotations/480p/synth-000/00000.png").shape == (64, 96)
    assert json.loads((a["youtube"] / "train" / "meta.json").read_text())["videos"]


def test_youtube_object_range_sets_the_object_count_of_every_video(tmp_path: Path) -> None:
    kwargs = {"num_train": 6, "num_val": 1, "size": (64, 64), "frames": 3, "layouts": ("youtube",)}
    roots = make_synthetic_dataset(tmp_path / "multi", youtube_objects=(2, 3), **kwargs)
    counts = [len(v["objects"]) for v in read_json(roots["youtube"] / "train" / "meta.json")["videos"].values()]
    assert len(counts) == 6 and all(2 <= c <= 3 for c in counts)
    roots = make_synthetic_dataset(tmp_path / "single", youtube_objects=(1, 1), **kwargs)
    counts = [len(v["objects"]) for v in read_json(roots["youtube"] / "train" / "meta.json")["videos"].values()]
    assert counts == [1] * 6
    with pytest.raises(ValueError, match="min_objects"):
        render_video(64, 64, 2, rng_for(0, "x"), late_entries=False, min_objects=3, max_objects=2)


def test_texture_spread_sets_the_contrast_inside_a_texture() -> None:
    """A small spread gives textures with weak inner edges; 'none' draws two independent colours."""

    def inner_contrast(spread: float | None) -> float:
        stds = [texture(64, 64, rng_for(seed, "texture"), spread).reshape(-1, 3).std(0).mean() for seed in range(20)]
        return float(np.mean(stds))

    flat, default, busy = inner_contrast(0.0), inner_contrast(40.0), inner_contrast(None)
    assert flat < 10  # grain only
    assert flat < default < busy
    assert parse_texture_spread("None") is None and parse_texture_spread("12.5") == 12.5
