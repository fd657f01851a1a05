"""torchvision ResNets up to ``layer3`` (``resnet50``, the paper's, ``resnet34``, ``resnet18``)."""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import resnet

from rhmnet.config import ConfigError
from rhmnet.model.backbones.folding import FoldableBackbone
from rhmnet.model.backbones.normalisation import IMAGENET_NORMALISATION
from rhmnet.model.ops import FrozenBatchNorm2d

# name -> (constructor, ImageNet weights)
RESNETS = {
    "resnet18": (resnet.resnet18, resnet.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (resnet.resnet34, resnet.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (resnet.resnet50, resnet.ResNet50_Weights.IMAGENET1K_V1),
}


class ResNetBackbone(FoldableBackbone):
    """torchvision ResNet up to ``layer3``; returns the outputs of layer1, layer2 and layer3.

    Batch norms are frozen affine maps (the paper); ``frozen_bn=False`` keeps ordinary trainable batch
    norms, which small models trained from scratch (the demo) need. The inference path
    (:meth:`fold_batch_norm`) runs every stage through its folded copy, channels-last, whose plain
    convolutions go through :func:`rhmnet.model.ops.conv2d`; it does not back-propagate into the weights.
    """

    normalisation = IMAGENET_NORMALISATION
    onednn_pointwise = True

    def __init__(self, name: str = "resnet50", frozen_bn: bool = True) -> None:
        super().__init__()
        if name not in RESNETS:
            raise ConfigError(f"unknown ResNet backbone {name!r}; choose one of {sorted(RESNETS)}")
        net = RESNETS[name][0](weights=None, norm_layer=FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d)
        self.name = name
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        expansion = 4 if name == "resnet50" else 1
        self.channels = [64 * expansion, 128 * expansion, 256 * expansion]

    def stages(self) -> list[nn.Module]:
        """The stem (convolution, batch norm, ReLU, max pool) and the three stages, input first (what
        ``MODEL.BACKBONE.FROZEN_STAGES`` counts)."""
        stem = nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)
        return [stem, self.layer1, self.layer2, self.layer3]

    def gets_folded_copy(self, stage: nn.Module) -> bool:
        """Every stage, on the inference path only."""
        return self.inference_path

    def runs_folded(self, stage: nn.Module) -> bool:
        """Always where a copy exists (on the inference path)."""
        return True

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at strides 4, 8 and 16."""
        return self.run_stages(x, outputs=(1, 2, 3))
