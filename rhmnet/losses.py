"""Scribble-supervised training losses of RHMNet (each a small function over plain tensors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from rhmnet.config import LossConfig
from rhmnet.labels import BACKGROUND
from rhmnet.model.rhmnet import ClipOutput


def partial_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, bg_weight: float) -> torch.Tensor:
    """Cross-entropy on scribbled pixels only: class weights 0 (unlabeled), ``bg_weight`` (background),
    1 (objects); mean over the weighted pixels. logits ``[N, K, H, W]``, labels ``[N, H, W]``."""
    weight = torch.ones(logits.shape[1], device=logits.device, dtype=logits.dtype)
    weight[0] = 0.0
    weight[BACKGROUND] = bg_weight
    return F.cross_entropy(logits, labels.long(), weight=weight)


def image_derivatives(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sobel-x, Sobel-y and 8-neighbour Laplacian of every channel of ``[N, C, H, W]`` (zero padding).

    The same numbers as 3x3 cross-correlations with the kernels ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``, its
    transpose and ``[[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]``, computed from shifted slices (the Sobel
    kernels are separable, the Laplacian is ``9x`` minus the 3x3 box sum): on the CPU this is several times
    faster than single-channel convolutions, whose backward pass dominated a training step.
    """
    padded = F.pad(x, (1, 1, 1, 1))
    above, centre_row, below = padded[..., :-2, :], padded[..., 1:-1, :], padded[..., 2:, :]  # [N, C, H, W+2]
    column_sum = above + centre_row + below
    column_smooth = column_sum + centre_row
    sobel_x = column_smooth[..., 2:] - column_smooth[..., :-2]
    left, centre_col, right = padded[..., :-2], padded[..., 1:-1], padded[..., 2:]  # [N, C, H+2, W]
    row_smooth = left + 2.0 * centre_col + right
    sobel_y = row_smooth[..., 2:, :] - row_smooth[..., :-2, :]
    box = column_sum[..., :-2] + column_sum[..., 1:-1] + column_sum[..., 2:]
    laplacian = 9.0 * x - box
    return sobel_x, sobel_y, laplacian


def _charbonnier(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x * x + 1e-6)


def edge_aware_smoothness(
    probs: torch.Tensor, gray: torch.Tensor, alpha: float = 10.0, channel_weights: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """Penalise prediction gradients where the image is flat (pixel relations within a frame).

    Per channel: ``10 * mean(C(|Sobel_x p| e^{-a|Sobel_x g|}) + C(|Sobel_y p| e^{-a|Sobel_y g|}))
    + mean(C(|Lap p| e^{-a|Lap g|}))`` with Charbonnier ``C(x) = sqrt(x^2 + 1e-6)``; summed over channels
    (each times its ``channel_weights`` entry when given: a channel standing for that many equal ones),
    averaged over frames. probs ``[N, K, H, W]``, gray ``[N, H, W]``.
    """
    image_x, image_y, image_lap = image_derivatives(gray.unsqueeze(1))
    prob_x, prob_y, prob_lap = image_derivatives(probs)
    first = _charbonnier(prob_x.abs() * torch.exp(-alpha * image_x.abs()))
    first = first + _charbonnier(prob_y.abs() * torch.exp(-alpha * image_y.abs()))
    second = _charbonnier(prob_lap.abs() * torch.exp(-alpha * image_lap.abs()))
    per_frame = 10.0 * first.mean(dim=(2, 3)) + second.mean(dim=(2, 3))  # [N, K]
    if channel_weights is not None:
        per_frame = per_frame * channel_weights
    return per_frame.sum(1).mean()


def distinct_channels(logits: torch.Tensor, num_slots: int) -> Optional[tuple[list[int], torch.Tensor]]:
    """Channels that differ, and how many channels each stands for, when the channels after the object
    slots (``num_slots + 1 .. K - 2``) are exact copies of channel 0, as :func:`soft_aggregate` makes them
    (all hold the clamped zero probability): ``([0, 1..num_slots, K - 1], [K - 1 - num_slots, 1, ..., 1])``.
    ``None`` when they are not copies (other logits), or there is nothing to save.

    Per-channel loss terms summed over K channels then equal the sum over these channels with these
    weights (up to float rounding), at a fraction of the cost on full-resolution maps.
    """
    channels = logits.shape[1]
    copies = logits[:, num_slots + 1 : channels - 1]
    if copies.shape[1] == 0 or not torch.equal(copies, logits[:, :1].expand_as(copies)):
        return None
    index = [*range(num_slots + 1), channels - 1]
    weights = torch.ones(len(index), device=logits.device, dtype=logits.dtype)
    weights[0] = channels - 1 - num_slots
    return index, weights


def smoothness_of_logits(logits: torch.Tensor, gray: torch.Tensor, alpha: float, num_slots: int) -> torch.Tensor:
    """:func:`edge_aware_smoothness` of ``softmax(logits)`` over all K channels, computed on the distinct
    channels only when the unused ones are copies of channel 0 (see :func:`distinct_channels`)."""
    probs = torch.softmax(logits, dim=1)
    distinct = distinct_channels(logits, num_slots)
    if distinct is None:
        return edge_aware_smoothness(probs, gray, alpha)
    index, weights = distinct
    return edge_aware_smoothness(probs[:, index], gray, alpha, weights)


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float, gamma: float = 2.0) -> torch.Tensor:
    """Element-wise focal loss (Lin et al.) of raw logits against binary targets."""
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def reliable_region_focal(
    logits: torch.Tensor,
    targets: torch.Tensor,
    ignore: torch.Tensor,
    valid: torch.Tensor,
    alpha: float,
    gamma: float = 2.0,
) -> torch.Tensor:
    """Focal loss of the per-object reliable-region logits on cells that are neither ignored nor padding.

    logits ``[L, B, no, h, w]``; targets and ignore ``[L, B, no, h, w]`` (binary); valid ``[B, no]``.
    Summed over the cells of weight 1, divided by their number (+1e-8).
    """
    weight = (1 - ignore) * valid[None, :, :, None, None]
    keep = weight == 1
    loss = sigmoid_focal_loss(logits[keep], targets[keep], alpha, gamma)
    return loss.sum() / (weight.sum() + 1e-8)


