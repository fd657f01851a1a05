"""The authors' training recipe: their experiment YAMLs get their scripts' schedules, pre-training has no
consistency loss, Adam has no weight decay, compatibility-only keys reject values that are not
implemented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from rhmnet.config import COMPAT_ONLY_VALUES, CONFIG_DIR, ConfigError, load_config
from rhmnet.engine.optim import build_optimizer, lr_factor, resolve_schedule
from rhmnet.engine.trainer import stage_loss_config

# Modelled on the authors' experiments/video_training.yaml (their quirks kept: a repeated key, a tagged
# float, no LR_SCHEDULE key since their scripts hard-code the schedule).
AUTHORS_VIDEO_YAML = """
MODEL:
  TYPE: TRANSFORMER
  HIDDEN_DIM: 256
  WITH_REFINE: False
  REFINE_LAYERS: 1
  BACKBONE:
    NAME: resnet50
    VERSION: v1
  DECODER:
    UPSAMPLE_LOGITS: True
    PRED_EDGE: False
  SCRIBBLE_PREDICTOR:
    OUT_DIM: 1
DATASETS:
  ERODE: False
  DILATE_KERNEL_SIZE: 8
  SAMPLE_PROBABILITY: [92, 8]
  DILATE_KERNEL_SIZE: 35
TRAIN:
  BATCH_SIZE: 4
  MODE: clip
  OPTIMIZER: AdamW
  EPOCH: 80
  LR: !!float 1e-4
  BACKBONE_MULTIPLIER: 0.5
  MAX_SKIP: 30
  SKIP_INCREASE_STEP: 1500
  LR_DECREASE_STEP: 1000
  SAMPLES_PER_EPOCH: 10000
  LOSS:
    SCRIBBLE_LOSS:
      USE_FOCAL_LOSS: True
    CONSISTENCY:
      WEIGHT: 20.
"""

# Modelled on the authors' experiments/pre_training.yaml.
AUTHORS_PRETRAIN_YAML = """
MODEL:
  TYPE: TRANSFORMER
  REFINE_LAYERS: 1
TRAIN:
  BATCH_SIZE: 4
  MODE: clip
  OPTIMIZER: AdamW
  EPOCH: 18
  LR: !!float 5e-5
  BACKBONE_MULTIPLIER: 0.5
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def test_authors_video_yaml_gets_poly(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "video_training", AUTHORS_VIDEO_YAML))
    assert cfg.TRAIN.LR_SCHEDULE == "auto" and resolve_schedule(cfg, "video") == "poly"
    # paper: 4 GPUs x 4 clips -> 10,000 / 16 = 625 optimiser steps per epoch, 50,000 in all
    factor = lr_factor(cfg, iters_per_epoch=625, stage="video")
    assert factor(0) == factor(998) == 1.0
    assert factor(999) == pytest.approx((1 - 1000 / 50000) ** 0.9)  # the authors' step at iteration 1000
    assert factor(24999) == pytest.approx(0.5**0.9)  # 0.536 (a StepLR per 6 epochs would give 0.016)
    assert factor(24999) == pytest.approx(0.5359, abs=1e-4)
    assert factor(49999) == 0.0


def test_authors_pretraining_yaml_gets_steplr(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "pre_training", AUTHORS_PRETRAIN_YAML))
    assert resolve_schedule(cfg, "pretrain") == "step"
    factor = lr_factor(cfg, iters_per_epoch=312, stage="pretrain")  # STEP_SIZE 6 (default), gamma 0.5
    assert [factor(0), factor(6 * 312 - 1), factor(6 * 312), factor(12 * 312), factor(18 * 312 - 1)] == [
        1.0, 1.0, 0.5, 0.25, 0.25]
    cfg.TRAIN.LR_SCHEDULE = "poly"  # an explicit choice wins
    assert resolve_schedule(cfg, "pretrain") == "poly"


def test_our_configs_follow_the_authors_scripts() -> None:
    assert resolve_schedule(load_config("video_training"), "video") == "poly"
    assert resolve_schedule(load_config("pre_training"), "pretrain") == "step"


def test_pretraining_never_computes_consistency() -> None:
    cfg = load_config("video_training")  # consistency weight 20
    assert stage_loss_config(cfg, "video").CONSISTENCY.WEIGHT == 20.0
    assert stage_loss_config(cfg, "pretrain").CONSISTENCY.WEIGHT == 0.0
    assert cfg.TRAIN.LOSS.CONSISTENCY.WEIGHT == 20.0  # the config itself is not changed


def test_adam_has_no_weight_decay_adamw_has() -> None:
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    model.head = nn.Linear(2, 2)
    adam = build_optimizer(model, load_config(None, ["TRAIN.OPTIMIZER=Adam", "TRAIN.WEIGHT_DECAY=0.5"]))
    assert type(adam) is torch.optim.Adam
    assert [g["weight_decay"] for g in adam.param_groups] == [0.0, 0.0]
    assert adam.defaults["eps"] == 1e-8 and tuple(adam.defaults["betas"]) == (0.9, 0.999)
    adamw = build_optimizer(model, load_config(None, ["TRAIN.WEIGHT_DECAY=0.5"]))
    assert [g["weight_decay"] for g in adamw.param_groups] == [0.5, 0.5]


def _other_value(value: object) -> object:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "2"
    return [64, 128, 256]


@pytest.mark.parametrize("key", sorted(COMPAT_ONLY_VALUES))
def test_compat_only_keys(key: str) -> None:
    accepted = COMPAT_ONLY_VALUES[key]
    load_config(None, [f"{key}={yaml.safe_dump(accepted, default_flow_style=True).strip()}"])
    other = yaml.safe_dump(_other_value(accepted), default_flow_style=True).strip().removesuffix("...").strip()
    with pytest.raises(ConfigError, match=re.escape(key) + ".*not implemented"):
        load_config(None, [f"{key}={other}"])


def test_compat_only_keys_rejected_in_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "v2", "MODEL:\n  BACKBONE:\n    VERSION: v2\n")
    with pytest.raises(ConfigError, match=r"v2\.yaml: config key MODEL\.BACKBONE\.VERSION: value 'v2' is not"):
        load_config(path)


def test_our_yamls_hold_no_compat_only_keys() -> None:
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        for key in COMPAT_ONLY_VALUES:
            node = data
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            assert node is None, f"{path.name} sets the compatibility-only key {key}"


def test_accumulate_steps_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="TRAIN.ACCUMULATE_STEPS"):
        load_config(None, ["TRAIN.ACCUMULATE_STEPS=0"])
    with pytest.raises(ConfigError, match="TRAIN.LR_SCHEDULE"):
        load_config(None, ["TRAIN.LR_SCHEDULE=cosine"])
