"""Batch-norm folding, the one fast path of every backbone.

A backbone runs as a sequence of stages (stem first). A stage that is a fixed function of its input can
run through a *folded copy*: each batch norm folded into the convolution before it (one convolution with
a bias), channels-last weights. Same outputs up to float rounding, markedly faster (docs/measurements.md).

The copies are built by :meth:`FoldableBackbone.refresh_folding` and never follow the weights on their
own. The rule:

- ``refresh_folding()`` runs on every ``train()`` / ``eval()``, after ``load_state_dict()`` (and the
  backbone weight loaders), on :meth:`~FoldableBackbone.fold_batch_norm`, and when ``build_backbone`` has
  finished the backbone; :meth:`~FoldableBackbone.unfold_batch_norm` drops every copy;
- in train mode only stages that nothing trains (no parameter requires grad) get copies, so optimiser
  steps never leave one stale;
- anything else that changes weights in place calls ``refresh_folding()`` (``RHMNet.refresh_folding`` for
  a whole model) or ``unfold_batch_norm()`` itself: a hand edit, and the training's moving average of the
  weights (``rhmnet.engine.trainer.update_moving_average``);
- copies made for another device or dtype than the weights' are rebuilt before they are used.

Which stages get copies, and when a forward pass may use them, each backbone decides
(:meth:`FoldableBackbone.gets_folded_copy`, :meth:`FoldableBackbone.runs_folded`).
"""

from __future__ import annotations

import copy
import itertools
import sys
from collections.abc import Iterable

import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d as TorchvisionFrozenBatchNorm2d  # timm's frozen plain BN

from rhmnet.model.ops import FrozenBatchNorm2d, OneDnnConv2d, bn_scale_and_shift

_DROPOUT_TYPES = ("DropPath", "DropBlock2d")
_PLAIN_NORMS = (nn.BatchNorm2d, FrozenBatchNorm2d, TorchvisionFrozenBatchNorm2d)


def trains(stage: nn.Module) -> bool:
    """Whether any parameter of ``stage`` requires grad."""
    return any(p.requires_grad for p in stage.parameters())


def has_fixed_function(stage: nn.Module) -> bool:
    """Whether ``stage``'s batch norms use fixed statistics and nothing in it is random (its weights aside,
    a fixed function of its input)."""
    for module in stage.modules():
        if not module.training:
            continue
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return False
        random = isinstance(module, nn.modules.dropout._DropoutNd) or type(module).__name__ in _DROPOUT_TYPES
        if random and float(getattr(module, "p", getattr(module, "drop_prob", 0.0)) or 0.0) > 0:
            return False
    return True


def is_constant_stage(stage: nn.Module) -> bool:
    """Whether a backbone stage is a fixed function of its input here: no parameter it holds is being
    trained (or gradients are off), its batch norms use fixed statistics and nothing in it is random."""
    if torch.is_grad_enabled() and trains(stage):
        return False
    return has_fixed_function(stage)


def _fused_norms() -> tuple[type, ...]:
    """timm's batch norms with a fused activation (a stage can only hold them once timm is imported)."""
    layers = sys.modules.get("timm.layers")
    return () if layers is None else (layers.BatchNormAct2d, layers.FrozenBatchNormAct2d)


def folded_copy(stage: nn.Module, onednn_pointwise: bool = False) -> nn.Module:
    """A channels-last copy of a fixed stage in which each batch norm (with or without timm's fused
    activation) is folded into the convolution registered just before it; the copy holds no trainable
    parameters and is not part of any state dict. ``onednn_pointwise``: the copy's plain convolutions run
    through :func:`rhmnet.model.ops.conv2d`."""
    fused_norms = _fused_norms()
    with torch.inference_mode(False), torch.no_grad():
        # the modules are copied, the tensors are not: each becomes a detached alias of the stage's own (which
        # nothing below changes in place), and every folded weight a new tensor
        memo = {id(t): _alias(t) for t in (*stage.parameters(), *stage.buffers())}
        folded = copy.deepcopy(stage, memo)
        for parent in list(folded.modules()):
            children = list(parent.named_children())
            for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
                fused = isinstance(bn, fused_norms)
                if not (isinstance(conv, nn.Conv2d) and (fused or isinstance(bn, _PLAIN_NORMS))):
                    continue
                scale, shift = bn_scale_and_shift(bn)
                conv.weight = nn.Parameter(conv.weight * scale.view(-1, 1, 1, 1), requires_grad=False)
                bias = shift if conv.bias is None else conv.bias * scale + shift
                conv.bias = nn.Parameter(bias, requires_grad=False)
                setattr(parent, bn_name, nn.Sequential(bn.drop, bn.act) if fused else nn.Identity())
                if onednn_pointwise and type(conv) is nn.Conv2d and conv.padding_mode == "zeros":
                    setattr(parent, conv_name, OneDnnConv2d(conv))
        folded.requires_grad_(False)
        return folded.eval().to(memory_format=torch.channels_last)