def consistency(forward_probs: torch.Tensor, backward_probs: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the clip's probabilities and the time-reversed pass's."""
    return F.mse_loss(forward_probs, backward_probs)


@dataclass
class LossTerms:
    """Every loss term of one training step (``total`` is the weighted sum that is optimised)."""

    partial_ce: torch.Tensor
    smoothness: torch.Tensor
    consistency: torch.Tensor
    reliable_focal: torch.Tensor
    total: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {
            k: float(getattr(self, k).detach())
            for k in ("partial_ce", "smoothness", "consistency", "reliable_focal", "total")
        }


def _stack_layer(per_frame: list[list[torch.Tensor]], layer: int) -> torch.Tensor:
    """``[B, L, ...]`` -> flattened ``[B*L, ...]`` of one refinement layer (sample-major like the labels)."""
    return torch.stack([frame[layer] for frame in per_frame], dim=1).flatten(0, 1)


def compute_losses(
    out: ClipOutput,
    batch: dict[str, torch.Tensor],
    cfg: LossConfig,
    reversed_out: Optional[ClipOutput] = None,
) -> LossTerms:
    """All training losses of a clip from the forward pass (and the reversed pass, for consistency)."""
    labels = batch["scribbles"].flatten(0, 1).long()  # [B*L, H, W]
    gray = batch["gray"].flatten(0, 1)
    zero = labels.new_zeros((), dtype=out.valid.dtype)
    pce, smooth, cons = zero, zero, zero
    for layer in range(len(out.mask_logits[0])):
        logits = _stack_layer(out.mask_logits, layer)
        pce = pce + partial_cross_entropy(logits, labels, cfg.MASK.BG_WEIGHT)
        if cfg.SMOOTH.WEIGHT != 0:
            smooth = smooth + smoothness_of_logits(logits, gray, cfg.SMOOTH.ALPHA, out.valid.shape[1])
        if reversed_out is not None and cfg.CONSISTENCY.WEIGHT != 0:
            fwd = _stack_layer(out.mask_probs, layer)
            bwd = _stack_layer(reversed_out.mask_probs[::-1], layer)
            cons = cons + consistency(fwd, bwd)
    focal = zero
    if cfg.SCRIBBLE_LOSS.WEIGHT != 0:
        no = out.valid.shape[1]
        frames = len(out.reliable_logits)
        batch_size = out.valid.shape[0]
        logits = torch.stack(out.reliable_logits).view(
            frames, batch_size, no, *out.reliable_logits[0].shape[-2:]
        )
        targets = batch["ds_scribbles"].transpose(0, 1)[:, :, 1 : no + 1]
        ignore = batch["ignore_regions"].transpose(0, 1)[:, :, 1 : no + 1]
        focal = reliable_region_focal(
            logits, targets, ignore, out.valid, cfg.SCRIBBLE_LOSS.ALPHA, cfg.SCRIBBLE_LOSS.GAMMA
        )
    total = (
        cfg.MASK.WEIGHT * pce
        + cfg.SMOOTH.WEIGHT * smooth
        + cfg.CONSISTENCY.WEIGHT * cons
        + cfg.SCRIBBLE_LOSS.WEIGHT * focal
    )
    return LossTerms(pce, smooth, cons, focal, total)
