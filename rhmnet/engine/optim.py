"""Optimiser and the per-iteration schedules: learning rate and the frame-gap ("skip") curriculum.

Both schedules are pure functions of the global iteration, so a resumed run follows them exactly. An
iteration is one optimiser step: with ``TRAIN.ACCUMULATE_STEPS = k`` it spans k micro-batches, so the
schedules count optimiser steps and one GPU with k = 4 follows the paper's 4-GPU schedule.

``TRAIN.LR_SCHEDULE: auto`` (the default) picks what the authors' scripts hard-code: ``poly`` for the video
stage (``train_script_video_training.py``) and ``step`` for pre-training (``train_script_pretrain.py``).

- ``poly`` (video stage): during iteration ``i`` (0-based) the rate is ``LR * (1 - n/total)^0.9`` with
  ``n`` the largest multiple of ``LR_DECREASE_STEP`` not above ``i + 1``: as in the authors' loop, the
  rate changes only when ``(i + 1) % LR_DECREASE_STEP == 0``, already for that iteration's step.
- ``step`` (pre-training): ``LR * 0.5^(epoch // STEP_SIZE)``, i.e. StepLR(STEP_SIZE, gamma 0.5) stepped per
  epoch, expressed per iteration.
- The backbone group always runs at ``BACKBONE_MULTIPLIER`` times the rate of the other group.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from rhmnet.config import Config

POLY_POWER = 0.9
STEP_GAMMA = 0.5


def param_groups(model: nn.Module, cfg: Config) -> list[dict]:
    """Trainable parameters split into the non-backbone group (LR) and the backbone group
    (LR * BACKBONE_MULTIPLIER), in that order."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    rest = [p for n, p in named if not n.startswith("backbone.")]
    backbone = [p for n, p in named if n.startswith("backbone.")]
    lr = cfg.TRAIN.LR
    return [{"params": rest, "lr": lr}, {"params": backbone, "lr": lr * cfg.TRAIN.BACKBONE_MULTIPLIER}]


def build_optimizer(model: nn.Module, cfg: Config) -> torch.optim.Optimizer:
    """Over :func:`param_groups`, as the authors: AdamW (paper) with TRAIN.WEIGHT_DECAY, or Adam without
    weight decay (their Adam ignores TRAIN.WEIGHT_DECAY; eps 1e-8, betas (0.9, 0.999))."""
    groups = param_groups(model, cfg)
    if cfg.TRAIN.OPTIMIZER == "AdamW":
        return torch.optim.AdamW(groups, lr=cfg.TRAIN.LR, weight_decay=cfg.TRAIN.WEIGHT_DECAY)
    return torch.optim.Adam(groups, lr=cfg.TRAIN.LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)


def resolve_schedule(cfg: Config, stage: str) -> str:
    """The learning-rate schedule of ``stage``: TRAIN.LR_SCHEDULE, with ``auto`` resolved as the authors'
    scripts do (poly for ``video``, step for ``pretrain``)."""
    schedule = cfg.TRAIN.LR_SCHEDULE
    if schedule == "auto":
        return "poly" if stage == "video" else "step"
    return schedule


def lr_factor(cfg: Config, iters_per_epoch: int, stage: str = "video") -> Callable[[int], float]:
    """Multiplier of the base rates for iteration (optimiser step) ``i`` (see the module docstring)."""
    schedule = resolve_schedule(cfg, stage)
    total = cfg.TRAIN.EPOCH * iters_per_epoch
    if schedule == "poly":
        step = cfg.TRAIN.LR_DECREASE_STEP

        def poly(i: int) -> float:
            done = (i + 1) // step * step
            return max(0.0, 1.0 - done / total) ** POLY_POWER

        return poly
    size = cfg.TRAIN.STEP_SIZE  # schedule "step"
    return lambda i: STEP_GAMMA ** ((i // iters_per_epoch) // size)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: Config, iters_per_epoch: int, stage: str = "video"
) -> LambdaLR:
    """A scheduler to step once per optimiser step, after it."""
    return LambdaLR(optimizer, lr_factor(cfg, iters_per_epoch, stage))


def skip_at(iteration: int, cfg: Config) -> int:
    """Frame-gap curriculum after ``iteration`` completed iterations (optimiser steps): INIT_SKIP, plus one every
    SKIP_INCREASE_STEP iterations, up to MAX_SKIP (never lowered below INIT_SKIP)."""
    t = cfg.TRAIN
    if t.INIT_SKIP >= t.MAX_SKIP:
        return t.INIT_SKIP
    return min(t.MAX_SKIP, t.INIT_SKIP + iteration // t.SKIP_INCREASE_STEP)
