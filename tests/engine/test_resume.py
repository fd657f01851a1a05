"""Checkpoints: exact resume, initial-weights resume across configs/stages, layout and contents."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from rhmnet import build_model, load_config, load_model
from rhmnet.engine import DistContext, RunOptions, Trainer
from rhmnet.engine.checkpoints import (
    LAST_CHECKPOINT,
    capture_rng_state,
    plan_resume,
    prepare_checkpoint_dir,
    restore_rng_state,
)
from rhmnet.engine.trainer import update_moving_average
from rhmnet.model_io import CheckpointError, ours_to_author
from tests.conftest import TINY_OVERRIDES
from tests.engine.conftest import tiny_config

CPU = DistContext()


def _fit(cfg, stage: str = "video", **options) -> Trainer:
    trainer = Trainer(cfg, stage, CPU, RunOptions(progress=False, **options))
    trainer.fit()
    return trainer


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_mid_epoch_is_exact(synthetic_roots: dict[str, Path], tmp_path: Path, workers: int) -> None:
    """2 epochs of 3 iterations, stopped after 4 (mid-epoch) and resumed, end with the same weights as an
    uninterrupted run; the learning rate, the skip and the dataset mix (a one-epoch warm-up on DAVIS only)
    change within the run, dropout and gradient clipping are on."""
    extra = [f"TRAIN.NUM_WORKERS={workers}", "TRAIN.LR_DECREASE_STEP=2", "TRAIN.SKIP_INCREASE_STEP=2",
             "TRAIN.MAX_SKIP=3", "TRAIN.GRAD_CLIP=0.5", "DATASETS.WARMUP_EPOCHS=1",
             "DATASETS.WARMUP_SAMPLE_PROBABILITY=[0,1]"]
    full = _fit(tiny_config(synthetic_roots, tmp_path / "full", *extra))
    first = _fit(tiny_config(synthetic_roots, tmp_path / "split", *extra), max_iters=4)
    last = tmp_path / "split" / "pretrain_weights_small_synthetic" / LAST_CHECKPOINT
    assert first.state.iteration == 4 and last.is_file()
    resumed = _fit(tiny_config(synthetic_roots, tmp_path / "split", *extra), resume=str(last))
    assert resumed.state.iteration == full.state.iteration == 6
    assert resumed.state.skip == full.state.skip == 3
    for name, value in full.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[name]), name
    end = "pretrain_weights_small_synthetic/pretrain_checkpoint_2.pth.tar"
    a, b = _weights(tmp_path / "full" / end), _weights(tmp_path / "split" / end)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_moving_average_resumes_exactly_and_is_the_checkpoint_model(
    synthetic_roots: dict[str, Path], tmp_path: Path
) -> None:
    """TRAIN.EMA_DECAY: the checkpoint's model (what load_model and later stages take) is the moving
    average, the trained weights sit beside it, and a resume mid-epoch continues both exactly."""
    extra = ["TRAIN.EMA_DECAY=0.5", "TRAIN.LR_DECREASE_STEP=2"]
    full = _fit(tiny_config(synthetic_roots, tmp_path / "full", *extra))
    _fit(tiny_config(synthetic_roots, tmp_path / "split", *extra), max_iters=4)
    last = tmp_path / "split" / "pretrain_weights_small_synthetic" / LAST_CHECKPOINT
    assert int(torch.load(last, weights_only=True)["ema_updates"]) == 4
    resumed = _fit(tiny_config(synthetic_roots, tmp_path / "split", *extra), resume=str(last))
    for name, value in full.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[name]), name
    for name, value in full.ema.module.state_dict().items():
        assert torch.equal(value, resumed.ema.module.state_dict()[name]), name
    data = torch.load(tmp_path / "split" / "pretrain_weights_small_synthetic" / "pretrain_checkpoint_2.pth.tar",
                      weights_only=True)
    assert data["ema_updates"] == 6
    trained, average = data["trained_model"], data["model"]
    assert all(torch.equal(trained[k], v) for k, v in full.net.state_dict().items())
    assert all(torch.equal(average[k], v) for k, v in full.ema.module.state_dict().items())
    assert any(not torch.equal(trained[k], average[k]) for k in trained if trained[k].is_floating_point())
    loaded = load_model(tmp_path / "split" / "pretrain_weights_small_synthetic" / "pretrain_checkpoint_2.pth.tar")
    assert all(torch.equal(v, average[k]) for k, v in loaded.state_dict().items())


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_lite0"])
def test_moving_average_update_leaves_no_stale_folded_backbone(backbone: str) -> None:
    """The average's weights change in place at every step; an average in eval mode on the inference path
    (as a caller might use it) must compute with the new weights, not with folded copies of the old."""
    cfg = load_config("video_training", [*TINY_OVERRIDES, f"MODEL.BACKBONE.NAME={backbone}"])
    torch.manual_seed(0)
    net = build_model(cfg)
    average = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(0.5), use_buffers=True)
    average.module.prepare_for_inference()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = average.module.backbone(x)
        for weight in net.backbone.parameters():
            weight.mul_(-1.5)
    update_moving_average(average, net)
    fresh = copy.deepcopy(average.module).train().eval()  # folded anew from the averaged weights
    with torch.no_grad():
        got, want = average.module.backbone(x), fresh.backbone(x)
    assert not torch.allclose(before[-1], want[-1], atol=1e-2)  # the update changed the features
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_checkpoint_contents_and_layout(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    cfg = tiny_config(synthetic_roots, tmp_path, "TRAIN.EPOCH=1")
    trainer = _fit(cfg, stage="pretrain")
    folder = tmp_path / "pretrain_weights_small_synthetic"
    path = folder / "pretrain_checkpoint_1.pth.tar"
    data = torch.load(path, weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "iteration", "epoch", "rng", "config", "stage",
                "train_state"):
        assert key in data, key
    assert (data["epoch"], data["iteration"], data["stage"]) == (1, trainer.iters_per_epoch, "pretrain")
    assert set(data["rng"][0]) == {"python", "numpy", "torch", "cuda"}
    assert (folder / "config.yaml").is_file() and (folder / "STAGE").read_text().strip() == "pretrain"
    assert (folder / "train_log.jsonl").read_text().count("\n") == trainer.iters_per_epoch
    model = load_model(path)  # evaluation loads training checkpoints directly
    for name, value in trainer.net.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


def test_other_config_or_stage_gives_initial_weights_only(synthetic_roots: dict[str, Path],
                                                          tmp_path: Path) -> None:
    pre = _fit(tiny_config(synthetic_roots, tmp_path, "TRAIN.EPOCH=1"), stage="pretrain")
    path = tmp_path / "pretrain_weights_small_synthetic" / "pretrain_checkpoint_1.pth.tar"
    video_cfg = tiny_config(synthetic_roots, tmp_path, "NAME=small_synthetic_video", f"RESUME={path}")
    assert plan_resume(path, video_cfg, "video").mode == "weights"
    assert plan_resume(path, tiny_config(synthetic_roots, tmp_path), "video").mode == "weights"  # same name
    assert plan_resume(path, tiny_config(synthetic_roots, tmp_path), "pretrain").mode == "exact"
    video = Trainer(video_cfg, "video", CPU, RunOptions(progress=False))
    assert video.state.iteration == 0 and not video.optimizer.state  # fresh optimiser and schedule
    assert video.optimizer.param_groups[0]["lr"] == video_cfg.TRAIN.LR
    for name, value in pre.net.state_dict().items():
        assert torch.equal(video.net.state_dict()[name], value), name


def test_authors_checkpoint_as_initial_weights(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    cfg = tiny_config(synthetic_roots, tmp_path)
    source = Trainer(cfg, "video", CPU, RunOptions(progress=False)).net.state_dict()
    theirs = {ours_to_author(k): v.clone() + 1 for k, v in source.items()}
    path = tmp_path / "theirs.pth.tar"
    torch.save({"epoch": 14, "state_dict": theirs}, path)
    cfg = tiny_config(synthetic_roots, tmp_path, "NAME=from_authors")
    trainer = Trainer(cfg, "video", CPU, RunOptions(progress=False, resume=str(path)))
    assert trainer.state.iteration == 0
    for name, value in trainer.net.state_dict().items():
        assert torch.equal(value, source[name] + 1), name


def test_stage_folder_guard(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    cfg = tiny_config(synthetic_roots, tmp_path)
    prepare_checkpoint_dir(cfg, "pretrain")
    with pytest.raises(CheckpointError, match="NAME=small_synthetic_video"):
        prepare_checkpoint_dir(cfg, "video")


def test_rng_state_round_trip(tmp_path: Path) -> None:
    import random

    import numpy as np

    state = capture_rng_state(torch.device("cpu"))
    torch.save(state, tmp_path / "rng.pt")
    expected = (random.random(), float(np.random.rand()), torch.rand(3))
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), torch.device("cpu"))
    again = (random.random(), float(np.random.rand()), torch.rand(3))
    assert expected[:2] == again[:2] and torch.equal(expected[2], again[2])
