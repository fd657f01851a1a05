"""The streaming inference API: shapes, padding, late objects, and clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rhmnet import config
from rhmnet.inference import InferenceError, VideoSegmenter
from rhmnet.model.rhmnet import compute_valid


def _video(frames: int = 4, h: int = 50, w: int = 70, seed: int = 0):
    rng = np.random.default_rng(seed)
    video = rng.integers(0, 256, size=(frames, h, w, 3), dtype=np.uint8)
    scribble = np.zeros((h, w), np.uint8)
    scribble[10:14, 10:30] = 1
    scribble[30:34, 40:60] = 2
    scribble[45:48, :] = 11
    return video, scribble


def test_streaming_shapes_and_labels(tiny_model):
    video, scribble = _video()
    seg = VideoSegmenter(tiny_model, config.TestConfig(UPDATE_FREQUENCY=2, SCRIBBLE_UPDATE_FREQUENCY=1))
    seg.initialize(video[0], scribble)
    assert seg.num_objects == 2 and seg.padding == (5, 5, 7, 7)
    for index, frame in enumerate(video):
        res = seg.step(frame, with_reliable=index % 2 == 0)
        assert res.probs.shape == (3, 50, 70)
        if index % 2 == 0:
            assert res.reliable.shape == (3, 50, 70) and res.full_reliable.shape == (12, 50, 70)
            assert torch.allclose(res.full_reliable.sum(0), torch.ones(50, 70), atol=1e-5)
        else:
            with pytest.raises(InferenceError, match="with_reliable"):
                _ = res.reliable
        assert res.full_probs.shape == (12, 50, 70)
        assert res.labels.shape == (50, 70) and res.labels.dtype == np.uint8
        assert set(np.unique(res.labels)) <= {0, 1, 2}
        assert torch.allclose(res.full_probs.sum(0), torch.ones(50, 70), atol=1e-5)
        assert np.array_equal(res.labels, res.probs.argmax(0).numpy())
    assert seg.frame_num == len(video)
    assert len(seg.bank.reliable) == 4 and len(seg.bank.masks[0]) == 2


@pytest.mark.parametrize(
    ("height", "width", "padding"),
    [(64, 48, (0, 0, 0, 0)), (50, 73, (3, 4, 7, 7))],  # (left, right, top, bottom): floor(d/2) before, rest after
)
def test_streaming_matches_a_direct_decode(tiny_model, height, width, padding):
    """Frame 0 through the API equals decoding by hand with the model's building blocks, also for a frame
    that is no multiple of 16: zero-padded as the authors pad, decoded, and cropped back."""
    video, scribble = _video(frames=1, h=height, w=width)
    seg = VideoSegmenter(tiny_model)
    seg.initialize(video[0], scribble)
    res = seg.step(video[0])
    from rhmnet.inference.session import normalise_frame, scribble_to_onehot
    from rhmnet.model.memory import MemoryBank

    left, right, top, bottom = padding
    cpu = torch.device("cpu")
    with torch.no_grad():
        image = torch.nn.functional.pad(normalise_frame(video[0], tiny_model.backbone.normalisation, cpu), padding)
        onehot = torch.nn.functional.pad(scribble_to_onehot(scribble, cpu), padding)
        assert image.shape[-2:] == (height + top + bottom, width + left + right)
        feats = tiny_model.encode(image)
        bank = MemoryBank(tiny_model.initial_entries(feats, onehot, 2))
        out = tiny_model.decode(feats, bank, compute_valid(torch.tensor([2]), 2))
    expected = out.mask_probs[-1][0][:, top : top + height, left : left + width]
    assert res.full_probs.shape == (12, height, width)
    assert torch.allclose(res.full_probs, expected, atol=1e-6)


def test_late_object_joins_with_its_own_scribble(tiny_model):
    video, scribble = _video(frames=3)
    first = scribble.copy()
    first[first == 2] = 0
    seg = VideoSegmenter(tiny_model)
    seg.initialize(video[0], first, num_objects=2, object_ids=[1])
    before = [e.tokens.clone() for e in seg.bank.initial]
    res = seg.step(video[0])
    assert float(res.probs[2].max()) < 1e-6  # object 2 is not valid yet (clamped to ~1e-7)
    late = np.where(scribble == 2, 2, 0).astype(np.uint8)
    seg.add_objects(video[1], late, [2])
    assert seg.valid.tolist() == [[1.0, 1.0]]
    for old, entry in zip(before, seg.bank.initial):
        assert torch.equal(old[0], entry.tokens[0])  # object 1's slot untouched
        assert not torch.equal(old[1], entry.tokens[1])  # object 2's slot rebuilt
    res = seg.step(video[1])
    assert float(res.probs[2].max()) > 1e-3


def test_bad_inputs_raise_clear_errors(tiny_model):
    video, scribble = _video()
    seg = VideoSegmenter(tiny_model)
    with pytest.raises(InferenceError, match="initialize"):
        seg.step(video[0])
    with pytest.raises(InferenceError, match="no object"):
        seg.initialize(video[0], np.where(scribble == 11, 11, 0).astype(np.uint8))
    with pytest.raises(InferenceError, match="at most 10 objects"):
        seg.initialize(video[0], scribble, num_objects=11)
    with pytest.raises(InferenceError, match="does not match the frame size"):
        seg.initialize(video[0], scribble[:-1])
    with pytest.raises(InferenceError, match="HxWx3"):
        seg.initialize(video[0, :, :, 0], scribble)
    with pytest.raises(InferenceError, match="HxWx3"):
        seg.initialize(np.concatenate([video[0], video[0][..., :1]], axis=2), scribble)
    with pytest.raises(InferenceError, match="uint8"):
        seg.initialize(video[0].astype(np.float32), scribble)
    with pytest.raises(InferenceError, match=r"0\.\.11"):
        seg.initialize(video[0], np.full_like(scribble, 12))
    seg.initialize(video[0], scribble)
    with pytest.raises(InferenceError, match="differs from the first frame"):
        seg.step(video[0, :40])
    with pytest.raises(InferenceError, match="must lie in"):
        seg.add_objects(video[1], scribble, [3])


def test_thin_strokes_survive_downscaling():
    from rhmnet.inference.session import resize_scribble, scribble_to_onehot

    scribble = np.zeros((64, 96), np.uint8)
    scribble[20, 10:80] = 1  # one pixel thick: nearest-neighbour resizing would drop it
    scribble[40:42, 5:90] = 11
    small = resize_scribble(scribble_to_onehot(scribble, torch.device("cpu")), (8, 12))[0]
    assert small[1].sum() >= 8 and small[11].sum() >= 8  # both strokes still cross the 8 x 12 grid
    assert torch.equal(small.sum(0), torch.ones(8, 12))  # one channel per pixel (0 = unlabeled)


def test_working_resolution_returns_frame_size_outputs(tiny_model):
    """TEST.INPUT_SHORT_SIDE: the model sees resized frames; the results come back at the frame's size."""
    video, scribble = _video(frames=2, h=50, w=70)
    seg = VideoSegmenter(tiny_model, config.TestConfig(INPUT_SHORT_SIDE=32))
    seg.initialize(video[0], scribble)
    assert seg.work_size == (32, 45) and seg.padding == (1, 2, 0, 0)
    for frame in video:
        res = seg.step(frame)
        assert res.probs.shape == (3, 50, 70) and res.labels.shape == (50, 70)
        assert torch.allclose(res.full_probs.sum(0), torch.ones(50, 70), atol=1e-5)
