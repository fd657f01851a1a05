"""Training datasets on the synthetic layouts: the sample contract, label rules, curriculum, seeding,
mixing and DataLoader workers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset

from rhmnet.config import Config
from rhmnet.data.build import build_train_dataset, set_skip
from rhmnet.data.mixing import MixedClipDataset, join_side_by_side, mosaic_widths
from rhmnet.engine.data import EpochSeededDataset
from rhmnet.labels import BACKGROUND, area_downsample, one_hot
from rhmnet.model.backbones import IMAGENET_NORMALISATION
from tests.data.conftest import CROP

L = 3
K = 12


def check_sample(sample: dict, max_objects: int = 3) -> None:
    """The sample contract shared by all training datasets."""
    assert sample["images"].shape == (L, 3, CROP, CROP) and sample["images"].dtype == torch.float32
    assert sample["gray"].shape == (L, CROP, CROP) and sample["gray"].dtype == torch.float32
    for key in ("scribbles", "memory_scribbles"):
        assert sample[key].shape == (L, CROP, CROP) and sample[key].dtype == torch.uint8
    for key in ("ds_scribbles", "ignore_regions"):
        assert sample[key].shape == (L, K, CROP // 4, CROP // 4) and sample[key].dtype == torch.float32
        assert set(sample[key].unique().tolist()) <= {0.0, 1.0}
    n = int(sample["num_objects"])
    assert sample["num_objects"].dtype == torch.int64 and sample["num_objects"].dim() == 0
    assert 1 <= n <= max_objects
    allowed = set(range(n + 1)) | {BACKGROUND}
    scribbles, memory = sample["scribbles"].numpy(), sample["memory_scribbles"].numpy()
    assert set(np.unique(scribbles)) <= allowed and set(np.unique(memory)) <= allowed
    # memory equals the labels except where a non-selected object became background in the labels
    differ = scribbles != memory
    assert (scribbles[differ] == BACKGROUND).all() and (memory[differ] == 0).all()
    # every selected object has scribble on the clip's original first frame (the last one when flipped)
    frames = sample["info"]["frames"].tolist()
    first = memory[0] if frames[0] < frames[-1] else memory[-1]
    assert all((first == obj).sum() > 20 for obj in range(1, n + 1))
    # grey image from the un-normalised RGB
    mean, std = IMAGENET_NORMALISATION.tensors()  # the default config's ResNet-50
    rgb = sample["images"] * std + mean
    gray = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    assert torch.allclose(gray, sample["gray"], atol=1e-5)
    # targets derive from the training labels; ignore bands only on object channels
    for t in range(L):
        expected = area_downsample(one_hot(scribbles[t]))
        assert np.array_equal(sample["ds_scribbles"][t].numpy().astype(np.uint8), expected)
    assert sample["ignore_regions"][:, [0, *range(n + 1, K)]].sum() == 0
    info = sample["info"]
    assert isinstance(info["name"], str) and info["num_frames"] == L and info["frames"].shape == (L,)


@pytest.mark.parametrize("stage", ["pretrain", "video"])
def test_sample_contract(make_cfg: Callable[..., Config], stage: str) -> None:
    dataset = build_train_dataset(make_cfg(), stage)
    torch.manual_seed(0)
    seen = Counter()
    for index in range(10):
        sample = dataset[index]
        check_sample(sample)
        seen[sample["info"]["dataset"]] += 1
    expected = {"COCO"} if stage == "pretrain" else {"DAVIS", "YouTube-VOS"}
    assert set(seen) == expected


def test_coco_pseudo_clip_frame0_and_length(make_cfg: Callable[..., Config]) -> None:
    dataset = build_train_dataset(make_cfg(), "pretrain")
    assert len(dataset) == 14  # one sample per listed image (2 * (5 + 2) synthetic images)
    sample = dataset[0]
    assert sample["info"]["frames"].tolist() == [0, 1, 2] and sample["info"]["dataset"] == "COCO"


def test_each_video_dataset_alone(make_cfg: Callable[..., Config]) -> None:
    for weights, name in (("[1,0]", "YouTube-VOS"), ("[0,1]", "DAVIS")):
        dataset = build_train_dataset(make_cfg(f"DATASETS.SAMPLE_PROBABILITY={weights}"), "video")
        assert len(dataset.datasets) == 1
        torch.manual_seed(1)
        for index in range(4):
            sample = dataset[index]
            check_sample(sample)
            assert sample["info"]["dataset"] == name


def test_warmup_mix_by_epoch(make_cfg: Callable[..., Config]) -> None:
    """The first WARMUP_EPOCHS epochs draw by the warm-up weights, later epochs by SAMPLE_PROBABILITY; the
    trainer's epoch wrapper tells the mix its epoch, and loader workers see it."""
    cfg = make_cfg(
        "DATASETS.SAMPLE_PROBABILITY=[1,0]",
        "DATASETS.WARMUP_EPOCHS=2",
        "DATASETS.WARMUP_SAMPLE_PROBABILITY=[0,1]",
        "TRAIN.SAMPLES_PER_EPOCH=4",
    )
    dataset = EpochSeededDataset(build_train_dataset(cfg, "video"), seed=0)
    assert len(dataset.dataset.datasets) == 2  # DAVIS is opened for the warm-up although its main weight is 0
    for epoch, expected in ((0, "DAVIS"), (1, "DAVIS"), (2, "YouTube-VOS"), (5, "YouTube-VOS")):
        dataset.set_epoch(epoch)
        names = {batch["info"]["dataset"][0] for batch in DataLoader(dataset, batch_size=1, num_workers=2)}
        assert names == {expected}, epoch


