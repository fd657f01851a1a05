"""Building models and loading checkpoints (ours and the authors' format)."""

from __future__ import annotations

import copy
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

import torch

from rhmnet.config import Config, config_from_dict, load_config
from rhmnet.errors import RHMNetError
from rhmnet.guards import file_mode, load_weights_only, non_finite_tensors
from rhmnet.model import RHMNet

CHECKPOINT_FORMAT = "rhmnet"
TMP_SUFFIX = ".tmp"  # atomic_save writes ".<name>.<random>.tmp" beside the target, then renames it

# authors' parameter-name prefixes -> ours (first match wins)
_AUTHOR_PREFIXES = [
    ("backbone.layer0.0.", "backbone.conv1."),
    ("backbone.layer0.1.", "backbone.bn1."),
    ("transformer.decoders.", "decoder."),
    ("transformer.scribble_predictor.", "reliable_head."),
    ("scribble_predictor.", "reliable_head."),
    ("transformer.segmentors.", "mask_heads."),
    ("segmentors.", "mask_heads."),
    ("hr_embed_obj.", "level_embedding.obj."),
    ("hr_embed_bg.", "level_embedding.bg."),
]


class CheckpointError(RHMNetError, ValueError):
    """A file that is not a usable RHMNet checkpoint."""


def build_model(cfg: Config, device: Union[str, torch.device] = "cpu") -> RHMNet:
    """A fresh model for ``cfg`` (ImageNet backbone weights when MODEL.BACKBONE.PRETRAINED)."""
    return RHMNet(cfg).to(device)


def author_to_ours(name: str) -> str:
    """Map one of the authors' parameter names to ours."""
    for old, new in _AUTHOR_PREFIXES:
        if name.startswith(old):
            return new + name[len(old) :]
    return name


def ours_to_author(name: str) -> str:
    """Map one of our parameter names to the authors' (their first, canonical spelling)."""
    for old, new in _AUTHOR_PREFIXES:
        if name.startswith(new):
            return old + name[len(new) :]
    return name


def convert_author_state_dict(state: dict[str, torch.Tensor], path: str = "<state dict>") -> dict[str, torch.Tensor]:
    """Rename the authors' keys; their heads are stored twice (shared modules), and both copies must agree."""
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            continue
        new = author_to_ours(name)
        if new in out:
            if out[new].shape != tensor.shape or not torch.equal(out[new], tensor):
                raise CheckpointError(f"{path}: duplicate parameters for {new} disagree ({name})")
            continue
        out[new] = tensor
    return out


def read_checkpoint(path: Union[str, Path]) -> dict[str, Any]:
    """Load a checkpoint file (weights only) and check that it is ours or the authors' format."""
    path = Path(path)
    data = load_weights_only(path, "checkpoint", CheckpointError)
    if not isinstance(data, dict) or not (
        data.get("format") == CHECKPOINT_FORMAT or isinstance(data.get("state_dict"), dict)
    ):
        raise CheckpointError(
            f"{path}: not an RHMNet checkpoint (expected our format or the authors' {{'epoch', 'state_dict'}})"
        )
    return data


def model_state_from_checkpoint(data: dict[str, Any], path: str = "<checkpoint>") -> dict[str, torch.Tensor]:
    """Model weights (our names, float32) from either checkpoint format."""
    if data.get("format") == CHECKPOINT_FORMAT:
        state = data["model"]
    else:
        state = convert_author_state_dict(data["state_dict"], path)
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def check_finite_weights(state: dict[str, torch.Tensor], path: str = "<checkpoint>") -> None:
    """A CheckpointError naming every tensor that holds a NaN or Inf (such weights give garbage outputs)."""
    bad = non_finite_tensors(state)
    if bad:
        raise CheckpointError(
            f"{path}: {len(bad)} tensor(s) hold NaN or Inf values: {', '.join(bad[:20])}"
            + (", ..." if len(bad) > 20 else "")
        )


def load_weights(model: RHMNet, state: dict[str, torch.Tensor], path: str = "<checkpoint>") -> None:
    """Load weights, requiring every key to be accounted for and every value to be finite."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        lines = [f"{path}: checkpoint does not match the model configuration"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {', '.join(missing[:20])}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {', '.join(unexpected[:20])}")
        if wrong:
            lines.append(
                "  shape mismatch: "
                + ", ".join(f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in wrong[:20])
            )
        raise CheckpointError("\n".join(lines))
    check_finite_weights(state, path)
    model.load_state_dict(state)


def load_model(
    path: Union[str, Path],
    config: Union[Config, str, None] = None,
    device: Union[str, torch.device] = "cpu",
    overrides: Optional[list[str]] = None,
) -> RHMNet:
    """Load a model from our checkpoints or the authors' ``{'epoch', 'state_dict'}`` files.

    The config comes from ``config`` (a :class:`Config` or a config name/path), else from the checkpoint
    (ours store it), else ``video_training``; ``overrides`` (``KEY=value``) apply on top of a named or
    stored config. The model is returned in eval mode on ``device``.
    """
    return model_from_checkpoint(read_checkpoint(path), path, config, device, overrides)


def model_from_checkpoint(
    data: dict[str, Any],
    path: Union[str, Path],
    config: Union[Config, str, None] = None,
    device: Union[str, torch.device] = "cpu",
    overrides: Optional[list[str]] = None,
) -> RHMNet:
    """:func:`load_model` from a checkpoint already read by :func:`read_checkpoint` (``path`` names it in
    errors)."""
    if isinstance(config, Config):
        cfg = copy.deepcopy(config)
    elif config is not None:
        cfg = load_config(config, overrides)
    elif data.get("format") == CHECKPOINT_FORMAT and "config" in data:
        cfg = config_from_dict(data["config"], overrides)
    else:
        cfg = load_config("video_training", overrides)
    cfg.MODEL.BACKBONE.PRETRAINED = False  # the checkpoint holds the backbone weights
    state = model_state_from_checkpoint(data, str(path))
    use_checkpoint_position_table(cfg, state)
    model = RHMNet(cfg)
    load_weights(model, state, str(path))
    return model.to(device).eval()


POSITION_TABLE_KEYS = ("position_embedding.row_embed.weight", "position_embedding.col_embed.weight")


def use_checkpoint_position_table(cfg: Config, state: dict[str, torch.Tensor]) -> None:
    """Where ``cfg`` names no ``MODEL.POS_TABLE_SIZE``, take the size of the checkpoint's position table
    (otherwise it would be derived from ``DATASETS.CROP_SIZE``, and a model trained at another crop size,
    e.g. the authors' 24 x 24 table, could not be loaded for fine-tuning at a new crop size)."""
    if cfg.MODEL.POS_TABLE_SIZE or not all(k in state for k in POSITION_TABLE_KEYS):
        return
    cfg.MODEL.POS_TABLE_SIZE = [int(state[k].shape[0]) for k in POSITION_TABLE_KEYS]


def atomic_save(obj: Any, path: Union[str, Path]) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file.
    The file gets the usual permissions of a new file (0666 less the umask; mkstemp's are 0600)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_model(model: RHMNet, path: Union[str, Path], config: Optional[Config] = None, **extra: Any) -> None:
    """Save weights and config (``config``, default the model's own) in our format (atomically); ``extra``
    adds e.g. epoch or optimizer state."""
    atomic_save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": 1,
            "model": model.state_dict(),
            "config": (config or model.cfg).to_dict(),
            **extra,
        },
        path,
    )
