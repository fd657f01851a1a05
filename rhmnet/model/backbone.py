"""ResNet feature extractor with frozen batch norm (strides 4, 8, 16)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet

from rhmnet.config import ConfigError

log = logging.getLogger(__name__)

_RESNETS = {
    "resnet18": (resnet.resnet18, resnet.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (resnet.resnet34, resnet.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (resnet.resnet50, resnet.ResNet50_Weights.IMAGENET1K_V1),
}


def conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: Optional[torch.Tensor],
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> torch.Tensor:
    """``F.conv2d``, except that 1x1 float32 convolutions on a single CPU thread run oneDNN as well.

    With one thread PyTorch sends 1x1 convolutions to its generic GEMM path, which measured about 2x
    slower than oneDNN on this project's CPU (with more threads PyTorch already uses oneDNN). Same
    arithmetic up to float rounding; differentiable.
    """
    if (
        weight.shape[-2:] == (1, 1)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and weight.dtype == torch.float32
        and torch.get_num_threads() == 1
        and torch.backends.mkldnn.is_available()
        and torch.backends.mkldnn.enabled
        and not torch.is_autocast_enabled("cpu")
    ):
        return torch.mkldnn_convolution(x, weight, bias, padding, stride, dilation, groups)
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def conv_module(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Apply an ``nn.Conv2d`` (zero padding) through :func:`conv2d`."""
    return conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


class FrozenBatchNorm2d(nn.Module):
    """Batch norm as a fixed affine map: ``y = x * w / sqrt(var + eps) + (b - mean * w / sqrt(var + eps))``."""

    def __init__(self, num_features: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features) - eps)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = bn_scale_and_shift(self)
        return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


