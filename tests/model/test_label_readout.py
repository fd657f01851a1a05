"""The label readout (``MODEL.LABEL_READOUT``): attention (memory values carry own / other labels, the
cross-attention reads them with its own weights) and features (a kNN vote of the scribbled cells on fixed
backbone features); both add a zero-initialised projection of ``[vote, mass]`` to each layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rhmnet
from rhmnet.config import ConfigError, load_config
from rhmnet.inference import VideoSegmenter
from rhmnet.model.feature_readout import labelled_cells, predicted_cells, read, readout_keys
from rhmnet.model.matching import VOTE_EPS, Attention, DecoderLayer, label_votes
from rhmnet.model.memory_encoder import label_channels
from tests.conftest import TINY_OVERRIDES
from tests.model.test_inference import _video


def _model(readout: str, seed: int = 0) -> rhmnet.RHMNet:
    torch.manual_seed(seed)
    return rhmnet.build_model(load_config("video_training", [*TINY_OVERRIDES, f"MODEL.LABEL_READOUT={readout}"]))


def _clip(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(2, 3, 3, 64, 64, generator=generator)
    scribble = torch.zeros(2, 64, 64, dtype=torch.long)
    scribble[:, 5:10, 5:40] = 1
    scribble[:, 30:35, 10:50] = 2
    scribble[:, 50:55] = 11
    return images, scribble, torch.tensor([2, 1])


def test_label_channels_are_own_and_others_plus_background():
    labels = torch.zeros(1, 12, 1, 3)
    labels[0, 1, 0] = torch.tensor([1.0, 0.0, 0.5])  # object 1
    labels[0, 2, 0] = torch.tensor([0.0, 1.0, -0.2])  # object 2 (a negative similarity label)
    labels[0, 11, 0] = torch.tensor([0.0, 0.0, 0.25])  # background
    out = label_channels(labels, 2)
    assert out.shape == (2, 3, 2)
    assert torch.allclose(out[0], torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.05]]))
    assert torch.allclose(out[1], torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 0.75]]))  # -0.2 clamped to 0


def test_label_extended_keys_and_values():
    torch.manual_seed(0)
    attention = Attention(16, 4, 0.0)
    memory, labels = torch.randn(3, 7, 16), torch.rand(3, 7, 2)
    k, v = attention.project_key_value(memory)
    k2, v2 = attention.project_key_value(memory, labels)
    assert k2.shape == v2.shape == (3, 4, 7, 6)
    assert torch.equal(k2[..., :4], k) and not k2[..., 4:].any()
    assert torch.equal(v2[..., :4], v) and all(torch.equal(v2[:, h, :, 4:], labels) for h in range(4))


def test_readout_equals_a_hand_computation():
    torch.manual_seed(0)
    attention = Attention(16, 4, 0.0).eval()
    x, memory, labels = torch.randn(2, 5, 16), torch.randn(2, 9, 16), torch.rand(2, 9, 2)
    q = attention.project_query(x)
    k, v = attention.project_key_value(memory)
    out, read = attention.attend_reading_labels(q, *attention.project_key_value(memory, labels))
    assert out.shape == (2, 5, 16) and read.shape == (2, 5, 2)
    assert torch.allclose(out, attention.attend(q, k, v), atol=1e-6)  # the values are read as before
    weights = torch.softmax(q @ k.transpose(-1, -2) / 4**0.5, dim=-1)  # [N, H, L, M]
    assert torch.allclose(read, (weights @ labels.unsqueeze(1)).mean(1), atol=1e-6)

    own_only = torch.zeros(2, 9, 2)
    own_only[..., 0] = 1  # every memory cell says "this object"
    _, read = attention.attend_reading_labels(q, *attention.project_key_value(memory, own_only))
    votes = label_votes(read)
    assert torch.allclose(votes[..., 0], torch.full((2, 5), 1 / (1 + VOTE_EPS)))
    assert torch.allclose(votes[..., 1], torch.ones(2, 5))
    assert torch.allclose(label_votes(torch.tensor([0.2, 0.6])), torch.tensor([0.25, 0.8]), atol=1e-3)


def test_layer_adds_the_projected_votes():
    torch.manual_seed(0)
    layer = DecoderLayer(16, 4, 32, 0.0, label_readout=True).eval()
    x_pos, memory, labels = torch.randn(2, 5, 16), torch.randn(2, 9, 16), torch.rand(2, 9, 2)
    kv = layer.cross_attn.project_key_value(memory, labels)
    fresh = layer.cross_block(x_pos, kv)
    with torch.no_grad():
        layer.label_proj.weight.normal_()
    assert not torch.allclose(layer.cross_block(x_pos, kv), fresh)
    with pytest.raises(ValueError, match="label channels"):
        layer.cross_block(x_pos, layer.cross_attn.project_key_value(memory))


def test_off_adds_no_parameters_and_a_fresh_model_with_it_computes_the_same():
    off, on = _model("none"), _model("attention")
    state_off, state_on = off.state_dict(), on.state_dict()
    extra = sorted(set(state_on) - set(state_off))
    assert extra == [f"decoder.{i}.label_proj.{p}" for i in range(2) for p in ("bias", "weight")]
    assert all(torch.equal(state_off[k], state_on[k]) for k in state_off)  # same draws for the shared weights
    assert all(not state_on[k].any() for k in extra)
    images, scribble, counts = _clip()
    with torch.no_grad():
        out_off, out_on = off.eval()(images, scribble, counts), on.eval()(images, scribble, counts)
    for frame_off, frame_on in zip(out_off.mask_probs, out_on.mask_probs):
        assert torch.allclose(frame_off[-1], frame_on[-1], atol=1e-5)
    for a, b in zip(out_off.reliable_probs, out_on.reliable_probs):
        assert torch.allclose(a, b, atol=1e-5)


def test_one_training_step_moves_the_projection():
    model = _model("attention").train()
    images, scribble, counts = _clip()
    before = [layer.label_proj.weight.detach().clone() for layer in model.decoder]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    out = model(images, scribble, counts)
    target = scribble.clamp(max=2)  # background, object 1, object 2 as channel indices 0..2 (a stand-in loss)
    logits = torch.stack([f[-1][:, [11, 1, 2]] for f in out.mask_logits])
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.repeat(3, 1, 1))
    loss.backward()
    optimizer.step()
    assert all(not torch.equal(b, layer.label_proj.weight) for b, layer in zip(before, model.decoder))


def test_checkpoint_round_trip_keeps_the_readout(tmp_path):
    model = _model("attention")
    with torch.no_grad():
        for layer in model.decoder:
            layer.label_proj.weight.normal_()
    path = tmp_path / "readout.pth"
    rhmnet.save_model(model, path)
    loaded = rhmnet.load_model(path)
    assert loaded.cfg.MODEL.LABEL_READOUT == "attention"
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    with pytest.raises(rhmnet.model_io.CheckpointError, match="unexpected keys"):
        rhmnet.load_model(path, overrides=["MODEL.LABEL_READOUT=none"])


def test_multi_object_inference_with_the_readout():
    model = _model("attention")
    with torch.no_grad():
        for layer in model.decoder:
            layer.label_proj.weight.normal_()
    model.eval()
    video, scribble = _video(frames=4)
    seg = VideoSegmenter(model)
    other = seg.scribble_memory(video[2], np.where(scribble == 1, 1, 0).astype(np.uint8), 2)
    first = np.where(scribble == 2, 0, scribble).astype(np.uint8)
    seg.initialize(video[0], first, num_objects=2, object_ids=[1], other_scribbles=[other])
    assert all(e.labels is not None and e.labels.shape[-1] == 2 for e in seg.bank.initial)
    labels_before = [e.labels.clone() for e in seg.bank.initial]
    seg.step(video[0])
    seg.add_objects(video[1], np.where(scribble == 2, 2, 0).astype(np.uint8), [2])
    for old, entry in zip(labels_before, seg.bank.initial):
        assert torch.equal(old[0], entry.labels[0]) and not torch.equal(old[1], entry.labels[1])
    for frame in video[1:]:
        res = seg.step(frame)
        assert res.probs.shape == (3, 50, 70) and bool(torch.isfinite(res.probs).all())
    assert all(e.labels is not None for e in [*seg.bank.reliable, *seg.bank.masks[0]])


def test_the_option_takes_none_attention_or_features():
    assert load_config("video_training").MODEL.LABEL_READOUT == "none"
    assert load_config("video_training", ["MODEL.LABEL_READOUT=features"]).MODEL.LABEL_READOUT == "features"
    for bad in ("2", "knn", "true"):
        with pytest.raises(ConfigError, match="MODEL.LABEL_READOUT"):
            load_config("video_training", [f"MODEL.LABEL_READOUT={bad}"])


# -- the feature readout (MODEL.LABEL_READOUT: features) ------------------------------------------------------


def _backbone(seed: int, batch: int = 1, size: int = 4) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, size * s, size * s, generator=generator) for c, s in ((4, 4), (6, 2), (8, 1))]


def test_feature_readout_is_the_knn_vote_of_the_scribbled_cells():
    backbone = _backbone(0)
    scribble = torch.zeros(1, 12, 64, 64)
    scribble[0, 0] = 1
    scribble[0, :, 0:8, 0:16] = 0
    scribble[0, 1, 0:8, 0:16] = 1  # object 1 on cells (0, 0), (0, 1)
    scribble[0, :, 16:24, 0:8] = 0
    scribble[0, 2, 16:24, 0:8] = 1  # object 2 on cell (2, 0)
    scribble[0, :, 56:64, 56:64] = 0
    scribble[0, 11, 56:60, 56:64] = 1  # background on half of cell (7, 7)
    cells = labelled_cells(backbone, scribble)
    assert cells.labelled.sum() == 4 and torch.allclose(cells.labels[0, 63], torch.eye(11)[10])
    query = _backbone(1)
    out = read(cells, readout_keys(query), 3)
    assert out.shape == (3, 2, 8, 8)
    keys, q = readout_keys(backbone)[0].flatten(1), readout_keys(query)[0].flatten(1)
    where = [0, 1, 16, 63]
    owner = torch.tensor([0, 0, 1, 3])  # object index per labelled cell (3: background)
    weights = torch.softmax((q.T @ keys[:, where]) / 0.05, dim=1)  # all 4 labelled cells are within the top 20
    for o in range(3):
        assert torch.allclose(out[o, 0].flatten(), weights[:, owner == o].sum(1) / (1 + 1e-4), atol=1e-5)
        assert torch.allclose(out[o, 1].flatten(), (q.T @ keys[:, where]).max(1).values.clamp_min(0), atol=1e-5)


def test_feature_readout_tells_objects_apart_in_a_fresh_model():
    none, features = _model("none"), _model("features")
    state_none, state_features = none.state_dict(), features.state_dict()
    extra = sorted(set(state_features) - set(state_none))
    assert extra == [f"decoder.{i}.label_proj.{p}" for i in range(2) for p in ("bias", "weight")] + ["readout_gain"]
    assert all(torch.equal(state_none[k], state_features[k]) for k in state_none)
    images, scribble, counts = _clip()
    images[:, :, :, 30:35, 10:50] += 3.0  # object 2's stroke looks unlike the rest
    with torch.no_grad():
        out = features.eval()(images, scribble, counts)
    probs = out.mask_probs[0][-1][0]  # frame 0, sample 0 (two objects)
    assert probs[1][5:10, 5:40].mean() > probs[2][5:10, 5:40].mean() + 0.2
    assert probs[2][30:35, 10:50].mean() > probs[1][30:35, 10:50].mean() + 0.2


def test_one_training_step_moves_the_feature_readout_weights():
    model = _model("features").train()
    images, scribble, counts = _clip()
    weights = [model.readout_gain, *(layer.label_proj.weight for layer in model.decoder)]
    before = [w.detach().clone() for w in weights]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    out = model(images, scribble, counts)
    logits = torch.stack([f[-1][:, [11, 1, 2]] for f in out.mask_logits])
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), scribble.clamp(max=2).repeat(3, 1, 1)).backward()
    optimizer.step()
    assert all(not torch.equal(b, w) for b, w in zip(before, weights))


def test_multi_object_inference_with_the_feature_readout():
    model = _model("features").eval()
    video, scribble = _video(frames=4)
    seg = VideoSegmenter(model)
    other = seg.scribble_memory(video[2], np.where(scribble == 1, 1, 0).astype(np.uint8), 2)
    first = np.where(scribble == 2, 0, scribble).astype(np.uint8)
    seg.initialize(video[0], first, num_objects=2, object_ids=[1], other_scribbles=[other])
    cells = seg.bank.labelled_cells()
    assert cells is not None and cells.keys.shape[1] == 2 * seg.bank.initial[0].cells.keys.shape[1]
    seg.step(video[0])
    seg.add_objects(video[1], np.where(scribble == 2, 2, 0).astype(np.uint8), [2])
    assert seg.bank.labelled_cells().keys.shape[1] == 3 * cells.keys.shape[1] // 2  # the new frame's cells join
    for frame in video[1:]:
        res = seg.step(frame)
        assert res.probs.shape == (3, 50, 70) and bool(torch.isfinite(res.probs).all())


# -- the previous frame's predictions (MODEL.READOUT_PREVIOUS_FRAME) ------------------------------------------


def test_predicted_cells_keep_only_confident_cells_with_their_argmax_label():
    keys = readout_keys(_backbone(2))  # [1, D, 8, 8]
    prob = torch.zeros(1, 4, 64, 64)  # inference layout: unlabeled, object 1, object 2, background
    prob[0, 3] = 1.0  # background everywhere...
    prob[0, :, 0:8, 0:8] = torch.tensor([0, 0.95, 0.05, 0]).view(4, 1, 1)  # cell (0, 0): object 1, sure
    prob[0, :, 8:16, 0:8] = torch.tensor([0, 0.1, 0.9, 0]).view(4, 1, 1)  # cell (1, 0): object 2, at the threshold
    prob[0, :, 0:8, 8:16] = torch.tensor([0, 0.5, 0.5, 0]).view(4, 1, 1)  # cell (0, 1): unsure
    cells = predicted_cells(keys, prob, 2, 11)
    assert cells.keys.shape == (1, 64, keys.shape[1]) and cells.labels.shape == (1, 64, 11)
    assert cells.labelled.sum() == 63 and not cells.labelled[0, 1]
    assert torch.equal(cells.labels[0, 0], torch.eye(11)[0]) and torch.equal(cells.labels[0, 8], torch.eye(11)[1])
    assert torch.equal(cells.labels[0, 63], torch.eye(11)[10])  # background in the last column
    training = torch.zeros(1, 12, 64, 64)  # training layout: all K channels, background last
    training[:, [0, 1, 2, 11]] = prob
    assert torch.equal(predicted_cells(keys, training, 2, 11).labels, cells.labels)


def test_previous_frame_cells_join_the_readout_in_training_and_inference():
    with pytest.raises(ConfigError, match="MODEL.READOUT_PREVIOUS_FRAME"):
        load_config("video_training", ["MODEL.READOUT_PREVIOUS_FRAME=true"])
    cfg = load_config("video_training", [*TINY_OVERRIDES, "MODEL.LABEL_READOUT=features"])
    plain = rhmnet.build_model(cfg).eval()
    previous = rhmnet.build_model(load_config("video_training", [*TINY_OVERRIDES, "MODEL.LABEL_READOUT=features",
                                                                  "MODEL.READOUT_PREVIOUS_FRAME=true"])).eval()
    previous.load_state_dict(plain.state_dict())  # no new weights: only what the readout reads changes
    images, scribble, counts = _clip()
    with torch.no_grad():
        a, b = plain(images, scribble, counts), previous(images, scribble, counts)
    assert torch.equal(a.mask_probs[0][-1], b.mask_probs[0][-1])  # frame 0: no previous frame yet
    assert not torch.equal(a.mask_probs[-1][-1], b.mask_probs[-1][-1])
    video, first = _video(frames=3)
    seg = VideoSegmenter(previous)
    seg.initialize(video[0], first)
    annotated = seg.bank.labelled_cells().keys.shape[1]
    for frame in video:
        seg.step(frame)
        assert seg.bank.previous_cells is not None
        assert seg.bank.labelled_cells().keys.shape[1] == 2 * annotated
