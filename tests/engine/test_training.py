"""The loop learns, logs every term, writes TensorBoard overlays; schedules and data helpers."""

from __future__ import annotations

import copy
import gc
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from rhmnet.config import load_config
from rhmnet.data.build import build_train_dataset
from rhmnet.engine import DistContext, RunOptions, Trainer
from rhmnet.engine.checkpoints import LAST_CHECKPOINT
from rhmnet.engine.data import EpochSeededDataset, FixedSamples, ResumableSampler
from rhmnet.engine.optim import build_optimizer, lr_factor, param_groups, skip_at
from rhmnet.engine.trainer import TERM_NAMES
from rhmnet.engine.visualize import overlay_clip
from tests.engine.conftest import tiny_config


class RecordingWriter:
    """Stands in for a TensorBoard SummaryWriter."""

    def __init__(self) -> None:
        self.scalars: dict[str, list[float]] = {}
        self.images: list[np.ndarray] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.setdefault(tag, []).append(value)

    def add_image(self, tag: str, image: np.ndarray, step: int, dataformats: str = "CHW") -> None:
        assert dataformats == "HWC"
        self.images.append(image)

    def flush(self) -> None:
        pass


def test_loss_decreases_on_tiny_set(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    """50 iterations on 4 synthetic clips with the tiny model: the total loss falls clearly."""
    extra = ["TRAIN.EPOCH=25", "TRAIN.LR=1e-3", "TRAIN.LR_DECREASE_STEP=1000", "TRAIN.LOG_INTERVAL=10",
             "TRAIN.LOSS.CONSISTENCY.WEIGHT=0"]
    cfg = tiny_config(synthetic_roots, tmp_path, *extra)
    clips = EpochSeededDataset(build_train_dataset(cfg, "video"), seed=1)
    writer = RecordingWriter()
    trainer = Trainer(cfg, "video", DistContext(), RunOptions(progress=False),
                      FixedSamples([clips[i] for i in range(4)]), writer=writer)
    result = trainer.fit()
    totals = [r["total"] for r in result.history]
    assert len(totals) == 50
    first, last = np.mean(totals[:5]), np.mean(totals[-5:])
    assert last < 0.6 * first, f"total loss {first:.3f} -> {last:.3f}"
    assert set(writer.scalars) >= {f"train/{name}" for name in TERM_NAMES}
    assert len(writer.scalars["train/total"]) == 50 and len(writer.images) == 5
    assert writer.images[0].dtype == np.uint8 and writer.images[0].shape == (2 * 64, 4 * 64, 3)



def test_trainer_is_freed_without_the_garbage_collector(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    """After fit() no reference cycle keeps the trainer alive: under DDP it holds the process group, and a gloo
    group destroyed during interpreter shutdown can abort the process."""
    cfg = tiny_config(synthetic_roots, tmp_path, "TRAIN.EPOCH=1")
    clips = EpochSeededDataset(build_train_dataset(cfg, "video"), seed=1)
    trainer = Trainer(cfg, "video", DistContext(), RunOptions(progress=False),
                      FixedSamples([clips[i] for i in range(4)]))
    trainer.fit()
    freed = weakref.ref(trainer)
    gc.disable()
    try:
        del trainer
        assert freed() is None, "a reference cycle keeps the trainer alive after fit()"
    finally:
        gc.enable()


def test_trainer_leaves_the_given_config_alone(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    """What a run resolves (the position table from the crop, a schedule extended by max_iters) goes into the
    trainer's own config and the run's checkpoints, never into the caller's config or the built model's."""
    extra = ["TRAIN.EMA_DECAY=0.5", "TRAIN.LOSS.CONSISTENCY.WEIGHT=0"]
    cfg = tiny_config(synthetic_roots, tmp_path, *extra)
    clips = EpochSeededDataset(build_train_dataset(cfg, "video"), seed=1)
    samples = FixedSamples([clips[i] for i in range(4)])  # 2 iterations an epoch, TRAIN.EPOCH=2
    given = copy.deepcopy(cfg)
    trainer = Trainer(cfg, "video", DistContext(), RunOptions(progress=False, max_iters=5, extend_schedule=True),
                      samples)
    built = copy.deepcopy(trainer.net.cfg)
    trainer.fit()
    assert cfg == given and cfg.MODEL.POS_TABLE_SIZE is None and cfg.TRAIN.EPOCH == 2
    assert trainer.net.cfg == built and trainer.net.cfg.TRAIN.EPOCH == 2
    assert trainer.cfg.TRAIN.EPOCH == 3 and trainer.cfg.MODEL.POS_TABLE_SIZE == [4, 4]
    last = tmp_path / "pretrain_weights_small_synthetic" / LAST_CHECKPOINT
    assert torch.load(last, weights_only=True)["config"] == trainer.cfg.to_dict()

    resumed_cfg = tiny_config(synthetic_roots, tmp_path, *extra, "TRAIN.EPOCH=3")
    given = copy.deepcopy(resumed_cfg)
    resumed = Trainer(resumed_cfg, "video", DistContext(), RunOptions(progress=False, resume=str(last)), samples)
    assert resumed.state.iteration == 5 and resumed_cfg == given

def test_param_groups_and_schedules() -> None:
    cfg = load_config("video_training", ["MODEL.BACKBONE.PRETRAINED=false", "MODEL.BACKBONE.NAME=resnet18",
                                         "MODEL.HIDDEN_DIM=32", "TRAIN.EPOCH=2", "TRAIN.LR_DECREASE_STEP=10"])
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    model.head = nn.Linear(2, 2)
    rest, backbone = param_groups(model, cfg)
    assert len(rest["params"]) == len(backbone["params"]) == 2
    assert backbone["lr"] == pytest.approx(cfg.TRAIN.LR * 0.5)
    assert isinstance(build_optimizer(model, cfg), torch.optim.AdamW)

    poly = lr_factor(cfg, iters_per_epoch=50)  # total 100 iterations
    assert [poly(i) for i in (0, 8)] == [1.0, 1.0]
    assert poly(9) == pytest.approx(0.9**0.9)  # changes when (i + 1) % 10 == 0, for that step already
    assert poly(19) == pytest.approx(0.8**0.9) and poly(99) == 0.0
    cfg.TRAIN.LR_SCHEDULE, cfg.TRAIN.STEP_SIZE = "step", 6
    step = lr_factor(cfg, iters_per_epoch=10)
    assert [step(0), step(59), step(60), step(120)] == [1.0, 1.0, 0.5, 0.25]

    cfg.TRAIN.INIT_SKIP, cfg.TRAIN.MAX_SKIP, cfg.TRAIN.SKIP_INCREASE_STEP = 0, 3, 1500
    assert [skip_at(i, cfg) for i in (0, 1499, 1500, 3000, 10**6)] == [0, 0, 1, 2, 3]


class Draws(torch.utils.data.Dataset):
    """Minimal SeededDataset stand-in: each item is the next number of its generator."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)

    def __len__(self) -> int:
        return 8

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def __getitem__(self, index: int) -> float:
        return float(self.rng.random())


def test_samples_depend_on_seed_epoch_and_index_only() -> None:
    data = EpochSeededDataset(Draws(), seed=3)
    forward = [data[i] for i in range(8)]
    backward = [data[i] for i in reversed(range(8))][::-1]
    assert forward == backward  # order (and hence workers / ranks) does not matter
    data.set_epoch(1)
    assert [data[i] for i in range(8)] != forward


def test_sampler_resumes_within_an_epoch() -> None:
    data = FixedSamples(list(range(10)))
    ranks = [ResumableSampler(data, 2, r, shuffle=True, seed=0) for r in range(2)]
    for sampler in ranks:
        sampler.set_position(epoch=3)
    full = [list(s) for s in ranks]
    assert sorted(full[0] + full[1]) == list(range(10))
    ranks[1].set_position(epoch=3, start=2)
    assert list(ranks[1]) == full[1][2:] and len(ranks[1]) == 3


def test_overlay_shape() -> None:
    images = torch.zeros(3, 2, 3, 16, 16)
    scribbles = torch.zeros(3, 2, 16, 16, dtype=torch.uint8)
    scribbles[:, :, :4] = 1
    scribbles[:, :, -4:] = 11
    probs = [torch.softmax(torch.randn(3, 12, 16, 16), 1) for _ in range(2)]
    grid = overlay_clip(images, scribbles, probs, max_clips=2)
    assert grid.shape == (32, 48, 3) and grid.dtype == np.uint8
    assert (grid[-2, :16] == 255).all()  # background scribble drawn white
