"""Feature readout (``MODEL.LABEL_READOUT: features``, not in the paper): a k-nearest-neighbour vote of the
annotated frames' scribbled cells, from fixed backbone features, read once per frame.

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


def read(cells: LabelledCells, backbone: list[torch.Tensor], num_objects: int) -> torch.Tensor:
    """``[B*num_objects, (vote, mass), h8, w8]`` of a frame's backbone maps against the labelled cells."""
    query = readout_keys(backbone)
    batch, _, h, w = query.shape
    sims = query.flatten(2).transpose(1, 2) @ cells.keys.transpose(1, 2)  # [B, L, M]
    sims = sims.masked_fill(~cells.labelled.unsqueeze(1), OUTSIDE)
    top, where = sims.topk(min(TOP_K, sims.shape[-1]), dim=-1)
    weights = torch.softmax(top / TEMPERATURE, dim=-1) * (top > OUTSIDE).to(top.dtype)
    dense = torch.zeros_like(sims).scatter_(-1, where, weights)
    read_labels = dense @ cells.labels  # [B, L, K-1]
    own = read_labels[..., :num_objects]
    total = read_labels.sum(-1, keepdim=True)
    vote = own / (total + VOTE_EPS)
    mass = top[..., :1].clamp_min(0).expand_as(own)
    out = torch.stack([vote, mass], dim=1)  # [B, 2, L, num_objects]
    return out.permute(0, 3, 1, 2).reshape(batch * num_objects, LABEL_CHANNELS, h, w)
