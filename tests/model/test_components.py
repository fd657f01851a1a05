"""Unit tests of model building blocks on hand-made inputs."""

from __future__ import annotations

import math

import pytest
import torch

from rhmnet import config
from rhmnet.inference.session import crop, pad, pad_amounts
from rhmnet.model.heads import soft_aggregate
from rhmnet.model.memory import MemoryBank, MemoryEntry
from rhmnet.model.memory_encoder import attach, block_average, one_hot, similarity_labels


@pytest.mark.parametrize(
    ("size", "expected"),
    [((480, 854), (5, 5, 0, 0)), ((200, 300), (2, 2, 4, 4)), ((17, 31), (0, 1, 7, 8)), ((64, 96), (0, 0, 0, 0))],
)
def test_pad_amounts_split_floor_before_rest_after(size, expected):
    assert pad_amounts(*size, 16) == expected


def test_pad_then_crop_round_trips_and_pads_with_zeros():
    x = torch.randn(1, 3, 17, 31)
    amounts = pad_amounts(17, 31, 16)
    padded = pad(x, amounts)
    assert padded.shape[-2:] == (32, 32)
    assert padded[..., :7, :].abs().sum() == 0 and padded[..., -8:, :].abs().sum() == 0
    assert padded[..., :, -1:].abs().sum() == 0
    assert torch.equal(crop(padded, amounts), x)


def test_soft_aggregation_by_hand():
    fg = torch.tensor([0.8, 0.5]).view(1, 2, 1, 1)  # two objects, one pixel
    probs, logits = soft_aggregate(fg)
    p = [1e-7, 0.8, 0.5] + [1e-7] * 8 + [0.2 * 0.5]
    odds = torch.tensor([q / (1 - q) for q in p], dtype=torch.float64)
    assert probs.shape == (1, 12, 1, 1)
    assert torch.allclose(logits.flatten().double(), odds.log(), atol=1e-5)
    assert torch.allclose(probs.flatten().double(), odds / odds.sum(), atol=1e-6)
    assert probs[0, :, 0, 0].argmax() == 1


def test_soft_aggregation_clamps_certain_pixels():
    probs, logits = soft_aggregate(torch.ones(1, 1, 2, 2))
    assert torch.isfinite(logits).all()
    top = torch.tensor(1 - 1e-7)  # the clamp bound as float32 represents it
    assert math.isclose(float(logits[0, 1, 0, 0]), float(torch.log(top / (1 - top))), rel_tol=1e-6)
    assert torch.allclose(probs.sum(1), torch.ones(1, 2, 2))


def test_block_average_and_one_hot():
    labels = torch.zeros(1, 4, 4, dtype=torch.uint8)
    labels[0, :2, :2] = 1
    labels[0, 0, 3] = 11
    onehot = one_hot(labels)
    assert onehot.shape == (1, 12, 4, 4)
    avg = block_average(onehot, 2)
    assert avg[0, 1].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert avg[0, 11].tolist() == [[0.0, 0.25], [0.0, 0.0]]
    with pytest.raises(ValueError, match="multiple"):
        block_average(torch.zeros(1, 12, 5, 4), 2)


def test_attach_adds_object_and_background_embeddings():
    tokens = torch.zeros(1, 2, 3)  # B=1, two cells, C=3, shared by objects
    labels = torch.zeros(1, 12, 1, 2)
    labels[0, 1] = torch.tensor([[1.0, 0.0]])  # object 1 on cell 0
    labels[0, 2] = torch.tensor([[0.0, 0.5]])  # object 2 half on cell 1
    labels[0, 11] = torch.tensor([[0.0, 0.25]])  # background
    e_obj, e_bg = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0, -1.0, -1.0])
    out = attach(tokens, labels, 2, e_obj, e_bg)
    assert out.shape == (2, 2, 3)
    # object 1: cell 0 gets e_obj; cell 1 gets (L_2 + L_bg) e_bg = 0.75 e_bg
    assert torch.allclose(out[0, 0], e_obj)
    assert torch.allclose(out[0, 1], 0.75 * e_bg)
    # object 2: cell 0 gets L_1 e_bg, cell 1 gets 0.5 e_obj + 0.25 e_bg
    assert torch.allclose(out[1, 0], e_bg)
    assert torch.allclose(out[1, 1], 0.5 * e_obj + 0.25 * e_bg)
    assert torch.allclose(attach(tokens, labels, 2, e_obj, None)[1, 0], torch.zeros(3))


