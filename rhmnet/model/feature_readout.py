"""Feature readout (``MODEL.LABEL_READOUT: features``, not in the paper): a k-nearest-neighbour vote of the
annotated frames' scribbled cells, from fixed backbone features, read once per frame.
With ``MODEL.READOUT_PREVIOUS_FRAME`` the previous frame's confident predictions join the labelled cells (as
the training-free kNN baseline does), so the vote follows objects whose appearance drifts from the annotation.

Keys and queries are the backbone's stride-8 map and its upsampled stride-16 map, each L2-normalised,
concatenated and normalised again (the features of the training-free kNN baseline), detached: no gradient
flows through them. A query cell's weights are ``softmax(cos / T)`` over its top-``k`` most similar labelled
cells; the values are those cells' labels. Per object the vote is the share of "this object" in what it
read, and the mass the best cosine similarity: ``[B*num_objects, 2, h8, w8]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rhmnet.model.memory_encoder import LABEL_CHANNELS, block_average

READOUT_STRIDE = 8
TOP_K = 20
TEMPERATURE = 0.05
VOTE_EPS = 1e-4
CONFIDENCE = 0.9  # MODEL.READOUT_PREVIOUS_FRAME: predicted cells at least this sure join the labelled ones
OUTSIDE = -2.0  # similarity given to unlabelled cells: below any cosine, so they never outweigh a labelled one


@dataclass
class LabelledCells:
    """The labelled stride-8 cells of annotated frames: normalised features ``keys [B, M, D]``, their labels
    ``labels [B, M, K]`` (the scribble channels, each labelled cell's labelled channels summing to 1) and
    ``labelled [B, M]`` (bool). Object independent."""

    keys: torch.Tensor
    labels: torch.Tensor
    labelled: torch.Tensor

    def join(self, other: LabelledCells) -> LabelledCells:
        """Both frames' cells (along the cell axis)."""
        return LabelledCells(
            torch.cat([self.keys, other.keys], 1),
            torch.cat([self.labels, other.labels], 1),
            torch.cat([self.labelled, other.labelled], 1),
        )


def readout_keys(backbone: list[torch.Tensor]) -> torch.Tensor:
    """Normalised, detached kNN features ``[B, D, h8, w8]`` of backbone maps (strides 4, 8, 16)."""
    f8, f16 = backbone[1].detach(), backbone[2].detach()
    f16 = F.interpolate(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False)
    return F.normalize(torch.cat([F.normalize(f8, dim=1), F.normalize(f16, dim=1)], 1), dim=1)


def labelled_cells(backbone: list[torch.Tensor], scribble: torch.Tensor) -> LabelledCells:
    """The cells of an annotated frame: its backbone maps and one-hot scribble ``[B, K, H, W]`` (channel 0
    unlabeled). A cell is labelled wherever a stroke touches it (thin strokes survive the stride-8 grid)."""
    keys = readout_keys(backbone)
    labels = block_average(scribble.to(keys.dtype), scribble.shape[-1] // keys.shape[-1])[:, 1:]
    labels = labels.flatten(2).transpose(1, 2)  # [B, M, K-1]: objects..., background
    total = labels.sum(-1, keepdim=True)
    labelled = total[..., 0] > 0
    labels = labels / total.clamp_min(1e-12)
    return LabelledCells(keys.flatten(2).transpose(1, 2), labels, labelled)


def predicted_cells(keys: torch.Tensor, prob: torch.Tensor, num_objects: int, width: int) -> LabelledCells:
    """The confident cells of a processed frame: its readout keys ``[B, D, h8, w8]`` and final probabilities
    ``[B, C, H, W]`` (channels ``[unlabeled, objects..., (unused...), background]``), block-averaged to the
    cells. A cell is labelled, one-hot with its most likely of the objects and the background, where that
    probability is at least :data:`CONFIDENCE`; ``width`` label columns as the annotated cells' (objects first,
    background last). Detached: predictions are labels here, not a path for gradients."""
    prob = prob.detach().to(keys.dtype)
    parts = torch.cat([prob[:, 1 : 1 + num_objects], prob[:, -1:]], 1)
    parts = block_average(parts, prob.shape[-1] // keys.shape[-1]).flatten(2).transpose(1, 2)  # [B, M, n+1]
    best, owner = parts.max(-1)
    column = torch.where(owner == num_objects, width - 1, owner)
    labels = F.one_hot(column, width).to(keys.dtype)
    return LabelledCells(keys.flatten(2).transpose(1, 2), labels, best >= CONFIDENCE)


def read(cells: LabelledCells, query: torch.Tensor, num_objects: int) -> torch.Tensor:
    """``[B*num_objects, (vote, mass), h8, w8]`` of a frame's readout keys ``[B, D, h8, w8]``
    (:func:`readout_keys`) against the labelled cells."""
    batch, _, h, w = query.shape
    sims = query.flatten(2).transpose(1, 2) @ cells.keys.transpose(1, 2)  # [B, L, M]
    sims = sims.masked_fill(~cells.labelled.unsqueeze(1), OUTSIDE)
    top, where = sims.topk(min(TOP_K, sims.shape[-1]), dim=-1)
    weights = torch.softmax(top / TEMPERATURE, dim=-1) * (top > OUTSIDE).to(top.dtype)
    rows = torch.arange(batch, device=where.device).view(batch, 1, 1)
    picked = cells.labels[rows, where]  # the labels of each query cell's top-k cells: [B, L, k, K-1]
    read_labels = (weights.unsqueeze(-1) * picked).sum(2)  # [B, L, K-1]
    own = read_labels[..., :num_objects]
    total = read_labels.sum(-1, keepdim=True)
    vote = own / (total + VOTE_EPS)
    mass = top[..., :1].clamp_min(0).expand_as(own)
    out = torch.stack([vote, mass], dim=1)  # [B, 2, L, num_objects]
    return out.permute(0, 3, 1, 2).reshape(batch * num_objects, LABEL_CHANNELS, h, w)
