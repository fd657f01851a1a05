"""Reliability-hierarchical memory bank: entries per reliability level and their update rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

import torch

from rhmnet.config import TestConfig
from rhmnet.model.feature_readout import LabelledCells
from rhmnet.model.matching import Attention


@dataclass
class MemoryEntry:
    """One memory entry, tokens ``[B*num_objects, HW, C]``, with its key/value projections cached per reading layer.

    (A reliable-region entry is read by the mask layer as the current frame's temporary entry and later,
    once stored, by the reliable-region layer: each layer's projection is cached separately.)
    ``labels`` ``[B*num_objects, HW, 2]`` (own object, others and background; ``MODEL.LABEL_READOUT`` only)
    extend the projected values, see :meth:`Attention.project_key_value`. ``cells`` (initial-scribble
    entries, ``MODEL.LABEL_READOUT: features`` only): the annotated frame's labelled cells.
    """

    tokens: torch.Tensor
    labels: Optional[torch.Tensor] = None
    cells: Optional[LabelledCells] = None
    _kv: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    def key_value(self, attention: Attention) -> tuple[torch.Tensor, torch.Tensor]:
        """Projected keys and values ``[B*no, heads, HW, d]`` (``d + 2`` with labels) for ``attention``'s weights."""
        key = id(attention)
        if key not in self._kv:
            self._kv[key] = attention.project_key_value(self.tokens, self.labels)
        return self._kv[key]

    def replace_objects(self, other: MemoryEntry, rows: list[int]) -> None:
        """Overwrite the given batch rows (object slots) with ``other``'s and drop the cached projections."""
        index = torch.tensor(rows, device=self.tokens.device)
        self.tokens = self.tokens.index_copy(0, index, other.tokens.index_select(0, index))
        if self.labels is not None and other.labels is not None:
            self.labels = self.labels.index_copy(0, index, other.labels.index_select(0, index))
        if self.cells is not None and other.cells is not None:  # the new frame's cells join the old ones
            self.cells = self.cells.join(other.cells)
        self._kv.clear()


class MemoryBank:
    """Entries by level: initial scribble (one per decoder layer), predicted reliable regions, predicted
    masks (one list per refinement layer) and, at inference, the last frame's entries."""

    def __init__(
        self,
        initial: list[MemoryEntry],
        scribble_for_masks: bool = False,
        reuse_buffers: bool = False,
        other_scribbles: Sequence[list[MemoryEntry]] = (),
    ) -> None:
        self.initial = initial
        # scribble-level entries of further annotated frames (one list per frame, one entry per decoder
        # layer): every layer reads them right after ``initial``
        self.other_scribbles = list(other_scribbles)
        self.reliable: list[MemoryEntry] = []
        self.masks: list[list[MemoryEntry]] = [[] for _ in range(len(initial) - 1)]
        self.last_reliable: Optional[MemoryEntry] = None
        self.last_masks: list[Optional[MemoryEntry]] = [None] * (len(initial) - 1)
        # the feature readout's cells of the last decoded frame (MODEL.READOUT_PREVIOUS_FRAME), set by its owner
        self.previous_cells: Optional[LabelledCells] = None
        self.scribble_for_masks = scribble_for_masks  # USING_SCRIBBLE_MEM_FOR_MASK: mask layers also read reliable
        # inference: concatenated keys/values live in one buffer per reading layer, and only the entries that
        # changed since the last frame are copied in (the returned tensors are overwritten by the next call)
        self.reuse_buffers = reuse_buffers
        self._buffers: dict[int, _ConcatBuffer] = {}

    def entries(self, level: int, temporary: Optional[MemoryEntry]) -> list[MemoryEntry]:
        """What the decoder layer of ``level`` reads: level 0 (reliable region) the high-reliability entries,
        levels >= 1 (masks) all levels (the current frame's temporary entry joins once mask entries exist)."""
        out = [self.initial[level], *(entries[level] for entries in self.other_scribbles)]
        if level == 0:
            out += self.reliable
            if self.last_reliable is not None:
                out.append(self.last_reliable)
            return out
        if self.scribble_for_masks:
            out += self.reliable
        masks = self.masks[level - 1]
        if masks:
            out += masks
            if temporary is not None:
                out.append(temporary)
        last = self.last_masks[level - 1]
        if last is not None:
            out.append(last)
        return out

    def labelled_cells(self) -> Optional[LabelledCells]:
        """The labelled cells of every annotated frame and of the previous frame's confident predictions (the
        feature readout's memory), None without annotated cells."""
        found = [e[0].cells for e in (self.initial, *self.other_scribbles) if e[0].cells is not None]
        if not found:
            return None
        if self.previous_cells is not None:
            found.append(self.previous_cells)
        cells = found[0]
        for more in found[1:]:
            cells = cells.join(more)
        return cells

    def key_value(
        self, level: int, attention: Attention, temporary: Optional[MemoryEntry] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenated keys and values of everything the decoder layer of ``level`` reads."""
        entries = self.entries(level, temporary)
        pairs = [e.key_value(attention) for e in entries]
        if len(pairs) == 1:
            return pairs[0]
        if self.reuse_buffers:
            return self._buffers.setdefault(id(attention), _ConcatBuffer()).update(entries, pairs)
        return torch.cat([k for k, _ in pairs], dim=2), torch.cat([v for _, v in pairs], dim=2)

    # -- updates ---------------------------------------------------------------------------------------
    def append(self, reliable: MemoryEntry, masks: list[MemoryEntry]) -> None:
        """Training rule: every frame's entries are stored."""
        self.reliable.append(reliable)
        for store, entry in zip(self.masks, masks):
            store.append(entry)

    def update(self, reliable: MemoryEntry, masks: list[MemoryEntry], frame_num: int, policy: TestConfig) -> None:
        """Inference rule (the memory policy of ``cfg.TEST``): store every n-th frame, otherwise keep it as
        the last-frame entry; cap list lengths by dropping the second entry (the first stays)."""
        if frame_num % policy.SCRIBBLE_UPDATE_FREQUENCY == 0:
            self.reliable.append(reliable)
        elif policy.REQUIRE_LAST_SCRIBBLE:
            self.last_reliable = reliable
        _cap(self.reliable, policy.MAX_MEMORY_LENGTH)
        for i, entry in enumerate(masks):
            if frame_num % policy.UPDATE_FREQUENCY == 0:
                self.masks[i].append(entry)
            elif policy.REQUIRE_LAST:
                self.last_masks[i] = entry
            _cap(self.masks[i], policy.MAX_MEMORY_LENGTH)


class _ConcatBuffer:
    """Keys and values of a list of entries concatenated along the token axis, updated in place: a slot is
    copied again only when a different entry (by identity) occupies it; a new total length reallocates."""

    def __init__(self) -> None:
        self.keys: Optional[torch.Tensor] = None
        self.values: Optional[torch.Tensor] = None
        self.slots: list[tuple[int, int, int]] = []  # (id(entry), id(its key tensor), length)
        self._alive: list[tuple[MemoryEntry, torch.Tensor]] = []  # keeps ids unique while they name a slot

    def update(
        self, entries: list[MemoryEntry], pairs: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        slots = [(id(e), id(k), k.shape[2]) for e, (k, _) in zip(entries, pairs)]
        total = sum(length for *_, length in slots)
        first_k, first_v = pairs[0]
        shape = (*first_k.shape[:2], total, first_k.shape[3])
        value_shape = (*shape[:3], first_v.shape[3])  # values may be wider (label readout)
        if (
            self.keys is None
            or self.values is None
            or self.keys.shape != shape
            or self.values.shape != value_shape
            or self.keys.dtype != first_k.dtype
        ):
            self.keys, self.values = first_k.new_empty(shape), first_k.new_empty(value_shape)
            self.slots = []
        start = 0
        for index, (slot, (k, v)) in enumerate(zip(slots, pairs)):
            if index >= len(self.slots) or self.slots[index] != slot:
                self.keys[:, :, start : start + slot[2]] = k
                self.values[:, :, start : start + slot[2]] = v
            start += slot[2]
        self.slots, self._alive = slots, [(e, k) for e, (k, _) in zip(entries, pairs)]
        return self.keys, self.values


def _cap(entries: list[MemoryEntry], max_length: int) -> None:
    if len(entries) > max_length:
        entries.pop(1)