def test_similarity_labels_by_hand():
    # 2x2 feature cells of a 32x32 scribble (stride 16)
    feats = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]]).T.reshape(1, 2, 2, 2)
    scribble = torch.zeros(1, 12, 32, 32)
    scribble[0, 1, :16, :16] = 1.0  # cell (0,0) fully covered -> prototype = its feature (1, 0)
    scribble[0, 1, :8, 16:] = 1.0  # cell (0,1) half covered: below 0.211? no, 0.5 -> also in prototype
    scribble[0, 1, 16:18, :16] = 1.0  # cell (1,0) coverage 0.125: not in prototype, label zeroed (< 0.15)
    scribble[0, 11, 16:, 16:] = 1.0  # background on cell (1,1)
    labels = similarity_labels(scribble, feats, num_objects=1)
    proto = (torch.tensor([1.0, 0.0]) * 1.0 + torch.tensor([1.0, 1.0]) * 0.5) / 1.5
    cos = torch.nn.functional.cosine_similarity
    assert torch.allclose(labels[0, 1, 0, 0], cos(proto, torch.tensor([1.0, 0.0]), dim=0), atol=1e-6)
    assert torch.allclose(labels[0, 1, 0, 1], cos(proto, torch.tensor([1.0, 1.0]), dim=0), atol=1e-6)
    assert labels[0, 1, 1, 0] == 0 and labels[0, 1, 1, 1] == 0
    assert torch.allclose(labels[0, 11, 1, 1], torch.tensor(1.0))  # its own prototype: cosine 1
    assert labels[0, 2:11].abs().sum() == 0 and labels[0, 0].abs().sum() == 0


def test_similarity_labels_fallback_keeps_maximal_cells():
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, -1.0]]).T.reshape(1, 2, 2, 2)
    scribble = torch.zeros(1, 12, 32, 32)
    scribble[0, 1, :3, :16] = 1.0  # coverage 0.1875 < 0.211: nothing survives -> keep the max cell
    scribble[0, 1, 16, 16] = 1.0  # tiny coverage on cell (1,1)
    labels = similarity_labels(scribble, feats, num_objects=1)
    # prototype = feature of cell (0,0); its label 1 (coverage 0.1875 >= 0.15); cell (1,1) zeroed (< 0.15)
    assert torch.allclose(labels[0, 1, 0, 0], torch.tensor(1.0))
    assert labels[0, 1, 1, 1] == 0


def _entry(tag: float) -> MemoryEntry:
    return MemoryEntry(torch.full((1, 1, 1), tag))


def _tags(entries):
    return [float(e.tokens) for e in entries]


def test_memory_cap_drops_the_second_entry():
    settings = config.TestConfig(
        MAX_MEMORY_LENGTH=3,
        UPDATE_FREQUENCY=1,
        SCRIBBLE_UPDATE_FREQUENCY=2,
        REQUIRE_LAST_SCRIBBLE=True,
        REQUIRE_LAST=True,
    )
    bank = MemoryBank([_entry(-1), _entry(-2)])
    for frame in range(6):
        bank.update(_entry(frame), [_entry(100 + frame)], frame, settings)
    # reliable: frames 0, 2, 4 stored (cap 3 not exceeded); frame 5 is the last-frame entry
    assert _tags(bank.reliable) == [0, 2, 4]
    assert float(bank.last_reliable.tokens) == 5
    # masks stored every frame, capped at 3 keeping the first: 0, 4, 5
    assert _tags(bank.masks[0]) == [100, 104, 105]
    bank.update(_entry(6), [_entry(106)], 6, settings)
    assert _tags(bank.reliable) == [0, 4, 6]


def test_memory_reading_order_with_default_settings():
    settings = config.TestConfig()  # length 4, every 6th frame, last reliable entry kept
    bank = MemoryBank([_entry(-1), _entry(-2)])
    for frame in range(7):
        bank.update(_entry(frame), [_entry(100 + frame)], frame, settings)
    # frame 7 reads initial, frames 0 and 6, and the last-frame entry of frame 5
    assert _tags(bank.entries(0, None)) == [-1, 0, 6, 5]
    temporary = _entry(7)
    assert _tags(bank.entries(1, temporary)) == [-2, 100, 106, 7]
    empty = MemoryBank([_entry(-1), _entry(-2)])
    assert _tags(empty.entries(1, temporary)) == [-2]  # the temporary entry joins only once masks exist


@pytest.mark.parametrize("with_labels", [False, True])
def test_reused_key_value_buffers_equal_concatenation(with_labels):
    """Inference's in-place concatenation buffers give the same keys/values as torch.cat, frame after frame
    (also with the label readout's label-extended values)."""
    from rhmnet.model.matching import Attention

    torch.manual_seed(0)
    attention = Attention(16, 2, 0.0)

    def new_entry() -> MemoryEntry:
        return MemoryEntry(torch.randn(2, 5, 16), torch.rand(2, 5, 2) if with_labels else None)

    initial = [new_entry() for _ in range(2)]
    plain, reused = MemoryBank(initial), MemoryBank(initial, reuse_buffers=True)
    settings = config.TestConfig(MAX_MEMORY_LENGTH=3, UPDATE_FREQUENCY=2, SCRIBBLE_UPDATE_FREQUENCY=2)
    for frame in range(7):
        reliable = new_entry()
        masks = [new_entry()]
        temporary = new_entry()
        for bank in (plain, reused):
            bank.update(reliable, masks, frame, settings)
        for level in (0, 1):
            expected = plain.key_value(level, attention, temporary)
            got = reused.key_value(level, attention, temporary)
            assert all(torch.equal(a, b) for a, b in zip(expected, got))
            assert expected[1].shape[-1] == (10 if with_labels else 8)
    new = new_entry()
    initial[0].replace_objects(new, [1])  # a late object rewrites a slot of the same entry
    expected, got = plain.key_value(0, attention), reused.key_value(0, attention)
    assert all(torch.equal(a, b) for a, b in zip(expected, got))
