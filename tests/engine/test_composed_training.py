"""Training with composed clips (DATASETS.PASTE_OBJECTS_PROBABILITY): a tiny model trains a few iterations
on clips with pasted objects from both dataset layouts, and its checkpoint loads back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from rhmnet import load_model
from rhmnet.engine import DistContext, RunOptions, Trainer
from tests.engine.conftest import tiny_config


def test_trains_on_composed_clips_and_reloads(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    cfg = tiny_config(synthetic_roots, tmp_path / "ckpt", "DATASETS.PASTE_OBJECTS_PROBABILITY=1.0",
                      "DATASETS.PASTE_MAX_OBJECTS=2", "TRAIN.LOSS.CONSISTENCY.WEIGHT=0")
    trainer = Trainer(cfg, "video", DistContext(), RunOptions(max_iters=3, progress=False))
    result = trainer.fit()
    assert result.state.iteration == 3 and all(np.isfinite(r["total"]) for r in result.history)
    datasets = trainer.dataset.dataset.datasets  # EpochSeededDataset -> MixedClipDataset -> YouTube-VOS, DAVIS
    assert sum(d.stats["composed_clips"] for d in datasets) >= 6  # every clip of the 3 batches of 2
    checkpoint = result.checkpoints[-1]
    model = load_model(checkpoint)
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    assert model.cfg.DATASETS.PASTE_OBJECTS_PROBABILITY == 1.0
