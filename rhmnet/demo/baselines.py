"""The demo's two baselines, beside the trained model on the same videos: the first frame's dilated
scribble repeated on every frame, and a training-free cosine k-nearest-neighbour label propagation on the
pretrained backbone."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from rhmnet.data.io import read_image, write_palette_png
from rhmnet.inference.session import (
    normalise_frame,
    pad,
    pad_amounts,
    resize_scribble,
    scribble_to_onehot,
    working_size,
)
from rhmnet.labels import BACKGROUND
from rhmnet.model.backbones import AnyBackbone


def dilated_scribble_baseline(scribble: np.ndarray, frames: list[Path], out_dir: Path) -> None:
    """Every frame gets the first frame's object scribbles dilated by 1/32 of the frame's short side."""
    out_dir.mkdir(parents=True, exist_ok=True)
    radius = max(1, round(min(scribble.shape) / 32))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = np.zeros(scribble.shape, np.uint8)
    for obj in sorted(int(v) for v in np.unique(scribble) if 0 < v < BACKGROUND):
        mask[cv2.dilate((scribble == obj).astype(np.uint8), kernel) > 0] = obj
    for path in frames:
        write_palette_png(out_dir / f"{path.stem}.png", mask)


class KnnPropagation:
    """The training-free baseline: cosine k-nearest-neighbour label propagation on backbone features.

    Features: the stride-8 map and the upsampled stride-16 map, each L2-normalised, concatenated. Each
    frame's features vote (top ``k`` cosine similarities, softmax weights at ``temperature``) among the
    labels of the first frame's scribbled pixels and of the previous frame's confident predictions
    (probability >= ``confidence``). Frames are segmented at ``short_side`` like the model.
    """

    def __init__(
        self, backbone: AnyBackbone, short_side: int, k: int = 20, temperature: float = 0.05, confidence: float = 0.9
    ) -> None:
        self.backbone = backbone.eval()
        self.normalisation = backbone.normalisation
        self.short_side, self.k, self.temperature, self.confidence = short_side, k, temperature, confidence

    @torch.no_grad()
    def _features(self, frame: np.ndarray, size: tuple[int, int], padding: tuple[int, int, int, int]) -> torch.Tensor:
        x = normalise_frame(frame, self.normalisation, torch.device("cpu"))
        x = pad(F.interpolate(x, size=size, mode="bilinear", antialias=True), padding)
        _, f8, f16 = self.backbone(x)
        f16 = F.interpolate(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False)
        feats = torch.cat([F.normalize(f8, dim=1), F.normalize(f16, dim=1)], 1)
        return F.normalize(feats, dim=1)[0]  # [C, h, w]

    @torch.no_grad()
    def segment(self, frames: list[Path], scribble: np.ndarray, out_dir: Path) -> list[np.ndarray]:
        """Masks of every frame (frame 0 too) from the first frame's scribble; palette PNGs into ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        first = read_image(frames[0])
        frame_size = first.shape[:2]
        size = working_size(frame_size, self.short_side)
        padding = pad_amounts(*size, 16)
        objects = sorted(int(v) for v in np.unique(scribble) if 0 < v < BACKGROUND)
        classes = [BACKGROUND, *objects]  # vote channel c -> scribble value
        feats = self._features(first, size, padding)
        grid = feats.shape[-2:]
        onehot = pad(resize_scribble(scribble_to_onehot(scribble.astype(np.int64), torch.device("cpu")), size), padding)
        cells = resize_scribble(onehot, tuple(grid))[0]  # thin strokes survive the stride-8 grid
        seed_labels = torch.stack([cells[c] for c in classes])  # [C, h, w]
        seed_mask = seed_labels.sum(0) > 0
        seed_keys, seed_values = feats[:, seed_mask].T, seed_labels[:, seed_mask].T
        keys, values = seed_keys, seed_values
        masks = []
        for index, path in enumerate(frames):
            if index:
                feats = self._features(read_image(path), size, padding)
            query = feats.flatten(1).T  # [hw, C]
            sims = query @ keys.T
            top, where = sims.topk(min(self.k, keys.shape[0]), dim=1)
            weights = torch.softmax(top / self.temperature, dim=1)
            probs = (weights.unsqueeze(-1) * values[where]).sum(1).T.reshape(len(classes), *grid)
            confident = probs.max(0).values >= self.confidence
            label_index = probs.argmax(0)
            keys = torch.cat([seed_keys, feats[:, confident].T])
            values = torch.cat([seed_values, F.one_hot(label_index[confident], len(classes)).float()])
            up = F.interpolate(probs[None], size=onehot.shape[-2:], mode="bilinear", align_corners=False)
            left, right, top_, bottom = padding
            up = up[..., top_ : up.shape[-2] - bottom, left : up.shape[-1] - right]
            up = F.interpolate(up, size=frame_size, mode="bilinear", align_corners=False)[0]
            lookup = torch.tensor([0, *objects], dtype=torch.uint8)
            mask = lookup[up.argmax(0)].numpy()
            write_palette_png(out_dir / f"{path.stem}.png", mask)
            masks.append(mask)
        return masks
