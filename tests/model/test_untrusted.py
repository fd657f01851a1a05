"""Files from elsewhere never run code, non-finite weights or probabilities never become label maps."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import rhmnet
from rhmnet.config import ConfigError, load_config
from rhmnet.inference import InferenceError, VideoSegmenter
from rhmnet.model.backbones import ResNetBackbone, load_imagenet_weights
from rhmnet.model_io import CheckpointError
from rhmnet.tools import reference_check
from tests.conftest import TINY_OVERRIDES


class _RunsCode:
    """Unpickling this writes a marker file: what a hostile file could do with a full unpickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_reference_file_cannot_run_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "marker"
    hostile = tmp_path / "reference.pt"
    torch.save({"config": "video_training", "payload": _RunsCode(marker)}, hostile)
    status = reference_check.main(["--checkpoint", str(tmp_path / "unused.pth"), "--reference", str(hostile),
                                   "--out", str(tmp_path / "ours.pt")])
    assert status == 2 and not marker.exists() and not (tmp_path / "ours.pt").exists()
    assert "not a weights-only reference file" in capsys.readouterr().err



def test_checkpoint_that_would_run_code_is_refused_in_one_line(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    hostile = tmp_path / "pretrain_checkpoint_1.pth.tar"
    torch.save({"epoch": 1, "state_dict": _RunsCode(marker)}, hostile)
    with pytest.raises(CheckpointError) as info:
        rhmnet.load_model(hostile, config="video_training")
    message = str(info.value)
    assert not marker.exists()
    assert len(message.splitlines()) == 1 and "could run code when loaded: refused" in message

def test_reference_without_expected_values_is_not_compared() -> None:
    """Gradient names (or losses, outputs) listed without values: nothing to compare, no crash."""
    ours = {"train_outputs": {"valid": torch.ones(2)}, "train_losses": {"total": torch.tensor(1.0)},
            "train_grads": {"a.weight": torch.ones(3)}, "video_default": {"multi_pred_prob": torch.ones(2)}}
    ref = {"train_outputs": {"valid": None}, "train_losses": {"total": None},
           "train_grads": {"a.weight": None}, "video_default": {"multi_pred_prob": None}}
    assert reference_check.compare(ours, ref) == []
    ref["train_grads"]["a.weight"] = torch.ones(3)
    assert [r.name for r in reference_check.compare(ours, ref)] == ["train_grads.a.weight"]


def _tiny_model():
    torch.manual_seed(0)
    return rhmnet.build_model(load_config("video_training", TINY_OVERRIDES))


def test_load_model_rejects_non_finite_weights(tmp_path: Path) -> None:
    model = _tiny_model()
    state = model.state_dict()
    state["backbone.bn1.weight"][3] = float("nan")
    state["mask_heads.0.conv_out.bias"][0] = float("inf")
    path = tmp_path / "nan.pth.tar"
    torch.save({"epoch": 1, "state_dict": state}, path)
    with pytest.raises(CheckpointError, match=r"2 tensor\(s\) hold NaN or Inf.*backbone.bn1.weight") as info:
        rhmnet.load_model(path, load_config("video_training", TINY_OVERRIDES))
    assert "conv_out.bias" in str(info.value)


def test_non_finite_probabilities_are_an_error(tiny_model) -> None:
    model = copy.deepcopy(tiny_model)
    with torch.no_grad():
        for head in model.mask_heads:
            head.conv_out.bias.fill_(float("nan"))
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    scribble = np.zeros((48, 64), np.uint8)
    scribble[10:14, 10:30] = 1
    seg = VideoSegmenter(model)
    seg.initialize(frame, scribble)
    result = seg.step(frame)  # no host synchronisation inside step: the check runs where labels are made
    with pytest.raises(InferenceError, match="frame 0: the model produced NaN or Inf probabilities"):
        _ = result.labels


def test_backbone_weights_file_must_be_weights_only(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": _RunsCode(marker)}, path)
    with pytest.raises(ConfigError, match="MODEL.BACKBONE.WEIGHTS_PATH"):
        load_imagenet_weights(ResNetBackbone("resnet18"), str(path))
    assert not marker.exists()
