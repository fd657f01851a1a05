"""TRAIN.ACCUMULATE_STEPS in one process: iterations are optimiser steps, schedules count them, and a run
resumed mid-epoch continues exactly. (Equality with several processes: test_distributed.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rhmnet.engine import DistContext, RunOptions, Trainer
from rhmnet.engine.checkpoints import LAST_CHECKPOINT
from tests.engine.conftest import tiny_config

CPU = DistContext()
EXTRA = ["TRAIN.BATCH_SIZE=1", "TRAIN.ACCUMULATE_STEPS=2", "TRAIN.LR_DECREASE_STEP=2",
         "TRAIN.SKIP_INCREASE_STEP=2", "TRAIN.MAX_SKIP=5"]


def _fit(cfg, **options) -> tuple[Trainer, list[dict[str, float]]]:
    trainer = Trainer(cfg, "video", CPU, RunOptions(progress=False, **options))
    return trainer, trainer.fit().history


def test_accumulation_counts_optimiser_steps_and_resumes_exactly(
    synthetic_roots: dict[str, Path], tmp_path: Path
) -> None:
    """6 clips per epoch, 1 clip per micro-batch, 2 micro-batches per step: 3 steps per epoch, 6 in all;
    the learning rate and the skip follow the step count; stopping after 4 steps and resuming ends with
    the uninterrupted run's weights."""
    full, history = _fit(tiny_config(synthetic_roots, tmp_path / "full", *EXTRA))
    assert full.iters_per_epoch == 3 and full.state.iteration == 6
    assert [r["iteration"] for r in history] == list(range(6))
    assert [r["skip"] for r in history] == [0, 1, 1, 2, 2, 3]  # +1 every 2 optimiser steps
    lr = full.cfg.TRAIN.LR
    assert [r["lr"] for r in history[:3]] == pytest.approx([lr, lr * (1 - 2 / 6) ** 0.9,
                                                            lr * (1 - 2 / 6) ** 0.9])

    first, _ = _fit(tiny_config(synthetic_roots, tmp_path / "split", *EXTRA), max_iters=4)
    assert first.state.iteration == 4
    last = tmp_path / "split" / "pretrain_weights_small_synthetic" / LAST_CHECKPOINT
    resumed, _ = _fit(tiny_config(synthetic_roots, tmp_path / "split", *EXTRA), resume=str(last))
    assert resumed.state.iteration == 6 and resumed.state.skip == full.state.skip
    for name, value in full.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[name]), name
