"""Per-frame inference shortcuts give the values of the plain path: fused backbone convolutions, the
position table kept per size, the heads' adapters run as one convolution, memory labels computed once."""

from __future__ import annotations

import pytest
import torch

from rhmnet import build_model
from rhmnet.config import load_config
from rhmnet.inference import VideoSegmenter
from rhmnet.model import backbone as backbone_module
from rhmnet.model.heads import adapt_heads
from tests.conftest import TINY_OVERRIDES
from tests.model.test_inference import _video


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_fused_backbone_equals_the_separate_passes(name: str, monkeypatch: pytest.MonkeyPatch, one_torch_thread):
    torch.manual_seed(0)
    net = backbone_module.Backbone(name).eval()
    for bn in net.modules():  # non-trivial folded scales and shifts
        if isinstance(bn, backbone_module.FrozenBatchNorm2d):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-0.2, 0.2)
    net.fold_batch_norm()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert backbone_module.fused_conv_available(x, net._folded["stem"][0])
        fused = net(x)
        monkeypatch.setattr(backbone_module, "fused_conv_available", lambda *_: False)
        separate = net(x)
    for a, b in zip(fused, separate):  # equal up to float rounding (oneDNN may pick another kernel)
        assert a.shape == b.shape and a.is_contiguous(memory_format=torch.channels_last)
        assert float((a - b).abs().max()) <= 1e-5 * float(b.abs().max())
    assert fused[1].abs().sum() > 0


def test_fused_path_is_not_taken_with_gradients_or_other_dtypes():
    x = torch.randn(1, 3, 8, 8)
    weight = torch.randn(4, 3, 1, 1)
    with torch.no_grad():
        assert backbone_module.fused_conv_available(x, weight)
        assert not backbone_module.fused_conv_available(x.double(), weight.double())
    assert not backbone_module.fused_conv_available(x, weight)  # gradients enabled


def test_position_table_is_kept_per_size_and_weights(tiny_model):
    model = tiny_model
    with torch.no_grad():
        first = model.position_tokens(3, 4)
        assert model.position_tokens(3, 4) is first  # reused
        other = model.position_tokens(2, 5)
        assert other.shape == (1, 10, model.hidden_dim)  # a new size is computed afresh
        again = model.position_tokens(3, 4)
        assert again is not first and torch.equal(again, first)
        model.position_embedding.row_embed.weight.add_(1.0)  # weights changed in place
        changed = model.position_tokens(3, 4)
        assert not torch.equal(changed, first)
    assert torch.equal(changed, model.position_tokens(3, 4).detach())
    with_grad = model.position_tokens(3, 4)
    assert with_grad.requires_grad and with_grad is not changed  # training never gets a cached table


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
    """The whole step with the shortcuts against the plain path (separate passes, no cache, heads one by one)."""
    video, scribble = _video(frames=4, h=48, w=64, seed=3)

    def run() -> list[torch.Tensor]:
        torch.manual_seed(0)
        seg = VideoSegmenter(build_model(tiny_config))
        seg.initialize(video[0], scribble)
        return [seg.step(frame).full_probs for frame in video]

    fast = run()
    monkeypatch.setattr(backbone_module, "fused_conv_available", lambda *_: False)
    import rhmnet.model.rhmnet as rhmnet_module

    monkeypatch.setattr(rhmnet_module, "adapt_heads", lambda heads, feats: [h.adapt(feats) for h in heads])
    plain = run()
    for a, b in zip(fast, plain):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
