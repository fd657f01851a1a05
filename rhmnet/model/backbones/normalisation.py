"""The input statistics each backbone's weights expect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class Normalisation:
    """Per-channel input statistics: the network sees ``(rgb / 255 - mean) / std``."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def tensors(self, device: Any = "cpu", dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, std)`` as ``[3, 1, 1]`` tensors."""
        mean = torch.tensor(self.mean, device=device, dtype=dtype).view(3, 1, 1)
        std = torch.tensor(self.std, device=device, dtype=dtype).view(3, 1, 1)
        return mean, std


IMAGENET_NORMALISATION = Normalisation((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
LITE0_NORMALISATION = Normalisation((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))  # TF-trained EfficientNet-Lite: [-1, 1]
