"""Faithfulness: our model on the authors' checkpoint reproduces the outputs recorded from their code."""

from __future__ import annotations

import torch

from rhmnet.tools import reference_check
from tests.conftest import shared_path


def test_reference_outputs_within_tolerance(tmp_path, capsys):
    checkpoint = shared_path("reference", "official_random_init_fp16.pth.tar")
    reference = shared_path("reference", "reference_outputs.pt")
    out = tmp_path / "ours.pt"
    status = reference_check.main(["--checkpoint", str(checkpoint), "--reference", str(reference), "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "28 of 28 within tolerance" in printed

    ours = torch.load(out, weights_only=False)
    ref = torch.load(reference, weights_only=False)
    # same structure and names as the reference file
    assert set(ref["train_outputs"]) <= set(ours["train_outputs"])
    assert set(ref["train_grads"]) == set(ours["train_grads"])
    for key in ("video_default", "video_large", "video_memory_cap"):
        assert ours[key]["multi_pred_prob"].shape == ref[key]["multi_pred_prob"].shape
        assert ours[key]["multi_scribble_prob"].shape == ref[key]["multi_scribble_prob"].shape


def test_reference_check_detects_a_wrong_model(tmp_path, capsys, monkeypatch):
    """The check must be able to fail: perturb one level embedding and expect a non-zero exit."""
    checkpoint = shared_path("reference", "official_random_init_fp16.pth.tar")
    reference = shared_path("reference", "reference_outputs.pt")
    data = torch.load(checkpoint, weights_only=True)
    data["state_dict"]["hr_embed_obj.weight"] = data["state_dict"]["hr_embed_obj.weight"] * 1.5
    bad = tmp_path / "bad.pth.tar"
    torch.save(data, bad)
    small = {"config": "video_training", "video_default": torch.load(reference, weights_only=False)["video_default"]}
    small_path = tmp_path / "small_ref.pt"
    torch.save(small, small_path)
    status = reference_check.main(
        ["--checkpoint", str(bad), "--reference", str(small_path), "--out", str(tmp_path / "o.pt")]
    )
    assert status == 1
    assert "NO" in capsys.readouterr().out


def test_reference_check_without_expected_outputs(tmp_path, capsys):
    """A reference holding only inputs: our outputs are written and nothing is compared."""
    checkpoint = shared_path("reference", "official_random_init_fp16.pth.tar")
    ref = torch.load(shared_path("reference", "reference_outputs.pt"), weights_only=False)
    video = {
        k: ref["video_memory_cap"][k] for k in ("frames_uint8", "scribble_labels", "num_objects", "test", "channels")
    }
    inputs_only = tmp_path / "inputs.pt"
    torch.save({"config": "video_training", "video_memory_cap": video}, inputs_only)
    out = tmp_path / "ours.pt"
    assert (
        reference_check.main(["--checkpoint", str(checkpoint), "--reference", str(inputs_only), "--out", str(out)]) == 0
    )
    assert "nothing to compare" in capsys.readouterr().out
    ours = torch.load(out, weights_only=False)
    expected = ref["video_memory_cap"]["multi_pred_prob"]
    assert torch.allclose(ours["video_memory_cap"]["multi_pred_prob"], expected, atol=1e-4)
