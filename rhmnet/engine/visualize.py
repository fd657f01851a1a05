"""Prediction overlays for TensorBoard: the first frame with its scribbles, then every frame with the
predicted masks of the last refinement layer, one row per clip."""

from __future__ import annotations

import numpy as np
import torch

from rhmnet.labels import BACKGROUND
from rhmnet.model.backbones import IMAGENET_NORMALISATION, Normalisation
from rhmnet.overlay import overlay


def denormalize(images: torch.Tensor, normalisation: Normalisation) -> np.ndarray:
    """Images ``[..., 3, H, W]`` normalised by ``normalisation`` -> uint8 RGB ``[..., H, W, 3]``."""
    mean, std = normalisation.tensors()
    rgb = images.detach().float().cpu() * std + mean
    return (rgb.clamp(0, 1) * 255).round().byte().movedim(-3, -1).numpy()


def overlay_clip(
    images: torch.Tensor,
    scribbles: torch.Tensor,
    probs: list[torch.Tensor],
    max_clips: int = 4,
    normalisation: Normalisation = IMAGENET_NORMALISATION,
) -> np.ndarray:
    """Grid ``[rows*H, (L+1)*W, 3]`` uint8: per clip, frame 0 with its scribbles, then each frame with the
    argmax of the predicted probabilities (objects coloured, background left as is).

    images ``[B, L, 3, H, W]`` (normalised by ``normalisation``, the backbone's), scribbles ``[B, L, H, W]``,
    probs: per frame ``[B, K, H, W]``.
    """
    count = min(max_clips, images.shape[0])
    frames = denormalize(images[:count], normalisation)  # [b, L, H, W, 3]
    first = scribbles[:count, 0].cpu().numpy()
    masks = torch.stack([p[:count].detach().float().argmax(1) for p in probs], 1).cpu().numpy()  # b, L, H, W
    masks[masks == BACKGROUND] = 0
    rows = []
    for b in range(count):
        tiles = [overlay(frames[b, 0], first[b], alpha=0.6, outline=False, show_background=True)]
        tiles += [overlay(frames[b, t], masks[b, t], alpha=0.6, outline=False) for t in range(masks.shape[1])]
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)
