"""One training step's forward computation: the clip, the reversed clip and the losses."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from rhmnet.config import LossConfig
from rhmnet.losses import LossTerms, compute_losses
from rhmnet.model.rhmnet import ClipOutput


def clip_forward(model: nn.Module, batch: dict[str, torch.Tensor]) -> ClipOutput:
    """Forward pass from the first frame's memory scribble."""
    return model(batch["images"], batch["memory_scribbles"][:, 0], batch["num_objects"])


def reversed_forward(model: nn.Module, batch: dict[str, torch.Tensor]) -> ClipOutput:
    """Time-reversed pass started from the last frame's scribble, without gradient (outputs in reversed
    time order; :func:`rhmnet.losses.compute_losses` re-orders them)."""
    with torch.no_grad():
        return model(batch["images"].flip(1), batch["memory_scribbles"][:, -1], batch["num_objects"])


def forward_and_losses(
    model: nn.Module, batch: dict[str, torch.Tensor], loss_cfg: LossConfig
) -> tuple[LossTerms, ClipOutput, Optional[ClipOutput]]:
    """Run the clip (and its reversal when the consistency loss is on) and compute every loss term."""
    out = clip_forward(model, batch)
    reverse = reversed_forward(model, batch) if loss_cfg.CONSISTENCY.WEIGHT != 0 else None
    return compute_losses(out, batch, loss_cfg, reverse), out, reverse
