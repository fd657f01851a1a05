"""Both training scripts end to end on the synthetic dataset, and the non-finite-loss stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rhmnet.engine import DistContext, NonFiniteLossError, RunOptions, Trainer
from tests.engine.conftest import poison_loss, run_script, tiny_config, tiny_overrides


def test_pretrain_then_video_scripts(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    """Pre-training for one epoch, then the video stage from its checkpoint (initial weights only)."""
    common = ["--config", "small_synthetic", *tiny_overrides(synthetic_roots, tmp_path)]
    pre = run_script("pretrain", [*common, "TRAIN.EPOCH=1", "TRAIN.LR_SCHEDULE=step",
                                  "TRAIN.LOSS.CONSISTENCY.WEIGHT=0"])
    assert pre.returncode == 0, pre.stderr[-3000:]
    pre_dir = tmp_path / "pretrain_weights_small_synthetic"
    pre_ckpt = pre_dir / "pretrain_checkpoint_1.pth.tar"
    assert pre_ckpt.is_file() and "partial_ce" in pre.stderr and "reliable_focal" in pre.stderr
    records = [json.loads(line) for line in (pre_dir / "train_log.jsonl").open()]
    assert records and all(r["consistency"] == 0 for r in records)

    video = run_script("video", [*common, "NAME=small_synthetic_video", f"RESUME={pre_ckpt}", "--max-iters", "2"])
    assert video.returncode == 0, video.stderr[-3000:]
    assert "initial weights from" in video.stderr
    video_dir = tmp_path / "pretrain_weights_small_synthetic_video"
    last = torch.load(video_dir / "last_checkpoint.pth.tar", weights_only=True)
    assert (last["iteration"], last["stage"]) == (2, "video")
    log_file = video_dir / "train_log.jsonl"
    records = [json.loads(line) for line in log_file.open()]
    assert [r["iteration"] for r in records] == [0, 1] and records[0]["consistency"] > 0


def test_non_finite_loss_stops_script(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    """Loss weights at the float limit (valid values: a NaN is refused when the config loads) make the
    weighted total overflow at the first iteration."""
    huge = [f"TRAIN.LOSS.{key}.WEIGHT=1e308" for key in ("MASK", "SMOOTH", "CONSISTENCY", "SCRIBBLE_LOSS")]
    done = run_script("video", ["--config", "small_synthetic", *tiny_overrides(synthetic_roots, tmp_path), *huge])
    assert done.returncode == 1  # 1: the run failed (not bad input)
    assert "error: non-finite loss at iteration 0" in done.stderr
    assert "smoothness" in done.stderr and "Traceback" not in done.stderr


def test_non_finite_loss_names_iteration_and_terms(synthetic_roots: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    poison_loss(monkeypatch, "reliable_focal", float("inf"))
    trainer = Trainer(tiny_config(synthetic_roots, tmp_path), "video", DistContext(),
                      RunOptions(progress=False))
    expected = r"iteration 2 \(epoch 0, batch 2\): reliable_focal, total not finite"
    with pytest.raises(NonFiniteLossError, match=expected):
        trainer.fit()
    assert trainer.state.iteration == 2  # no step was taken with the bad loss


def test_unknown_override_is_a_clear_error(tmp_path: Path) -> None:
    done = run_script("pretrain", ["--config", "small_synthetic", "TRAIN.NOT_A_KEY=1"])
    assert done.returncode == 2 and "unknown config key: TRAIN.NOT_A_KEY" in done.stderr  # 2: bad input
    assert "Traceback" not in done.stderr