def bn_scale_and_shift(bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel ``(scale, shift)`` of a frozen (or eval-mode) batch norm's affine map."""
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    return scale, bn.bias - bn.running_mean * scale


class Backbone(nn.Module):
    """torchvision ResNet up to ``layer3``; returns the outputs of layer1, layer2 and layer3.

    Batch norms are frozen affine maps (the paper); ``frozen_bn=False`` keeps ordinary trainable batch
    norms, which small models trained from scratch (the demo) need.
    """

    def __init__(self, name: str = "resnet50", frozen_bn: bool = True) -> None:
        super().__init__()
        if name not in _RESNETS:
            raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(_RESNETS)}")
        net = _RESNETS[name][0](weights=None, norm_layer=FrozenBatchNorm2d if frozen_bn else nn.BatchNorm2d)
        self.name = name
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        expansion = 4 if name == "resnet50" else 1
        self.channels = [64 * expansion, 128 * expansion, 256 * expansion]
        self._folded: Optional[dict[str, tuple[torch.Tensor, torch.Tensor]]] = None
        # weights loaded after folding would leave the folded copies stale: drop them
        self.register_load_state_dict_post_hook(lambda module, _keys: module.unfold_batch_norm())

    @property
    def batch_norm_folded(self) -> bool:
        """Whether :meth:`fold_batch_norm` is in effect (the inference fast path) for the current weights'
        device and dtype."""
        if self._folded is None:
            return False
        folded, weight = self._folded["stem"][0], self.conv1.weight
        return folded.device == weight.device and folded.dtype == weight.dtype

    def fold_batch_norm(self) -> None:
        """Inference fast path: fold each batch norm into the preceding convolution (channels-last weights).

        Requires eval mode. Undone by ``train()``, by loading weights and by :meth:`unfold_batch_norm`;
        call it again after changing weights in place or moving the model to another device or dtype.
        The folded path does not back-propagate into the original weights.
        """
        if self.training:
            raise RuntimeError("fold_batch_norm() needs eval mode (batch norm statistics must be fixed)")
        self._folded = self._fold()

    def unfold_batch_norm(self) -> None:
        """Back to the unfolded modules (training, or after changing weights)."""
        self._folded = None

    def train(self, mode: bool = True) -> Backbone:
        if mode:
            self.unfold_batch_norm()
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at strides 4, 8 and 16."""
        if self._folded is not None:
            return self._forward_folded(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f4 = self.layer1(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return [f4, f8, f16]

    # -- inference fast path (fold_batch_norm): batch norm folded into the preceding convolution ---------
    def _conv_bn_pairs(self) -> list[tuple[str, nn.Conv2d, nn.Module]]:
        pairs = [("stem", self.conv1, self.bn1)]
        for lname in ("layer1", "layer2", "layer3"):
            for bi, block in enumerate(getattr(self, lname)):
                convs = [n for n, _ in block.named_children() if n.startswith("conv")]
                for cname in convs:
                    bn = getattr(block, cname.replace("conv", "bn"))
                    pairs.append((f"{lname}.{bi}.{cname}", getattr(block, cname), bn))
                if block.downsample is not None:
                    pairs.append((f"{lname}.{bi}.downsample", block.downsample[0], block.downsample[1]))
        return pairs

    def _fold(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        folded = {}
        for key, conv, bn in self._conv_bn_pairs():
            scale, shift = bn_scale_and_shift(bn)
            weight = (conv.weight * scale.view(-1, 1, 1, 1)).detach()
            folded[key] = (weight.contiguous(memory_format=torch.channels_last), shift.detach())
        return folded

    def _forward_folded(self, x: torch.Tensor) -> list[torch.Tensor]:
        params = self._folded
        stem = params["stem"][0]
        if stem.device != x.device or stem.dtype != x.dtype:
            raise RuntimeError(
                f"batch norm was folded for {stem.device}/{stem.dtype}, the input is on {x.device}/{x.dtype}: "
                "call model.prepare_for_inference() again after moving the model"
            )

        def conv(key: str, module: nn.Conv2d, inp: torch.Tensor) -> torch.Tensor:
            w, b = params[key]
            return conv2d(inp, w, b, module.stride, module.padding, module.dilation, module.groups)

        x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on CPU and GPU
        x = self.maxpool(F.relu_(conv("stem", self.conv1, x)))
        outs = []
        for lname in ("layer1", "layer2", "layer3"):
            for bi, block in enumerate(getattr(self, lname)):
                prefix = f"{lname}.{bi}"
                convs = [n for n, _ in block.named_children() if n.startswith("conv")]
                identity = x if block.downsample is None else conv(f"{prefix}.downsample", block.downsample[0], x)
                out = x
                for i, cname in enumerate(convs):
                    out = conv(f"{prefix}.{cname}", getattr(block, cname), out)
                    if i < len(convs) - 1:
                        out = F.relu_(out)
                x = F.relu_(out.add_(identity))
            outs.append(x)
        return outs


def load_imagenet_weights(backbone: Backbone, weights_path: Optional[str] = None) -> None:
    """Load torchvision ImageNet weights from a local file, or download them when possible."""
    if weights_path:
        path = Path(weights_path)
        if not path.is_file():
            raise FileNotFoundError(f"backbone weights file not found: {path}")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a pickle with code, or not a torch file at all
            raise ConfigError(
                f"MODEL.BACKBONE.WEIGHTS_PATH {path}: not a weights-only torch state dict "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
        if not isinstance(state, dict):
            raise ConfigError(f"MODEL.BACKBONE.WEIGHTS_PATH {path}: expected a state dict, got {type(state).__name__}")
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    else:
        weights = _RESNETS[backbone.name][1]
        try:
            state = weights.get_state_dict(progress=False)
        except Exception as exc:  # no network, or no cached file
            raise RuntimeError(
                f"could not download ImageNet weights for {backbone.name} ({exc}); set "
                "MODEL.BACKBONE.WEIGHTS_PATH to a local torchvision state dict or MODEL.BACKBONE.PRETRAINED=False"
            ) from None
    state = {k: v for k, v in state.items() if not k.startswith(("layer4.", "fc."))}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"backbone weights do not match {backbone.name}: missing {missing}, unexpected {unexpected}")
    log.info("loaded ImageNet weights for %s", backbone.name)
