"""Prediction overlays for TensorBoard: the first frame with its scribbles, then every frame with the
predicted masks of the last refinement layer, one row per clip."""

from __future__ import annotations

import numpy as np
import torch

from rhmnet.model.attach import BACKGROUND
from rhmnet.model.backbone import IMAGENET_NORMALISATION, Normalisation

# one colour per object id 1..10 (RGB)
PALETTE = np.array(
    [[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
     [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]],
    dtype=np.float32,
)


def denormalize(images: torch.Tensor, normalisation: Normalisation) -> np.ndarray:
    """Images ``[..., 3, H, W]`` normalised by ``normalisation`` -> uint8 RGB ``[..., H, W, 3]``."""
    mean, std = normalisation.tensors()
    rgb = images.detach().float().cpu() * std + mean
    return (rgb.clamp(0, 1) * 255).round().byte().movedim(-3, -1).numpy()


def paint(image: np.ndarray, labels: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend object colours into ``image`` where ``labels`` is 1..10; background scribbles become white."""
    out = image.astype(np.float32)
    objects = (labels > 0) & (labels < len(PALETTE))
    colours = PALETTE[np.where(objects, labels, 0)]
    out[objects] = (1 - alpha) * out[objects] + alpha * colours[objects]
    out[labels == BACKGROUND] = 255.0
    return out.round().astype(np.uint8)


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
        tiles = [paint(frames[b, 0], first[b])]
        tiles += [paint(frames[b, t], masks[b, t]) for t in range(masks.shape[1])]
        rows.append(np.concatenate(tiles, axis=1))
    return np.concatenate(rows, axis=0)
