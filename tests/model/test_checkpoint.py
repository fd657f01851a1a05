"""Loading our checkpoints and the authors' format, with clear errors for anything else."""

from __future__ import annotations

import pytest
import torch

import rhmnet
from rhmnet.model_io import CheckpointError, ours_to_author
from tests.conftest import TINY_OVERRIDES, shared_path


def _author_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Our weights under the authors' names, heads stored twice as their shared modules are."""
    state = {}
    for name, tensor in model.state_dict().items():
        author = ours_to_author(name)
        state[author] = tensor.clone()
        if author.startswith(("transformer.segmentors.", "transformer.scribble_predictor.")):
            state[author[len("transformer.") :]] = tensor.clone()
    return state


def test_authors_checkpoint_loads_with_every_key_accounted_for():
    path = shared_path("reference", "official_random_init_fp16.pth.tar")
    model = rhmnet.load_model(path, "video_training")
    raw = torch.load(path, weights_only=True)["state_dict"]
    ours = model.state_dict()
    assert torch.equal(ours["level_embedding.obj.weight"], raw["hr_embed_obj.weight"].float())
    assert torch.equal(ours["mask_heads.0.conv_out.bias"], raw["segmentors.0.conv_out.bias"].float())
    assert torch.equal(ours["backbone.conv1.weight"], raw["backbone.layer0.0.weight"].float())
    assert not model.training


def test_author_format_round_trip(tmp_path, tiny_model, tiny_config):
    path = tmp_path / "authors.pth.tar"
    torch.save({"epoch": 3, "state_dict": _author_state(tiny_model)}, path)
    loaded = rhmnet.load_model(path, tiny_config)
    for name, tensor in tiny_model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_our_format_round_trip_keeps_the_config(tmp_path, tiny_model):
    path = tmp_path / "ours.pth"
    rhmnet.save_model(tiny_model, path, epoch=5)
    loaded = rhmnet.load_model(path)  # config comes from the checkpoint
    assert loaded.cfg.MODEL.HIDDEN_DIM == 64
    assert torch.equal(
        loaded.state_dict()["decoder.0.linear1.weight"], tiny_model.state_dict()["decoder.0.linear1.weight"]
    )


def test_missing_and_unexpected_keys_are_listed(tmp_path, tiny_model, tiny_config):
    state = _author_state(tiny_model)
    del state["transformer.decoders.1.norm3.bias"]
    state["transformer.extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth.tar"
    torch.save({"epoch": 0, "state_dict": state}, path)
    with pytest.raises(CheckpointError) as info:
        rhmnet.load_model(path, tiny_config)
    message = str(info.value)
    assert "decoder.1.norm3.bias" in message and "transformer.extra.weight" in message and str(path) in message


def test_disagreeing_duplicate_heads_are_an_error(tmp_path, tiny_model, tiny_config):
    state = _author_state(tiny_model)
    state["segmentors.0.conv_out.bias"] = state["segmentors.0.conv_out.bias"] + 1
    path = tmp_path / "dup.pth.tar"
    torch.save({"epoch": 0, "state_dict": state}, path)
    with pytest.raises(CheckpointError, match="disagree"):
        rhmnet.load_model(path, tiny_config)


def test_wrong_config_is_a_shape_error(tmp_path, tiny_model):
    path = tmp_path / "tiny.pth"
    rhmnet.save_model(tiny_model, path)
    with pytest.raises(CheckpointError, match="shape mismatch|missing keys"):
        rhmnet.load_model(path, "video_training", overrides=["MODEL.BACKBONE.PRETRAINED=false"])


@pytest.mark.parametrize("content", [b"not a checkpoint at all", None])
def test_non_checkpoint_files_get_a_clear_error(tmp_path, content):
    path = tmp_path / "file.pth"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path.name)):
        rhmnet.load_model(path)
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        rhmnet.load_model(tmp_path / "missing.pth")


def test_backbone_weights_from_a_local_file(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    reference = resnet18()
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    cfg = rhmnet.load_config(
        "video_training", TINY_OVERRIDES + ["MODEL.BACKBONE.PRETRAINED=true", f"MODEL.BACKBONE.WEIGHTS_PATH={path}"]
    )
    model = rhmnet.build_model(cfg)
    assert torch.equal(model.backbone.layer2[0].conv1.weight, reference.layer2[0].conv1.weight)
    assert torch.equal(model.backbone.bn1.running_var, reference.bn1.running_var)
    bad = rhmnet.load_config(
        "video_training",
        TINY_OVERRIDES + ["MODEL.BACKBONE.PRETRAINED=true", f"MODEL.BACKBONE.WEIGHTS_PATH={tmp_path / 'nope.pth'}"],
    )
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        rhmnet.build_model(bad)
