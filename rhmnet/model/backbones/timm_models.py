"""timm backbones: ``efficientnet_lite0`` (timm's ``tf_efficientnet_lite0``) and any other timm model with
features at strides 4, 8 and 16."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rhmnet.config import ConfigError
from rhmnet.model.backbones.folding import FoldableBackbone, has_fixed_function, is_constant_stage, trains
from rhmnet.model.backbones.normalisation import Normalisation

FEATURE_STRIDES = (4, 8, 16)


def import_timm() -> Any:
    """The ``timm`` module, or an error that says how to install it."""
    try:
        import timm
    except ImportError:
        raise RuntimeError(
            "timm backbones need the 'timm' package (pip install timm); it is a default dependency of rhmnet"
        ) from None
    return timm


class TimmBackbone(FoldableBackbone):
    """A timm model's features at strides 4, 8 and 16 (``features_only``); layers past stride 16 are dropped
    where the architecture allows (EfficientNets), so they cost nothing.

    EfficientNet-style models run stage by stage: the leading stages that are constant functions of the
    input (no parameter being trained, batch norm frozen or in eval mode, nothing random: the frozen
    stages in training, every stage at inference) run through folded channels-last copies. Those give
    the same outputs up to float rounding and were measured 4x faster on a CPU (docs/measurements.md).
    The inference path (:meth:`fold_batch_norm`) adds channels-last inputs.
    """

    def __init__(self, name: str, timm_name: str, frozen_bn: bool, normalisation: Normalisation) -> None:
        super().__init__()
        timm = import_timm()
        try:
            probe = timm.create_model(timm_name, pretrained=False, features_only=True)
        except RuntimeError as exc:  # timm: "Unknown model (...)"
            raise ConfigError(f"MODEL.BACKBONE.NAME={name!r}: timm cannot build {timm_name!r} ({exc})") from None
        reductions = probe.feature_info.reduction()
        indices = []
        for stride in FEATURE_STRIDES:
            at_stride = [i for i, r in enumerate(reductions) if r == stride]
            if not at_stride:
                raise ConfigError(
                    f"MODEL.BACKBONE.NAME={name!r}: timm model {timm_name!r} has no features at stride {stride} "
                    f"(its feature strides are {reductions}); RHMNet needs strides {list(FEATURE_STRIDES)}"
                )
            indices.append(at_stride[-1])  # the deepest map at that stride
        self.model = timm.create_model(timm_name, pretrained=False, features_only=True, out_indices=tuple(indices))
        self._truncate_after_last_feature()
        self.name, self.timm_name = name, timm_name
        self.channels = list(self.model.feature_info.channels())
        self.normalisation = normalisation
        self.frozen_bn = frozen_bn

    def _truncate_after_last_feature(self) -> None:
        """EfficientNet feature extractors run every block; drop the ones after the stride-16 output."""
        stage_out = getattr(self.model, "_stage_out_idx", None)
        blocks = getattr(self.model, "blocks", None)
        if isinstance(stage_out, dict) and isinstance(blocks, nn.Sequential) and self.model.feature_hooks is None:
            self.model.blocks = blocks[: max(stage_out)]

    def freeze_batch_norm(self) -> None:
        """Batch norms become fixed affine maps with their current (ImageNet) statistics."""
        from timm.layers import freeze_batch_norm_2d

        self.model = freeze_batch_norm_2d(self.model)
        self.refresh_folding()

    def stages(self) -> list[nn.Module]:
        """The stem and the blocks in order, input first (what ``MODEL.BACKBONE.FROZEN_STAGES`` counts)."""
        if self._runs_stage_by_stage():
            m = self.model
            return [nn.Sequential(m.conv_stem, m.bn1, getattr(m, "act1", nn.Identity())), *m.blocks]
        return list(self.model.children())

    def _runs_stage_by_stage(self) -> bool:
        """Whether the model is one of timm's EfficientNet / MobileNetV3 feature extractors (stem, a sequence
        of blocks, outputs after some of them), whose forward :meth:`forward` repeats stage by stage so that
        constant leading stages can run folded."""
        from timm.models.efficientnet import EfficientNetFeatures
        from timm.models.mobilenetv3 import MobileNetV3Features

        m = self.model
        return isinstance(m, (EfficientNetFeatures, MobileNetV3Features)) and m.feature_hooks is None

    def gets_folded_copy(self, stage: nn.Module) -> bool:
        """Fixed stages of a stage-by-stage model: every one in eval mode, the untrained ones in training."""
        return (
            self._runs_stage_by_stage()
            and has_fixed_function(stage)
            and not (self.training and trains(stage))
        )

    def runs_folded(self, stage: nn.Module) -> bool:
        """Stages that are constant in this forward pass (and, in training, still untrained)."""
        return is_constant_stage(stage) and not (self.training and trains(stage))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at strides 4, 8 and 16."""
        if not self._runs_stage_by_stage():
            if self.inference_path:
                x = x.contiguous(memory_format=torch.channels_last)
            return list(self.model(x))
        return self.run_stages(x, outputs=self.model._stage_out_idx)