def _alias(tensor: torch.Tensor) -> torch.Tensor:
    """A tensor sharing ``tensor``'s storage but not its autograd identity (a parameter stays one)."""
    alias = tensor.detach()
    return nn.Parameter(alias, requires_grad=False) if isinstance(tensor, nn.Parameter) else alias


def _first_tensor(module: nn.Module) -> torch.Tensor:
    return next(itertools.chain(module.parameters(), module.buffers()))


class FoldableBackbone(nn.Module):
    """A backbone run stage by stage, whose leading stages can run through folded copies (the module
    docstring gives the rule that keeps the copies current).

    Subclasses give :meth:`stages` and the policy: which stages get copies (:meth:`gets_folded_copy`) and
    when a forward pass may use one (:meth:`runs_folded`). :meth:`fold_batch_norm` turns the inference path
    on (eval mode only), :meth:`unfold_batch_norm` and ``train()`` turn it off.
    """

    onednn_pointwise = False  # folded plain convolutions run through rhmnet.model.ops.conv2d

    def __init__(self) -> None:
        super().__init__()
        self.inference_path = False
        self._folded_stages: list[nn.Module] = []  # a plain list: not submodules, not in the state dict
        self.register_load_state_dict_post_hook(lambda module, _keys: module.refresh_folding())

    def stages(self) -> list[nn.Module]:
        """The stem and the stages after it, input first (what ``MODEL.BACKBONE.FROZEN_STAGES`` counts)."""
        raise NotImplementedError

    def gets_folded_copy(self, stage: nn.Module) -> bool:
        """Whether :meth:`refresh_folding` gives ``stage`` a folded copy (leading stages only)."""
        raise NotImplementedError

    def runs_folded(self, stage: nn.Module) -> bool:
        """Whether this forward pass may run ``stage`` through its folded copy (leading stages only)."""
        raise NotImplementedError

    # -- the rule ------------------------------------------------------------------------------------------
    def refresh_folding(self) -> None:
        """(Re)build the folded copies from the current weights; call it after changing weights in place."""
        stages = self.stages()
        count = 0
        while count < len(stages) and self.gets_folded_copy(stages[count]):
            count += 1
        self._folded_stages = [folded_copy(stage, self.onednn_pointwise) for stage in stages[:count]]

    def train(self, mode: bool = True) -> FoldableBackbone:
        if mode:
            self.inference_path = False
        super().train(mode)
        self.refresh_folding()
        return self

    def fold_batch_norm(self) -> None:
        """Switch to the inference path (requires eval mode: batch norm statistics must be fixed)."""
        if self.training:
            raise RuntimeError("fold_batch_norm() needs eval mode (batch norm statistics must be fixed)")
        self.inference_path = True
        self.refresh_folding()

    def unfold_batch_norm(self) -> None:
        """Leave the inference path and drop every folded copy: all stages run unfolded until the next
        :meth:`refresh_folding`, ``train()`` / ``eval()``, ``load_state_dict()`` or :meth:`fold_batch_norm`
        (for weights that change often and rarely run, such as a moving average of the trained ones)."""
        self.inference_path = False
        self._folded_stages = []

    @property
    def batch_norm_folded(self) -> bool:
        """Whether the inference path (:meth:`fold_batch_norm`) is in effect."""
        return self.inference_path

    # -- the forward pass -----------------------------------------------------------------------------
    def folded_prefix(self, stages: list[nn.Module]) -> list[nn.Module]:
        """The folded copies this forward pass runs: those of the leading stages that :meth:`runs_folded`
        allows, rebuilt first when the weights moved to another device or dtype."""
        folded = self._folded_stages
        if folded:
            copied, live = _first_tensor(folded[0]), _first_tensor(stages[0])
            if (copied.device, copied.dtype) != (live.device, live.dtype):
                self.refresh_folding()
                folded = self._folded_stages
        count = 0
        while count < len(folded) and self.runs_folded(stages[count]):
            count += 1
        return folded[:count]

    def run_stages(self, x: torch.Tensor, outputs: Iterable[int]) -> list[torch.Tensor]:
        """The outputs of the stages numbered ``outputs``, the leading ones run folded where allowed."""
        stages = self.stages()
        folded = self.folded_prefix(stages)
        if folded or self.inference_path:
            x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on CPU and GPU
        wanted, features = set(outputs), []
        for index, stage in enumerate(stages):
            x = folded[index](x) if index < len(folded) else stage(x)
            if index in wanted:
                features.append(x)
        return features
