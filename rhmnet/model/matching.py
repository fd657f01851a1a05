"""Matching: post-norm transformer decoder layers (self-attention over the frame, then cross-attention to
the memory bank) with fused attention and cacheable memory projections.

Tensors are batch-first: tokens ``[N, L, C]``. A layer's ``in_proj_weight``/``out_proj`` follow
``nn.MultiheadAttention``'s layout so the authors' checkpoints load unchanged.

Label readout (``MODEL.LABEL_READOUT``, off by default): memory values also carry each cell's two label
channels (own object, others and background), so the cross-attention weights that read the values read the
labels too; the fraction of attention on the object's own labels (the vote) and on labelled cells at all
(the mass) enter the layer through a zero-initialised projection.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import skip_init

from rhmnet.model.memory_encoder import LABEL_CHANNELS

VOTE_EPS = 1e-4  # keeps the vote finite where the attention found no labelled cell (mass 0)


class Attention(nn.Module):
    """Multi-head attention split into projection and attention steps (so key/value projections of
    stored memory can be computed once and reused)."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"hidden dim {dim} is not divisible by {num_heads} heads")
        self.dim, self.num_heads, self.dropout = dim, num_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length, _ = x.shape
        return x.view(n, length, self.num_heads, -1).transpose(1, 2)  # [N, H, L, d]

    def project_query(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, L, C] -> [N, H, L, d]``."""
        return self._split_heads(F.linear(x, self.in_proj_weight[: self.dim], self.in_proj_bias[: self.dim]))

    def project_key_value(
        self, memory: torch.Tensor, labels: Optional[torch.Tensor] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, M, C] -> ([N, H, M, d], [N, H, M, d])``.

        With ``labels`` ``[N, M, LABEL_CHANNELS]`` (the label readout) every head's values are extended by
        them and its keys by as many zeros (``[N, H, M, d + 2]`` both): equal widths keep the fused
        attention kernel, and zero key channels leave the attention weights as they are.
        """
        kv = F.linear(memory, self.in_proj_weight[self.dim :], self.in_proj_bias[self.dim :])
        k, v = kv.chunk(2, dim=-1)
        k, v = self._split_heads(k), self._split_heads(v)
        if labels is None:
            return k, v
        heads = labels.to(v.dtype).unsqueeze(1).expand(-1, self.num_heads, -1, -1)
        return F.pad(k, (0, labels.shape[-1])), torch.cat([v, heads], dim=-1)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scaled dot-product attention of projected heads, then the output projection: ``[N, L, C]``."""
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        n, _, length, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(n, length, self.dim))

    def attend_reading_labels(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`attend` of label-extended keys and values (:meth:`project_key_value` with labels): the
        output projection of the value part ``[N, L, C]`` and the labels read by the same attention weights,
        averaged over heads ``[N, L, LABEL_CHANNELS]``."""
        head_dim = q.shape[-1]
        p = self.dropout if self.training else 0.0
        q = F.pad(q, (0, v.shape[-1] - head_dim))  # zero channels against the keys' zero channels
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, scale=head_dim**-0.5)
        n, _, length, _ = out.shape
        values = out[..., :head_dim].transpose(1, 2).reshape(n, length, self.dim)
        return self.out_proj(values), out[..., head_dim:].mean(1)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        w, b = self.in_proj_weight, self.in_proj_bias
        d = self.dim
        q = self._split_heads(F.linear(query, w[:d], b[:d]))
        k = self._split_heads(F.linear(key, w[d : 2 * d], b[d : 2 * d]))
        v = self._split_heads(F.linear(value, w[2 * d :], b[2 * d :]))
        return self.attend(q, k, v)


class DecoderLayer(nn.Module):
    """Self-attention, (per-object repeat in layer 0), cross-attention to memory, feed-forward; post-norm."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        ffn_dim: int,
        dropout: float,
        activation: str = "relu",
        label_readout: bool = False,
    ) -> None:
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"unsupported activation {activation!r}")
        self.activation = F.relu if activation == "relu" else F.gelu
        self.self_attn = Attention(dim, num_heads, dropout)
        self.cross_attn = Attention(dim, num_heads, dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.dropout = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        # the label readout's [vote, mass] -> C; zero (and drawn without the random generator, so the other
        # weights are those of a model without it): a fresh model computes what it would without the readout
        self.label_proj: Optional[nn.Linear] = None
        if label_readout:
            self.label_proj = skip_init(nn.Linear, LABEL_CHANNELS, dim)
            nn.init.zeros_(self.label_proj.weight)
            nn.init.zeros_(self.label_proj.bias)

    def self_block(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """``x <- LN1(x + SelfAttn(q=k=x+pos, v=x))``."""
        qk = x + pos
        return self.norm1(x + self.dropout1(self.self_attn(qk, qk, x)))

    def cross_block(
        self,
        x_pos: torch.Tensor,
        kv: tuple[torch.Tensor, torch.Tensor],
        query_heads: Optional[torch.Tensor] = None,
        readout: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """``x <- LN2((x+pos) + CrossAttn(q=x+pos, k=v=M)); x <- LN3(x + FFN(x))``.

        ``query_heads`` may carry an already projected (e.g. object-shared, expanded) query. With the label
        readout ``LN2`` also gets ``label_proj([vote, mass])``: ``readout`` ``[N, L, 2]`` where given (the
        feature readout), else read from label-extended ``kv`` by the cross-attention's own weights.
        """
        q = self.cross_attn.project_query(x_pos) if query_heads is None else query_heads
        if self.label_proj is None:
            x = self.norm2(x_pos + self.dropout2(self.cross_attn.attend(q, *kv)))
        elif readout is not None:
            x = self.norm2(x_pos + self.dropout2(self.cross_attn.attend(q, *kv)) + self.label_proj(readout))
        else:
            if kv[1].shape[-1] != q.shape[-1] + LABEL_CHANNELS:
                raise ValueError("the label readout needs memory entries that carry label channels")
            attended, labels = self.cross_attn.attend_reading_labels(q, *kv)
            x = self.norm2(x_pos + self.dropout2(attended) + self.label_proj(label_votes(labels)))
        ffn = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return self.norm3(x + self.dropout3(ffn))


def label_votes(labels: torch.Tensor) -> torch.Tensor:
    """``[..., (r_own, r_other)] -> [..., (vote, mass)]``: ``vote = r_own / (r_own + r_other + eps)``, the
    share of the attended labels that say "this object", and ``mass = r_own + r_other``, how much of the
    attention fell on labelled cells at all."""
    own, other = labels.unbind(-1)
    mass = own + other
    return torch.stack([own / (mass + VOTE_EPS), mass], dim=-1)
