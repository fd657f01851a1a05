"""Memory encoder: turns decoder memory candidates and (soft) labels into labelled memory entries ("attach")."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from rhmnet.labels import NUM_CHANNELS

LABEL_CHANNELS = 2  # label readout, per memory cell: own object; other objects and background


def block_average(labels: torch.Tensor, stride: int) -> torch.Tensor:
    """Average ``[B, K, H, W]`` labels over ``stride x stride`` blocks (H and W must be multiples of stride)."""
    if stride == 1:
        return labels
    h, w = labels.shape[-2:]
    if h % stride or w % stride:
        raise ValueError(f"label size {h}x{w} is not a multiple of the stride {stride}")
    return F.avg_pool2d(labels, stride)


def similarity_labels(
    scribble: torch.Tensor,
    feats: torch.Tensor,
    num_objects: int,
    threshold_mean: float = 0.211,
    threshold_label: float = 0.15,
) -> torch.Tensor:
    """Soft labels of the initial scribble at feature resolution, from feature similarity to a prototype.

    For each object channel 1..no and the background channel: block-average the one-hot scribble to
    coverage ``a``; the prototype is the mean of ``feats`` weighted by ``a`` where ``a >= threshold_mean``
    (or, if nothing survives, the cells of maximal coverage); a cell's label is the cosine similarity
    between its feature and the prototype where ``a > 0``, zeroed where ``a < threshold_label``.

    scribble: one-hot ``[B, K, H, W]``; feats: ``[B, C, h, w]`` with ``H = s*h``. Returns ``[B, K, h, w]``.
    """
    batch, channels, h, w = feats.shape
    stride = scribble.shape[-1] // w
    with torch.no_grad():
        coverage = block_average(scribble.to(feats.dtype), stride)
        out = torch.zeros_like(coverage)
        for c in list(range(1, num_objects + 1)) + [coverage.shape[1] - 1]:
            a = coverage[:, c : c + 1]  # [B, 1, h, w]
            weight = torch.where(a < threshold_mean, torch.zeros_like(a), a)
            empty = weight.flatten(1).sum(1) == 0
            if bool(empty.any()):
                peak = a.flatten(1).amax(1).view(-1, 1, 1, 1)
                fallback = torch.where(a < peak, torch.zeros_like(a), a)
                weight = torch.where(empty.view(-1, 1, 1, 1), fallback, weight)
            prototype = (feats * weight).flatten(2).sum(-1) / (weight.flatten(2).sum(-1) + 1e-8)  # [B, C]
            masked = (feats * (a > 0).to(feats.dtype)).flatten(2)  # [B, C, hw]
            sim = F.cosine_similarity(prototype.unsqueeze(-1), masked, dim=1).view(batch, h, w)
            out[:, c] = torch.where(a[:, 0] < threshold_label, torch.zeros_like(sim), sim)
    return out


def attach(
    tokens: torch.Tensor,
    labels: torch.Tensor,
    num_objects: int,
    e_obj: torch.Tensor,
    e_bg: Optional[torch.Tensor],
) -> torch.Tensor:
    """Memory entry per object: ``tokens + L_o * e_obj (+ (sum_{j != o} L_j + L_bg) * e_bg)``.

    tokens: ``[B, HW, C]`` (shared by all objects) or ``[B*num_objects, HW, C]`` (sample-major: ``b*num_objects + o``);
    labels: ``[B, K, h, w]`` already at token resolution. Returns ``[B*num_objects, HW, C]``.
    """
    batch = labels.shape[0]
    hw, c = tokens.shape[-2:]
    feats = tokens.view(batch, -1, hw, c)  # [B, 1 or num_objects, HW, C]
    obj_labels = _own_labels(labels, num_objects)
    out = feats + obj_labels * e_obj
    if e_bg is not None:
        out = out + _other_labels(labels, obj_labels) * e_bg
    if out.shape[1] != num_objects:
        out = out.expand(batch, num_objects, hw, c)
    return out.reshape(batch * num_objects, hw, c)


def label_channels(labels: torch.Tensor, num_objects: int) -> torch.Tensor:
    """Per-object label channels of a memory entry for the label readout (``MODEL.LABEL_READOUT``):
    ``[B*num_objects, HW, 2]`` = (own object ``L_o``, other objects and background ``sum_{j != o} L_j + L_bg``),
    the two quantities :func:`attach` weights its embeddings with, clamped at 0 (similarity labels are
    cosines and may be negative; the readout's vote needs non-negative parts).

    The second channel is carried whether or not the entry attaches the background embedding, so the readout
    sees the same kind of labels at training and inference. labels: ``[B, K, h, w]`` at token resolution.
    """
    own = _own_labels(labels, num_objects)
    both = torch.cat([own, _other_labels(labels, own).expand_as(own)], dim=-1).clamp_min(0)
    return both.reshape(-1, both.shape[-2], LABEL_CHANNELS)


def _own_labels(labels: torch.Tensor, num_objects: int) -> torch.Tensor:
    """Each object's own label ``L_o``: ``[B, K, h, w] -> [B, num_objects, HW, 1]``."""
    return labels[:, 1 : 1 + num_objects].reshape(labels.shape[0], num_objects, -1, 1)


def _other_labels(labels: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """Each object's "not me" label, the other objects' and the background's: ``[B, num_objects, HW, 1]``."""
    batch, _, hw, _ = own.shape
    return own.sum(1, keepdim=True) - own + labels[:, -1:].reshape(batch, 1, hw, 1)


def one_hot(labels: torch.Tensor, num_channels: int = NUM_CHANNELS, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Label maps ``[..., H, W]`` (0 unlabeled, 1..10 objects, 11 background) to one-hot ``[..., K, H, W]``.

    Unlabeled pixels set channel 0, which no label path reads (only channels 1..no and 11 are used).
    """
    out = F.one_hot(labels.long(), num_channels).to(dtype)
    return out.movedim(-1, -3)
