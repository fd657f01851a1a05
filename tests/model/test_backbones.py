"""The backbone registry: ResNets, the packaged EfficientNet-Lite0 weights, other timm models."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torchvision

from rhmnet.config import load_config
from rhmnet.data.io import read_image
from rhmnet.model.backbones import (
    IMAGENET_NORMALISATION,
    LITE0_NORMALISATION,
    LITE0_TIMM_NAME,
    ResNetBackbone,
    backbone_normalisation,
    build_backbone,
    is_constant_stage,
    lite0_timm_state_dict,
    lite0_weights_path,
)
from rhmnet.model.ops import FrozenBatchNorm2d, OneDnnConv2d
from tests.conftest import shared_path

timm = pytest.importorskip("timm")


def backbone_config(name: str, *extra: str):
    """``MODEL.BACKBONE`` of the demo config with ``name`` and ``extra`` overrides."""
    return load_config("small_synthetic", [f"MODEL.BACKBONE.NAME={name}", *extra]).MODEL.BACKBONE


def test_lite0_weights_map_completely_and_classify_a_davis_frame() -> None:
    state = lite0_timm_state_dict()
    full = timm.create_model(LITE0_TIMM_NAME, pretrained=False)
    assert list(state) == list(full.state_dict())  # all 296 tensors placed, none left over
    full.load_state_dict(state, strict=True)
    frame = read_image(shared_path("data", "davis-sample", "JPEGImages", "480p", "bear", "00000.jpg"))
    image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float() / 255
    image = torch.nn.functional.interpolate(image[None], size=(224, 224), mode="bilinear", antialias=True)
    mean, std = LITE0_NORMALISATION.tensors()
    with torch.no_grad():
        probs = full.eval()((image - mean) / std).softmax(1)[0]
    assert int(probs.argmax()) == 294, f"top class {int(probs.argmax())} (p={float(probs.max()):.2f})"  # brown bear


def test_lite0_backbone_features_and_frozen_stages() -> None:
    backbone = build_backbone(backbone_config("efficientnet_lite0", "MODEL.BACKBONE.PRETRAINED=true",
                                              "MODEL.BACKBONE.BN_FROZEN=true", "MODEL.BACKBONE.FROZEN_STAGES=3"))
    assert backbone.channels == [24, 40, 112] and backbone.normalisation == LITE0_NORMALISATION
    expected = lite0_timm_state_dict()
    for name, tensor in backbone.model.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
    feats = backbone.eval()(torch.zeros(1, 3, 64, 96))
    assert [tuple(f.shape) for f in feats] == [(1, 24, 16, 24), (1, 40, 8, 12), (1, 112, 4, 6)]
    frozen = [n for n, p in backbone.named_parameters() if not p.requires_grad]
    trained = [n for n, p in backbone.named_parameters() if p.requires_grad]
    assert frozen and trained
    assert all(n.startswith(("model.conv_stem", "model.bn1", "model.blocks.0.", "model.blocks.1.")) for n in frozen)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())  # frozen statistics


def test_mismatched_lite0_file_is_a_clear_error(tmp_path) -> None:
    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    state["_conv_stem.weight"] = state["_conv_stem.weight"][:16]
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(ValueError, match=r"bad\.pth: tensor _conv_stem\.weight has shape \(16, 3, 3, 3\)"):
        lite0_timm_state_dict(bad)
    del state["_fc.bias"]
    torch.save(state, bad)
    with pytest.raises(ValueError, match=r"295 tensors"):
        lite0_timm_state_dict(bad)


def test_other_timm_models_by_name(tmp_path) -> None:
    cfg = backbone_config("mobilenetv3_small_050", "MODEL.BACKBONE.PRETRAINED=false")
    backbone = build_backbone(cfg)
    feats = backbone.eval()(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4] and [f.shape[1] for f in feats] == backbone.channels
    assert backbone_normalisation("mobilenetv3_small_050") == IMAGENET_NORMALISATION
    weights = tmp_path / "mnv3.pth"
    torch.save(timm.create_model("mobilenetv3_small_050", pretrained=False).state_dict(), weights)
    loaded = build_backbone(backbone_config("mobilenetv3_small_050", "MODEL.BACKBONE.PRETRAINED=true",
                                            f"MODEL.BACKBONE.WEIGHTS_PATH={weights}"))
    assert loaded.channels == backbone.channels
    with pytest.raises(ValueError, match="WEIGHTS_PATH"):
        build_backbone(backbone_config("mobilenetv3_small_050", "MODEL.BACKBONE.PRETRAINED=true"))
    with pytest.raises(ValueError, match="no_such_net"):
        build_backbone(backbone_config("no_such_net", "MODEL.BACKBONE.PRETRAINED=false"))


def test_resnet_keeps_imagenet_normalisation() -> None:
    backbone = build_backbone(backbone_config("resnet18", "MODEL.BACKBONE.PRETRAINED=false"))
    assert backbone.channels == [64, 128, 256] and backbone.normalisation == IMAGENET_NORMALISATION


def randomised_timm_backbone(name: str, frozen_stages: int):
    """A timm backbone with frozen batch norm whose statistics and weights are random (folding is not
    the identity then)."""
    backbone = build_backbone(backbone_config(name, "MODEL.BACKBONE.PRETRAINED=false", "MODEL.BACKBONE.BN_FROZEN=true",
                                              f"MODEL.BACKBONE.FROZEN_STAGES={frozen_stages}"))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name_, tensor in backbone.named_buffers():
            if name_.endswith("running_var"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif name_.endswith(("running_mean", ".bias")):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif name_.endswith(".weight"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return backbone


@pytest.mark.parametrize("name", ["efficientnet_lite0", "mobilenetv3_small_050"])
def test_frozen_stages_run_folded_with_the_same_outputs_and_gradients(name: str) -> None:
    backbone = randomised_timm_backbone(name, frozen_stages=3).train()
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    expected = list(backbone.model(x))  # timm's own forward: unfolded
    expected_grads = torch.autograd.grad(sum(f.square().sum() for f in expected), [
        p for p in backbone.parameters() if p.requires_grad])
    feats = backbone(x)
    folded = backbone.folded_prefix(backbone.stages())
    assert len(folded) == 3  # the three frozen stages ran folded
    norms = (timm.layers.FrozenBatchNormAct2d, torchvision.ops.misc.FrozenBatchNorm2d)
    assert not any(isinstance(m, norms) for stage in folded for m in stage.modules())  # all folded
    for got, want in zip(feats, expected):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    grads = torch.autograd.grad(sum(f.square().sum() for f in feats), [
        p for p in backbone.parameters() if p.requires_grad])
    for got, want in zip(grads, expected_grads):  # float rounding of large sums: relative to the largest
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-3 * float(want.abs().max()))
    assert all(k.startswith("model.") for k in backbone.state_dict())  # the copies are not saved


def test_folded_stages_follow_weight_changes_and_the_inference_path() -> None:
    backbone = randomised_timm_backbone("efficientnet_lite0", frozen_stages=4).train()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    backbone(x)
    state = {k: v * 1.5 if k.endswith("conv_stem.weight") else v for k, v in backbone.state_dict().items()}
    backbone.load_state_dict(state)  # in place: the folded copies must be rebuilt
    torch.testing.assert_close(backbone(x)[0], backbone.model(x)[0], rtol=1e-4, atol=1e-4)
    backbone.eval().fold_batch_norm()
    with torch.no_grad():
        feats = backbone(x)
        assert len(backbone.folded_prefix(backbone.stages())) == len(backbone.stages())  # all constant
        for got, want in zip(feats, backbone.model(x)):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_weights_made_under_inference_mode_fold_too() -> None:
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        backbone = randomised_timm_backbone("efficientnet_lite0", frozen_stages=0).eval()
        backbone.fold_batch_norm()
        feats = backbone(x)
        assert len(backbone.folded_prefix(backbone.stages())) == len(backbone.stages())
        for got, want in zip(feats, backbone.model(x)):  # channels-last input: float rounding only
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_trained_or_batch_statistics_stages_are_not_folded() -> None:
    backbone = randomised_timm_backbone("efficientnet_lite0", frozen_stages=0).train()
    stages = backbone.stages()
    assert not is_constant_stage(stages[0])  # its weights are being trained
    with torch.no_grad():
        assert is_constant_stage(stages[0])
    live = build_backbone(backbone_config("efficientnet_lite0", "MODEL.BACKBONE.PRETRAINED=false",
                                          "MODEL.BACKBONE.BN_FROZEN=false", "MODEL.BACKBONE.FROZEN_STAGES=2"))
    assert not is_constant_stage(live.train().stages()[0])  # batch statistics: not a fixed function
    assert is_constant_stage(live.eval().stages()[0])


def randomised_backbone(name: str):
    """A ResNet or timm backbone with frozen batch norm, random weights and statistics, in eval mode on
    the inference path."""
    if name.startswith("resnet"):
        backbone = build_backbone(backbone_config(name, "MODEL.BACKBONE.PRETRAINED=false",
                                                  "MODEL.BACKBONE.BN_FROZEN=true"))
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for tensor in backbone.buffers():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    else:
        backbone = randomised_timm_backbone(name, frozen_stages=0)
    backbone.eval().fold_batch_norm()
    return backbone


def assert_features_close(got: list[torch.Tensor], want: list[torch.Tensor]) -> None:
    """Equal up to float rounding (relative to each map's largest value)."""
    assert len(got) == len(want)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=2e-4 * float(b.abs().max()))