@pytest.mark.parametrize(
    "overrides",
    [
        ("DATASETS.WARMUP_EPOCHS=1",),
        ("DATASETS.WARMUP_EPOCHS=1", "DATASETS.WARMUP_SAMPLE_PROBABILITY=[0,0]"),
        ("DATASETS.WARMUP_EPOCHS=1", "DATASETS.WARMUP_SAMPLE_PROBABILITY=[1,-1]"),
        ("DATASETS.WARMUP_EPOCHS=-1", "DATASETS.WARMUP_SAMPLE_PROBABILITY=[1,1]"),
    ],
)
def test_warmup_mix_errors(make_cfg: Callable[..., Config], overrides: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="WARMUP_SAMPLE_PROBABILITY|WARMUP_EPOCHS: must be in"):
        build_train_dataset(make_cfg(*overrides), "video")


def test_non_selected_objects(make_cfg: Callable[..., Config]) -> None:
    """With MAX_OBJECT_NUM=1 every other object is background in the labels and 0 in memory."""
    cfg = make_cfg("DATASETS.MAX_OBJECT_NUM=1", "DATASETS.CROP_SIZE=[128,128]")
    dataset = build_train_dataset(cfg, "pretrain")
    found = False
    for index in range(len(dataset)):
        dataset.reseed(index)
        sample = dataset.draw(index, dataset.rng())
        assert int(sample["num_objects"]) == 1
        differ = sample["scribbles"] != sample["memory_scribbles"]
        found |= bool(differ.any())
    assert found, "some synthetic image has more than one scribbled object"


def _gaps(dataset, draws: int) -> set[int]:
    return {int(g) for _ in range(draws) for g in torch.diff(dataset[0]["info"]["frames"]).abs().tolist()}


def test_change_skip_controls_frame_gap(make_cfg: Callable[..., Config]) -> None:
    cfg = make_cfg("DATASETS.SAMPLE_PROBABILITY=[0,1]", "DATASETS.VIDEO_TEMPORAL_FLIP=false")
    dataset = build_train_dataset(cfg, "video")
    torch.manual_seed(0)
    assert _gaps(dataset, 30) == {1}  # INIT_SKIP = 0: consecutive frames
    assert set_skip(dataset, 3)
    gaps = _gaps(dataset, 60)
    assert max(gaps) > 1 and max(gaps) <= 4
    assert set_skip(Subset(dataset, [0, 1]), 0) and _gaps(dataset, 20) == {1}


def test_youtube_skip_is_divided_by_5(make_cfg: Callable[..., Config]) -> None:
    cfg = make_cfg("DATASETS.SAMPLE_PROBABILITY=[1,0]", "DATASETS.VIDEO_TEMPORAL_FLIP=false")
    dataset = build_train_dataset(cfg, "video")
    set_skip(dataset, 4)
    assert dataset.datasets[0].skip == 0
    torch.manual_seed(0)
    assert _gaps(dataset, 20) == {1}
    set_skip(dataset, 10)
    assert dataset.datasets[0].skip == 2
    assert max(_gaps(dataset, 60)) <= 3


def test_temporal_flip(make_cfg: Callable[..., Config]) -> None:
    dataset = build_train_dataset(make_cfg("DATASETS.VIDEO_TEMPORAL_FLIP=true"), "video")
    torch.manual_seed(0)
    orders = [dataset[i]["info"]["frames"].tolist() for i in range(20)]
    assert any(o == sorted(o) for o in orders) and any(o == sorted(o, reverse=True) for o in orders)


def _fingerprint(sample: dict) -> tuple:
    return sample["info"]["name"], tuple(sample["info"]["frames"].tolist()), float(sample["images"].sum())


