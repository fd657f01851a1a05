"""Reliable-region head, mask head and soft aggregation of per-object probabilities."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rhmnet.labels import NUM_CHANNELS
from rhmnet.model.ops import conv2d, conv_module

PROB_EPS = 1e-7  # probabilities are clamped to [PROB_EPS, 1 - PROB_EPS] before taking log odds


class ConvNorm(nn.Module):
    """Convolution (same padding) followed by GroupNorm."""

    def __init__(self, in_dim: int, out_dim: int, kernel_size: int, groups: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_dim, out_dim, kernel_size, padding=kernel_size // 2)
        self.norm = nn.GroupNorm(groups, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(conv_module(self.conv, x))


def _add_per_object(shortcut: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``x [B*num_objects, C, h, w] + shortcut [B, C, h, w]`` broadcast over each sample's objects."""
    batch = shortcut.shape[0]
    return (x.view(batch, -1, *x.shape[1:]) + shortcut.unsqueeze(1)).view(x.shape)


class RefinementHead(nn.Module):
    """Upsampling head over decoder output and backbone skip features (shared topology of both heads).

    The 1x1 adapters act on backbone features only, so :meth:`adapt` runs them once per frame (batch
    ``B``) and :meth:`forward` adds them to every object's branch.
    """

    def __init__(self, in_dim: int, hidden_dim: int, shortcut_dims: list[int], out_dim: int) -> None:
        super().__init__()
        half = hidden_dim // 2
        self.conv_in = ConvNorm(in_dim, hidden_dim, 1)
        self.conv_16x = ConvNorm(hidden_dim, hidden_dim, 3)
        self.conv_8x = ConvNorm(hidden_dim, half, 3)
        self.conv_4x = ConvNorm(half, half, 3)
        self.adapter_16x = nn.Conv2d(shortcut_dims[2], hidden_dim, 1)
        self.adapter_8x = nn.Conv2d(shortcut_dims[1], hidden_dim, 1)
        self.adapter_4x = nn.Conv2d(shortcut_dims[0], half, 1)
        self.conv_out = nn.Conv2d(half, out_dim, 1)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def adapt(self, backbone_feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Adapter outputs for the stride-4, 8 and 16 backbone features (object independent)."""
        f4, f8, f16 = backbone_feats
        return [conv_module(self.adapter_4x, f4), conv_module(self.adapter_8x, f8), conv_module(self.adapter_16x, f16)]

    def forward(self, x: torch.Tensor, adapted: list[torch.Tensor]) -> torch.Tensor:
        """Logits at stride 4, ``[B*num_objects, out_dim, H/4, W/4]``."""
        a4, a8, a16 = adapted
        x = F.relu_(self.conv_in(x))
        x = F.relu_(self.conv_16x(_add_per_object(a16, x)))
        x = F.interpolate(x, size=a8.shape[-2:], mode="bilinear", align_corners=True)
        x = F.relu_(self.conv_8x(_add_per_object(a8, x)))
        x = F.interpolate(x, size=a4.shape[-2:], mode="bilinear", align_corners=True)
        x = F.relu_(self.conv_4x(_add_per_object(a4, x)))
        return conv_module(self.conv_out, x)


def adapt_heads(heads: list[RefinementHead], backbone_feats: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    """:meth:`RefinementHead.adapt` of several heads, ``[head][level]``.

    Without gradients (inference) the heads' adapters of one level run as a single convolution (their
    weights concatenated; each output channel is computed as alone, so the values are the same): the
    backbone feature is read once and the product is larger, which measured faster on CPU.
    """
    if torch.is_grad_enabled() or len(heads) < 2:
        return [head.adapt(backbone_feats) for head in heads]
    levels = []
    for name, feat in zip(("adapter_4x", "adapter_8x", "adapter_16x"), backbone_feats):
        convs = [getattr(head, name) for head in heads]
        weight = torch.cat([c.weight for c in convs])
        bias = torch.cat([c.bias for c in convs])
        out = conv2d(feat, weight, bias)
        levels.append(out.split([c.out_channels for c in convs], dim=1))
    return [list(per_head) for per_head in zip(*levels)]


def reliable_region_head(in_dim: int, hidden_dim: int, shortcut_dims: list[int]) -> RefinementHead:
    """Head predicting one logit per object at stride 4; bias starts at ``-log(0.99/0.01)``."""
    head = RefinementHead(in_dim, hidden_dim, shortcut_dims, out_dim=1)
    nn.init.constant_(head.conv_out.bias, -math.log((1 - 0.01) / 0.01))
    return head


def mask_head(in_dim: int, hidden_dim: int, shortcut_dims: list[int], out_dim: int = 2) -> RefinementHead:
    """Head predicting two logits per object (output 0 is foreground)."""
    return RefinementHead(in_dim, hidden_dim, shortcut_dims, out_dim=out_dim)


def soft_aggregate(fg_probs: torch.Tensor, num_channels: int = NUM_CHANNELS) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge per-object foreground probabilities ``[B, num_objects, H, W]`` into K-channel ``(probs, logits)``.

    ``P[bg] = prod_o (1 - f_o)``, ``P[o] = f_o``, other channels 0; clamp to ``[PROB_EPS, 1 - PROB_EPS]``;
    ``logits = log(P / (1 - P))``; ``probs = softmax(logits)`` over channels.
    """
    batch, num_objects, h, w = fg_probs.shape
    background = torch.prod(1 - fg_probs, dim=1, keepdim=True)
    parts = [fg_probs.new_zeros(batch, 1, h, w), fg_probs]
    rest = num_channels - 2 - num_objects
    if rest:
        parts.append(fg_probs.new_zeros(batch, rest, h, w))
    parts.append(background)
    prob = torch.cat(parts, dim=1).clamp(PROB_EPS, 1 - PROB_EPS)
    logits = torch.log(prob / (1 - prob))
    return torch.softmax(logits, dim=1), logits