def unfolded_features(backbone, x: torch.Tensor) -> list[torch.Tensor]:
    """The features of ``backbone`` with nothing folded (a copy in eval mode, its folded copies dropped)."""
    reference = copy.deepcopy(backbone)
    reference.unfold_batch_norm()
    with torch.no_grad():
        return reference(x)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_folded_copies_follow_weights_changed_in_place_once_refreshed(name: str) -> None:
    """The copies never follow the weights by themselves: a change in place on an eval-mode backbone
    needs refresh_folding(); after it the outputs are those of the new weights."""
    backbone = randomised_backbone(name)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        stale = backbone(x)
        stem = backbone.stages()[0]
        conv = next(m for m in stem.modules() if isinstance(m, torch.nn.Conv2d))
        conv.weight.mul_(-2.0)
        norm_weight = next(b for n, b in stem.named_buffers() if n.endswith("weight"))
        norm_weight.mul_(3.0)
    expected = unfolded_features(backbone, x)
    assert not torch.allclose(stale[0], expected[0], atol=1e-3)  # the change matters
    with torch.no_grad():
        assert torch.equal(backbone(x)[0], stale[0])  # not refreshed yet: the copies are as built
        backbone.refresh_folding()
        assert backbone.batch_norm_folded and len(backbone.folded_prefix(backbone.stages())) == len(backbone.stages())
        assert_features_close(backbone(x), expected)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_loading_weights_or_switching_modes_refolds(name: str) -> None:
    backbone = randomised_backbone(name)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(5))
    state = {k: -v if k.endswith("weight") and v.dim() == 4 else v for k, v in backbone.state_dict().items()}
    backbone.load_state_dict(state)  # into the eval-mode, folded backbone
    assert backbone.batch_norm_folded
    expected = unfolded_features(backbone, x)
    with torch.no_grad():
        assert_features_close(backbone(x), expected)
    backbone.train()
    with torch.no_grad():
        for weight in backbone.parameters():  # as an optimiser would, in train mode
            weight.mul_(1.5)
    backbone.eval()  # back from training: timm's copies are built from the trained weights
    if name == "resnet18":
        assert not backbone.folded_prefix(backbone.stages())  # ResNets fold on the inference path only
        backbone.fold_batch_norm()
    expected = unfolded_features(backbone, x)
    with torch.no_grad():
        assert len(backbone.folded_prefix(backbone.stages())) == len(backbone.stages())
        assert_features_close(backbone(x), expected)


def test_resnet_inference_path_runs_folded_copies_outside_the_state_dict() -> None:
    backbone = randomised_backbone("resnet18")
    folded = backbone.folded_prefix(backbone.stages())
    assert len(folded) == 4  # stem and three stages
    assert not any(isinstance(m, (FrozenBatchNorm2d, torch.nn.BatchNorm2d)) for s in folded for m in s.modules())
    convs = [m for s in folded for m in s.modules() if isinstance(m, torch.nn.Conv2d)]
    through_ops = [m.conv for s in folded for m in s.modules() if isinstance(m, OneDnnConv2d)]
    assert convs and [id(c) for c in convs] == [id(c) for c in through_ops] and all(c.bias is not None for c in convs)
    assert not any(p.requires_grad for s in folded for p in s.parameters())
    assert set(backbone.state_dict()) == set(ResNetBackbone("resnet18").state_dict())
    backbone.train()
    assert not backbone.batch_norm_folded and not backbone.folded_prefix(backbone.stages())