@pytest.mark.parametrize("stage", ["pretrain", "video"])
def test_same_seed_same_samples(make_cfg: Callable[..., Config], stage: str) -> None:
    runs = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        dataset = build_train_dataset(make_cfg(), stage)
        runs.append([_fingerprint(dataset[i]) for i in range(4)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_dataloader_with_two_workers(make_cfg: Callable[..., Config]) -> None:
    dataset = build_train_dataset(make_cfg("TRAIN.SAMPLES_PER_EPOCH=8"), "video")

    def epoch() -> list[tuple]:
        torch.manual_seed(123)
        loader = DataLoader(dataset, batch_size=2, num_workers=2)
        out = []
        for batch in loader:
            assert batch["images"].shape == (2, L, 3, CROP, CROP)
            assert batch["scribbles"].shape == (2, L, CROP, CROP) and batch["num_objects"].shape == (2,)
            assert batch["info"]["frames"].shape == (2, L) and len(batch["info"]["name"]) == 2
            sums = batch["images"].sum(dim=(1, 2, 3, 4)).tolist()
            out += list(zip(batch["info"]["name"], sums))
        return out

    first, second = epoch(), epoch()
    assert len(first) == 8
    assert first == second  # same torch seed -> same samples
    assert len({value for _, value in first}) == 8  # workers do not repeat each other's draws


def test_build_errors(make_cfg: Callable[..., Config]) -> None:
    with pytest.raises(ValueError, match="unknown training stage"):
        build_train_dataset(make_cfg(), "finetune")
    with pytest.raises(ValueError, match="CLIP_LENGTH"):
        build_train_dataset(make_cfg("DATASETS.DAVIS.CLIP_LENGTH=4"), "video")
    with pytest.raises(ValueError, match="selects no dataset"):
        build_train_dataset(make_cfg("DATASETS.SAMPLE_PROBABILITY=[0,0]"), "video")
    with pytest.raises(ValueError, match=r"DATASETS.MOSAIC_PROBABILITY: must be in \[0, 1\]"):  # at load
        build_train_dataset(make_cfg("DATASETS.MOSAIC_PROBABILITY=1.5"), "video")


def test_mosaic_widths() -> None:
    assert mosaic_widths(192) == (96, 96)
    assert mosaic_widths(100) == (48, 52)
    with pytest.raises(ValueError, match="at least 8"):
        mosaic_widths(4)


def test_join_side_by_side_renumbers_right_objects() -> None:
    frame = np.zeros((4, 8, 3), np.uint8)
    left = np.zeros((4, 8), np.uint8)
    left[0, :2], left[1, :2], left[3] = 1, 3, BACKGROUND  # objects 1 and 3 (2 absent), background
    right = np.zeros((4, 8), np.uint8)
    right[0, :3], right[1, :3], right[2, :3], right[3] = 1, 2, 8, BACKGROUND
    frames, labels = join_side_by_side(([frame], [left], [0]), ([frame + 1], [right], [5]))
    assert frames[0].shape == (4, 16, 3) and (frames[0][:, 8:] == 1).all() and (frames[0][:, :8] == 0).all()
    assert np.array_equal(labels[0][:, :8], left)
    # right objects follow the left's largest id (3): 1 -> 4, 2 -> 5; 8 -> 11 would be background: dropped
    assert labels[0][0, 8:11].tolist() == [4] * 3 and labels[0][1, 8:11].tolist() == [5] * 3
    assert (labels[0][2, 8:] == 0).all() and (labels[0][3, 8:] == BACKGROUND).all()


def test_mosaic_samples(make_cfg: Callable[..., Config]) -> None:
    """Every sample a mosaic: the contract holds, and the objects of the two halves are told apart."""
    dataset = build_train_dataset(make_cfg("DATASETS.MOSAIC_PROBABILITY=1.0"), "video")
    torch.manual_seed(3)
    halves_with_objects = 0
    for index in range(8):
        sample = dataset[index]
        check_sample(sample)
        assert sample["info"]["dataset"] == "mosaic"
        left_name, right_name = sample["info"]["name"].split("+")
        assert left_name != right_name
        memory = sample["memory_scribbles"].numpy()
        halves = (memory[..., : CROP // 2], memory[..., CROP // 2 :])
        objects = [set(np.unique(half)) - {0, BACKGROUND} for half in halves]
        assert not objects[0] & objects[1]
        halves_with_objects += all(objects)
    assert halves_with_objects > 0  # some mosaics select objects of both videos


def test_mosaic_needs_video_datasets(make_cfg: Callable[..., Config]) -> None:
    coco = build_train_dataset(make_cfg(), "pretrain")
    with pytest.raises(ValueError, match="need video datasets"):
        MixedClipDataset([coco], [1.0], 4, mosaic_probability=0.5)
