"""Bad input gives a clear error naming the file, or (where the authors skip the item) a counted warning."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rhmnet.data.base import DatasetWarning
from rhmnet.data.coco import CocoScribbleDataset
from rhmnet.data.davis import DavisScribbleDataset
from rhmnet.data.io import DatasetError, write_scribble
from rhmnet.data.sample import ClipOptions
from rhmnet.data.youtube import YtbScribbleDataset

OPTIONS = ClipOptions(crop_size=(64, 64), minimum_area=20, resize_short_side=128)


@pytest.fixture
def davis_copy(synthetic_roots: dict[str, Path], tmp_path: Path) -> Path:
    """A writable copy of the synthetic DAVIS layout."""
    return Path(shutil.copytree(synthetic_roots["davis"], tmp_path / "DAVIS"))


@pytest.fixture
def coco_copy(synthetic_roots: dict[str, Path], tmp_path: Path) -> Path:
    return Path(shutil.copytree(synthetic_roots["coco"], tmp_path / "COCO"))


def coco_dataset(root: Path, options: ClipOptions = OPTIONS) -> CocoScribbleDataset:
    return CocoScribbleDataset(root / "images", root / "scribbles", root / "COCO_scribbles.json", options)


def first_train_video(root: Path) -> str:
    return (root / "ImageSets" / "2017" / "train.txt").read_text().split()[0]


def test_frame_and_scribble_counts_differ_is_a_counted_warning(davis_copy: Path) -> None:
    video = first_train_video(davis_copy)
    sorted((davis_copy / "train_scribbles" / video).glob("*.bmp"))[-1].unlink()
    expected = rf"skipped 1 of 5 .*counts differ.*{video} \(12 frames.*11 scribbles"
    with pytest.warns(DatasetWarning, match=expected):
        dataset = DavisScribbleDataset(davis_copy, OPTIONS)
    assert video not in [v.name for v in dataset.videos] and len(dataset) == 4


def test_every_video_unpaired_is_an_error(davis_copy: Path) -> None:
    shutil.rmtree(davis_copy / "train_scribbles")
    with pytest.warns(DatasetWarning), pytest.raises(DatasetError, match="no usable training videos"):
        DavisScribbleDataset(davis_copy, OPTIONS)


def test_listed_sequence_without_frames(davis_copy: Path) -> None:
    with open(davis_copy / "ImageSets" / "2017" / "train.txt", "a") as handle:
        handle.write("ghost-sequence\n")
    with pytest.raises(DatasetError, match=r"ghost-sequence.*missing folder .*480p/ghost-sequence"):
        DavisScribbleDataset(davis_copy, OPTIONS)


def test_missing_image_at_load_time(davis_copy: Path) -> None:
    dataset = DavisScribbleDataset(davis_copy, OPTIONS)
    for path in dataset.videos[0].images:
        path.unlink()
    with pytest.raises(DatasetError, match=r"missing image: .*\.jpg"):
        dataset.try_sample(0, np.random.default_rng(0))


def test_corrupt_scribble(davis_copy: Path) -> None:
    dataset = DavisScribbleDataset(davis_copy, OPTIONS)
    for path in dataset.videos[0].scribbles:
        path.write_bytes(b"BM not really a bitmap")
    with pytest.raises(DatasetError, match=r"cannot read .*\.bmp"):
        dataset.try_sample(0, np.random.default_rng(0))


def test_scribble_value_above_11(davis_copy: Path) -> None:
    dataset = DavisScribbleDataset(davis_copy, OPTIONS)
    for path in dataset.videos[0].scribbles:
        write_scribble(path, np.full((128, 128), 12, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"\.bmp: scribble value 12 above 11"):
        dataset.try_sample(0, np.random.default_rng(0))


def test_scribble_size_differs_from_frame(davis_copy: Path) -> None:
    dataset = DavisScribbleDataset(davis_copy, OPTIONS)
    for path in dataset.videos[0].scribbles:
        write_scribble(path, np.zeros((10, 10), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"\.bmp: scribble size 10x10 differs from frame"):
        dataset.try_sample(0, np.random.default_rng(0))


def test_empty_image_sets(davis_copy: Path, coco_copy: Path, tmp_path: Path) -> None:
    (davis_copy / "ImageSets" / "2017" / "train.txt").write_text("")
    with pytest.raises(DatasetError, match="empty image set"):
        DavisScribbleDataset(davis_copy, OPTIONS)
    (coco_copy / "COCO_scribbles.json").write_text(json.dumps({"images": []}))
    with pytest.raises(DatasetError, match=r"COCO_scribbles.json: empty image set"):
        coco_dataset(coco_copy)
    (tmp_path / "ytb" / "train" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(DatasetError, match="empty video set"):
        YtbScribbleDataset(tmp_path / "ytb", OPTIONS)
    with pytest.raises(DatasetError, match="missing frame folder"):
        YtbScribbleDataset(tmp_path / "nowhere", OPTIONS)


def test_coco_bad_entries(coco_copy: Path) -> None:
    json_path = coco_copy / "COCO_scribbles.json"
    data = json.loads(json_path.read_text())
    entry = data["images"][0]
    (coco_copy / "images" / entry["file_name"]).unlink()
    with pytest.raises(DatasetError, match=f"missing image: .*{entry['file_name']}"):
        coco_dataset(coco_copy).try_sample(0, np.random.default_rng(0))
    anno = coco_copy / "scribbles" / data["images"][1]["anno_name"]
    write_scribble(anno, np.full((128, 128), data["images"][1]["num_objects"] + 1, dtype=np.uint8))
    with pytest.raises(DatasetError, match=f"{anno.name}: scribble value .* above the background value"):
        coco_dataset(coco_copy).try_sample(1, np.random.default_rng(0))
    del data["images"][2]["anno_name"]
    json_path.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"images\[2\] lacks"):
        coco_dataset(coco_copy)
    json_path.write_text("{not json")
    with pytest.raises(DatasetError, match="COCO_scribbles.json: not valid JSON"):
        coco_dataset(coco_copy)


def test_nothing_valid_is_a_bounded_error(davis_copy: Path, coco_copy: Path) -> None:
    impossible = ClipOptions(crop_size=(64, 64), minimum_area=64 * 64, resize_short_side=128, max_draws=5)
    dataset = DavisScribbleDataset(davis_copy, impossible)
    with pytest.raises(DatasetError, match="DAVIS: no valid clip after 5 draws"):
        dataset[0]
    assert dataset.stats["invalid_draws"] == 5 and dataset.stats["invalid_crops"] == 5 * 11
    with pytest.raises(DatasetError, match="COCO: no valid clip after 5 draws"):
        coco_dataset(coco_copy, impossible)[0]
