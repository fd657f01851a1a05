"""scripts/benchmark_training.py times real optimiser steps of the trainer (a smoke test: no timing)."""

from __future__ import annotations

from pathlib import Path

import torch

from tests.conftest import load_script
from tests.engine.conftest import tiny_config


def test_benchmark_times_optimiser_steps(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    module = load_script("benchmark_training")
    cfg = tiny_config(synthetic_roots, tmp_path, "TRAIN.ACCUMULATE_STEPS=2", "TRAIN.SAMPLES_PER_EPOCH=16")
    rate, peak = module.benchmark_config(cfg, "video", iters=1, warmup=1, device=torch.device("cpu"))
    assert rate > 0 and peak > 0
