"""RHMNet-Lite (configs/lite.yaml): a small one trains a few iterations and its checkpoint loads back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rhmnet import load_model
from rhmnet.config import load_config
from rhmnet.engine.distributed import init_distributed
from rhmnet.engine.trainer import RunOptions, run_training
from rhmnet.inference import VideoSegmenter
from rhmnet.model.backbones import LITE0_NORMALISATION, lite0_timm_state_dict
from tests.engine.conftest import tiny_overrides

pytest.importorskip("timm")


def test_small_lite_model_trains_and_loads_back(synthetic_roots, tmp_path):
    cfg = load_config("lite", tiny_overrides(synthetic_roots, tmp_path / "ckpt") + ["TEST.INPUT_SHORT_SIDE=64"])
    assert cfg.MODEL.BACKBONE.NAME == "efficientnet_lite0" and cfg.MODEL.BACKBONE.PRETRAINED
    result = run_training(cfg, "video", init_distributed("cpu"), RunOptions(max_iters=3, progress=False))
    assert result.state.iteration == 3 and all(np.isfinite(r["total"]) for r in result.history)
    trained = result.checkpoints[-1]
    model = load_model(trained)
    assert model.backbone.normalisation == LITE0_NORMALISATION
    saved = torch.load(trained, map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    imagenet = lite0_timm_state_dict()
    frozen = [n for n in saved if n.startswith("backbone.model.blocks.1.")]  # FROZEN_STAGES 4: stem, blocks 0-2
    trained = [n for n in saved if n.startswith("backbone.model.blocks.4.") and n.endswith("weight")]
    assert frozen and all(torch.equal(saved[n], imagenet[n.removeprefix("backbone.model.")]) for n in frozen)
    assert any(not torch.equal(saved[n], imagenet[n.removeprefix("backbone.model.")]) for n in trained)
    video = np.random.default_rng(0).integers(0, 256, size=(2, 72, 96, 3), dtype=np.uint8)
    scribble = np.zeros((72, 96), np.uint8)
    scribble[20:24, 20:60], scribble[60:63, :] = 1, 11
    seg = VideoSegmenter(model)
    seg.initialize(video[0], scribble)
    assert seg.work_size == (64, 85)
    assert all(seg.step(frame).labels.shape == (72, 96) for frame in video)
