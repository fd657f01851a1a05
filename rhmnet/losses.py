"""Scribble-supervised training losses of RHMNet (each a small function over plain tensors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from rhmnet.config import LossConfig
from rhmnet.labels import BACKGROUND
from rhmnet.model.rhmnet import ClipOutput

_SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
_SOBEL_Y = [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]
_LAPLACIAN = [[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]]


def partial_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, bg_weight: float) -> torch.Tensor:
    """Cross-entropy on scribbled pixels only: class weights 0 (unlabeled), ``bg_weight`` (background),
    1 (objects); mean over the weighted pixels. logits ``[N, K, H, W]``, labels ``[N, H, W]``."""
    weight = torch.ones(logits.shape[1], device=logits.device, dtype=logits.dtype)
    weight[0] = 0.0
    weight[BACKGROUND] = bg_weight
    return F.cross_entropy(logits, labels.long(), weight=weight)


def _filter(x: torch.Tensor, kernel: list[list[float]]) -> torch.Tensor:
    """3x3 filter with zero padding, applied to every channel of ``[N, C, H, W]`` independently."""
    k = torch.tensor(kernel, device=x.device, dtype=x.dtype).view(1, 1, 3, 3)
    n, c, h, w = x.shape
    return F.conv2d(x.reshape(n * c, 1, h, w), k, padding=1).view(n, c, h, w)


def _charbonnier(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x * x + 1e-6)


def edge_aware_smoothness(probs: torch.Tensor, gray: torch.Tensor, alpha: float = 10.0) -> torch.Tensor:
    """Penalise prediction gradients where the image is flat (pixel relations within a frame).

    Per channel: ``10 * mean(C(|Sobel_x p| e^{-a|Sobel_x g|}) + C(|Sobel_y p| e^{-a|Sobel_y g|}))
    + mean(C(|Lap p| e^{-a|Lap g|}))`` with Charbonnier ``C(x) = sqrt(x^2 + 1e-6)``; summed over channels,
    averaged over frames. probs ``[N, K, H, W]``, gray ``[N, H, W]``.
    """
    g = gray.unsqueeze(1)
    first = 0.0
    for kernel in (_SOBEL_X, _SOBEL_Y):
        weight = torch.exp(-alpha * _filter(g, kernel).abs())
        first = first + _charbonnier(_filter(probs, kernel).abs() * weight)
    second = _charbonnier(_filter(probs, _LAPLACIAN).abs() * torch.exp(-alpha * _filter(g, _LAPLACIAN).abs()))
    per_frame = 10.0 * first.mean(dim=(2, 3)) + second.mean(dim=(2, 3))  # [N, K]
    return per_frame.sum(1).mean()


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
            smooth = smooth + edge_aware_smoothness(torch.softmax(logits, dim=1), gray, cfg.SMOOTH.ALPHA)
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
