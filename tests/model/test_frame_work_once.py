"""Per-frame inference shortcuts give the values of the plain path: the heads' adapters run as one
convolution, memory labels computed once; the position table of a disabled embedding is zero."""

from __future__ import annotations

import pytest
import torch

from rhmnet import build_model
from rhmnet.config import load_config
from rhmnet.inference import VideoSegmenter
from rhmnet.model.heads import adapt_heads
from tests.conftest import TINY_OVERRIDES
from tests.model.test_inference import _video


def test_position_table_zero_when_disabled():
    torch.manual_seed(0)
    model = build_model(load_config("video_training", [*TINY_OVERRIDES, "MODEL.TRANSFORMER.USE_POS_EMBEDDING=false"]))
    with torch.no_grad():
        assert torch.count_nonzero(model.position_tokens(3, 4)) == 0


def test_adapters_run_together_give_each_heads_output(tiny_model):
    feats = [torch.randn(1, c, 24 // 2**i, 32 // 2**i) for i, c in enumerate(tiny_model.backbone.channels)]
    heads = [tiny_model.reliable_head, *tiny_model.mask_heads]
    with torch.no_grad():
        together = adapt_heads(heads, feats)
        alone = [head.adapt(feats) for head in heads]
    assert len(together) == len(heads)
    for per_head, expected in zip(together, alone):
        for a, b in zip(per_head, expected):
            assert a.shape == b.shape and torch.allclose(a, b, atol=1e-6, rtol=1e-6)


def test_segmenter_outputs_do_not_depend_on_the_shortcuts(tiny_config, monkeypatch: pytest.MonkeyPatch):
    """The whole step with the shortcuts against the plain path (heads' adapters one by one)."""
    video, scribble = _video(frames=4, h=48, w=64, seed=3)

    def run() -> list[torch.Tensor]:
        torch.manual_seed(0)
        seg = VideoSegmenter(build_model(tiny_config))
        seg.initialize(video[0], scribble)
        return [seg.step(frame).full_probs for frame in video]

    fast = run()
    import rhmnet.model.rhmnet as rhmnet_module

    monkeypatch.setattr(rhmnet_module, "adapt_heads", lambda heads, feats: [h.adapt(feats) for h in heads])
    plain = run()
    for a, b in zip(fast, plain):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