def soft_aggregate_used(
    fg_probs: torch.Tensor, num_channels: int = NUM_CHANNELS
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`soft_aggregate`'s probabilities on the used channels only (inference: no logits needed).

    Returns ``(probs [B, num_objects + 2, H, W], unused [B, 1, H, W])``: channels ``[unlabeled, objects...,
    background]`` (index 0, 1..num_objects and -1 as in the K-channel layout, so the memory encoder reads
    them unchanged) and the probability that each of the ``K - num_objects - 2`` unused channels holds.
    ``softmax(log odds)`` is computed as ``odds / sum(odds)``: equal up to float rounding, without the
    log/exp passes over all K channels at full resolution.
    """
    batch, num_objects, h, w = fg_probs.shape
    background = torch.prod(1 - fg_probs, dim=1, keepdim=True)
    prob = torch.cat([fg_probs.new_zeros(batch, 1, h, w), fg_probs, background], dim=1)
    odds = prob.clamp_(PROB_EPS, 1 - PROB_EPS)
    odds = odds.div_(1 - odds)
    floor = PROB_EPS / (1 - PROB_EPS)
    total = odds.sum(1, keepdim=True).add_((num_channels - num_objects - 2) * floor)
    return odds.div_(total), total.reciprocal_().mul_(floor)


def all_channels(used: torch.Tensor, unused: torch.Tensor, num_channels: int = NUM_CHANNELS) -> torch.Tensor:
    """K-channel probabilities ``[..., K, H, W]`` from :func:`soft_aggregate_used`'s output."""
    num_objects = used.shape[-3] - 2
    out = unused.expand(*used.shape[:-3], num_channels, *used.shape[-2:]).clone()
    out[..., : num_objects + 1, :, :] = used[..., : num_objects + 1, :, :]
    out[..., -1:, :, :] = used[..., -1:, :, :]
    return out
