"""Inference work done once and only on request: frame features reused, explicit inference preparation,
used-channel probabilities equal to the K-channel ones, saved position-table size, precision and compile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rhmnet import build_model, load_model, save_model
from rhmnet.config import load_config
from rhmnet.inference import InferenceError, VideoSegmenter
from rhmnet.inference.session import normalise_frame, scribble_to_onehot
from rhmnet.model.heads import all_channels
from rhmnet.model.memory import MemoryBank
from rhmnet.model.rhmnet import compute_valid
from tests.conftest import TINY_OVERRIDES
from tests.model.test_inference import _video as scribbled_video


def _video(frames: int = 3):
    """A 48x64 random video with two object strokes and a background stroke (see test_inference)."""
    return scribbled_video(frames=frames, h=48, w=64, seed=1)


def _count_encodes(seg: VideoSegmenter) -> list[int]:
    calls = [0]
    encode = seg._encode_fn

    def counted(x: torch.Tensor):
        calls[0] += 1
        return encode(x)

    seg._encode_fn = counted
    return calls


def test_first_step_reuses_the_initialise_features(tiny_model):
    video, scribble = _video()
    seg = VideoSegmenter(tiny_model)
    calls = _count_encodes(seg)
    seg.initialize(video[0], scribble)
    reused = seg.step(video[0])
    assert calls[0] == 1  # frame 0 encoded once
    seg.step(video[1])
    assert calls[0] == 2

    fresh = VideoSegmenter(tiny_model)
    fresh.initialize(video[0], scribble)
    fresh._kept = None  # force a second encoding of frame 0
    assert torch.equal(reused.probs, fresh.step(video[0]).probs)


def test_a_changed_buffer_is_encoded_afresh(tiny_model):
    video, scribble = _video()
    buffer = video[0].copy()
    seg = VideoSegmenter(tiny_model)
    calls = _count_encodes(seg)
    seg.initialize(buffer, scribble)
    buffer[:] = video[1]  # a reader reusing its frame buffer
    seg.step(buffer)
    assert calls[0] == 2


def test_add_objects_features_are_reused(tiny_model):
    video, scribble = _video()
    first = np.where(scribble == 2, 0, scribble).astype(np.uint8)
    seg = VideoSegmenter(tiny_model)
    calls = _count_encodes(seg)
    seg.initialize(video[0], first, num_objects=2, object_ids=[1])
    seg.step(video[0])
    seg.add_objects(video[1], np.where(scribble == 2, 2, 0).astype(np.uint8), [2])
    seg.step(video[1])
    assert calls[0] == 2


def test_prepare_for_inference_is_explicit_and_undone_by_train(tiny_config):
    torch.manual_seed(0)
    model = build_model(tiny_config)
    x = normalise_frame(_video()[0][0], model.backbone.normalisation, torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        plain = model.backbone(x)  # eval + no grad alone does not switch paths
    assert not model.backbone.batch_norm_folded and not model.prepared_for_inference
    assert model.prepare_for_inference() is model
    assert model.prepared_for_inference and not model.training
    with torch.no_grad():
        folded = model.backbone(x)
    for a, b in zip(plain, folded):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    model.train()
    assert not model.backbone.batch_norm_folded
    with pytest.raises(RuntimeError, match="eval mode"):
        model.train().backbone.fold_batch_norm()
    model.eval()
    VideoSegmenter(model)  # the segmenter prepares the model it is given
    assert model.prepared_for_inference
    with torch.no_grad():
        unfolded = [f.double() for f in plain]
        model.double()  # moved to another dtype: the folded copies are rebuilt for it before use
        for a, b in zip(unfolded, model.backbone(x.double())):
            assert b.dtype == torch.float64 and torch.allclose(a, b, atol=1e-4, rtol=1e-4)
    assert model.prepared_for_inference


def test_used_channel_probabilities_equal_the_twelve_channels(tiny_model):
    video, scribble = _video()
    cpu = torch.device("cpu")
    with torch.no_grad():
        feats = tiny_model.encode(normalise_frame(video[0], tiny_model.backbone.normalisation, cpu))
        bank = MemoryBank(tiny_model.initial_entries(feats, scribble_to_onehot(scribble, cpu), 2))
        valid = compute_valid(torch.tensor([2]), 2)
        full = tiny_model.decode(feats, bank, valid)
        used = tiny_model.decode(feats, bank, valid, used_channels_only=True)
    assert used.mask_probs[-1].shape[1] == 4  # unlabeled, 2 objects, background
    for k_channel, part, unused in zip(full.mask_probs, used.mask_probs, used.mask_unused):
        assert torch.allclose(all_channels(part, unused), k_channel, atol=1e-6)
    assert torch.allclose(all_channels(used.reliable_prob, used.reliable_unused), full.reliable_prob, atol=1e-6)


def test_position_table_size_is_saved_with_the_model(tmp_path):
    cfg = load_config("video_training", [*TINY_OVERRIDES, "DATASETS.CROP_SIZE=[96,96]"])
    model = build_model(cfg)
    assert cfg.MODEL.POS_TABLE_SIZE is None  # the caller's config is left as given
    assert model.cfg.MODEL.POS_TABLE_SIZE == [6, 6]
    save_model(model, tmp_path / "m.pth")
    other_crop = load_config("video_training", [*TINY_OVERRIDES, "DATASETS.CROP_SIZE=[128,160]"])
    loaded = load_model(tmp_path / "m.pth", config=other_crop)  # fine-tuning config at another crop size
    assert loaded.cfg.MODEL.POS_TABLE_SIZE == [6, 6]
    assert loaded.position_embedding.row_embed.weight.shape[0] == 6
    explicit = load_config("video_training", [*TINY_OVERRIDES, "MODEL.POS_TABLE_SIZE=[4,5]"])
    assert build_model(explicit).position_embedding.col_embed.weight.shape[0] == 5


def test_precision_options(tiny_model):
    video, scribble = _video(frames=2)
    with pytest.raises(InferenceError, match="fp16 needs a CUDA device"):
        VideoSegmenter(tiny_model, precision="fp16")
    with pytest.raises(InferenceError, match="precision must be one of"):
        VideoSegmenter(tiny_model, precision="int8")
    reference = VideoSegmenter(tiny_model)
    reference.initialize(video[0], scribble)
    seg = VideoSegmenter(tiny_model, precision="bf16")
    seg.initialize(video[0], scribble)
    for frame in video:
        res, ref = seg.step(frame), reference.step(frame)
        assert res.probs.dtype == torch.float32 and bool(torch.isfinite(res.probs).all())
        assert torch.allclose(res.probs.sum(0), torch.ones(48, 64), atol=1e-3)
        assert float((res.probs - ref.probs).abs().max()) < 0.2  # bf16: close, not equal


def test_compile_option_builds_a_compiled_encoder(tiny_model):
    seg = VideoSegmenter(tiny_model, compile=True)
    assert seg._encode_fn is not tiny_model.encode


@pytest.mark.slow
def test_compiled_encoder_gives_the_same_masks(tiny_model):
    video, scribble = _video(frames=2)
    results = []
    for compile in (False, True):
        seg = VideoSegmenter(tiny_model, compile=compile)
        seg.initialize(video[0], scribble)
        results.append([seg.step(frame).probs for frame in video])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-4)
