"""Learned position embedding and reliability-level embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PositionEmbedding(nn.Module):
    """Learned row/column tables; position (y, x) gets ``concat(column[x], row[y])``.

    Feature maps larger than the table get the full table resized bilinearly (align_corners=True).
    """

    def __init__(self, rows: int, cols: int, dim_per_axis: int) -> None:
        super().__init__()
        self.rows, self.cols = rows, cols
        self.row_embed = nn.Embedding(rows, dim_per_axis)
        self.col_embed = nn.Embedding(cols, dim_per_axis)
        nn.init.uniform_(self.row_embed.weight)
        nn.init.uniform_(self.col_embed.weight)

    def _table(self, h: int, w: int) -> torch.Tensor:
        cols = self.col_embed.weight[:w]  # [w, D]
        rows = self.row_embed.weight[:h]  # [h, D]
        grid = torch.cat([cols.unsqueeze(0).expand(h, w, -1), rows.unsqueeze(1).expand(h, w, -1)], dim=-1)
        return grid.permute(2, 0, 1).unsqueeze(0)  # [1, 2D, h, w]

    def forward(self, h: int, w: int) -> torch.Tensor:
        """Embedding map ``[1, 2D, h, w]`` for a feature map of size ``h x w``."""
        if h <= self.rows and w <= self.cols:
            return self._table(h, w)
        return F.interpolate(self._table(self.rows, self.cols), size=(h, w), mode="bilinear", align_corners=True)


class LevelEmbeddings(nn.Module):
    """Reliability-level embeddings added to memory entries.

    Row 0: initial scribble; row 1: predicted reliable region; rows 2..: predicted masks.
    ``obj`` is added where the entry's object is labelled, ``bg`` where background / other objects are.
    """

    def __init__(self, num_levels: int, dim: int) -> None:
        super().__init__()
        self.obj = nn.Embedding(num_levels, dim)
        self.bg = nn.Embedding(num_levels, dim)
        nn.init.constant_(self.obj.weight, 1.0)
        nn.init.constant_(self.bg.weight, -1.0)

    def level(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(e_obj, e_bg)`` vectors of one level (a single shared row when level embeddings are off)."""
        index = min(index, self.obj.num_embeddings - 1)
        return self.obj.weight[index], self.bg.weight[index]
