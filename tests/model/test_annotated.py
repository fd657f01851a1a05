"""Strokes on several frames: the pass plan, the shared scribble-level memory, and the one-scribble case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rhmnet.inference import InferenceError, VideoSegmenter
from rhmnet.inference.annotated import object_count, plan_passes, segment_annotated
from tests.model.test_inference import _video as inference_video


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny model, one thread (see ``one_torch_thread``)."""


def _video() -> tuple[np.ndarray, np.ndarray]:
    """Seven random 48x64 frames and a scribble of two objects and background (test_inference's)."""
    return inference_video(frames=7, h=48, w=64)


def _run(segmenter: VideoSegmenter, video: np.ndarray, scribbles: dict[int, np.ndarray]) -> dict[int, torch.Tensor]:
    out: dict[int, torch.Tensor] = {}

    def keep(index: int, result) -> None:
        assert index not in out, f"frame {index} delivered twice"
        out[index] = result.probs.clone()

    segment_annotated(segmenter, lambda i: video[i], len(video), scribbles, keep)
    return out


def _manual(segmenter: VideoSegmenter, video: np.ndarray, order: list[int], scribble: np.ndarray, n: int,
            others=()) -> list[torch.Tensor]:
    segmenter.initialize(video[order[0]], scribble, num_objects=n, other_scribbles=others)
    return [segmenter.step(video[i], frame_num=k).probs.clone() for k, i in enumerate(order)]


def test_plan_covers_each_frame_once_from_its_nearest_annotated_frame() -> None:
    passes = plan_passes(10, [2, 6])
    owner: dict[int, int] = {}
    for run in passes:
        for position, index in enumerate(run.frames):
            if position > 0 or run.keep_first:
                assert index not in owner
                owner[index] = run.start
    assert sorted(owner) == list(range(10))
    # frame 4 is as near to 2 as to 6: the earlier annotated frame (its forward pass) takes it
    assert owner == {0: 2, 1: 2, 2: 2, 3: 2, 4: 2, 5: 6, 6: 6, 7: 6, 8: 6, 9: 6}
    assert [(r.start, r.frames[0], r.frames[-1]) for r in passes] == [(2, 2, 4), (2, 2, 0), (6, 6, 9), (6, 6, 5)]
    assert [r.start for r in plan_passes(10, [2, 6], first=[6])][:2] == [6, 6]  # the newest annotation first
    assert [r.frames for r in plan_passes(3, [0])] == [[0, 1, 2]]  # frame 0: forward only
    with pytest.raises(InferenceError, match="no annotated frame"):
        plan_passes(5, [])
    with pytest.raises(InferenceError, match="must lie in"):
        plan_passes(5, [5])


def test_object_count_needs_an_object() -> None:
    assert object_count({0: np.array([[0, 11, 3]]), 4: np.array([[1]])}) == 3
    with pytest.raises(InferenceError, match="label no object"):
        object_count({0: np.array([[0, 11]])})


@pytest.mark.parametrize("start", [0, 3])
def test_one_annotated_frame_is_the_one_scribble_run(tiny_model, start: int) -> None:
    """One annotated frame: forward (and from frame k > 0 backward with a fresh memory), exactly the results
    of stepping the plain VideoSegmenter, bit for bit."""
    video, scribble = _video()
    got = _run(VideoSegmenter(tiny_model), video, {start: scribble})
    segmenter = VideoSegmenter(tiny_model)
    forward = list(range(start, len(video)))
    expected = dict(zip(forward, _manual(segmenter, video, forward, scribble, 2)))
    if start > 0:
        backward = list(range(start, -1, -1))
        expected.update(dict(zip(backward[1:], _manual(segmenter, video, backward, scribble, 2)[1:])))
    assert sorted(got) == list(range(len(video)))
    for index in expected:
        assert torch.equal(got[index], expected[index]), index


def test_every_annotated_frame_enters_the_scribble_memory(tiny_model) -> None:
    video, scribble = _video()
    late = np.zeros_like(scribble)
    late[20:24, 5:25] = 2  # object 2 only, and a background stroke
    late[0:3, :] = 11
    segmenter = VideoSegmenter(tiny_model)
    memory = segmenter.scribble_memory(video[5], late, 2)
    # the same entries as initialising from that frame
    segmenter.initialize(video[5], late, num_objects=2)
    for mine, initial in zip(memory.entries, segmenter.bank.initial):
        assert torch.equal(mine.tokens, initial.tokens)
    segmenter.initialize(video[0], scribble, other_scribbles=[memory])
    assert len(segmenter.bank.entries(0, None)) == 2  # the initial scribble and frame 5's
    assert segmenter.bank.entries(1, None)[1] is memory.entries[1]

    got = _run(VideoSegmenter(tiny_model), video, {0: scribble, 5: late})
    one = _run(VideoSegmenter(tiny_model), video, {0: scribble})
    assert sorted(got) == list(range(len(video)))
    # frames 0..2 come from frame 0's pass, but its memory now also holds frame 5's strokes
    assert not torch.equal(got[1], one[1])
    # frames 3..6 come from frame 5's passes, each with frame 0's strokes in memory too
    memory0 = segmenter.scribble_memory(video[0], scribble, 2)
    manual = _manual(VideoSegmenter(tiny_model), video, [5, 6], late, 2, [memory0])
    assert torch.equal(got[5], manual[0]) and torch.equal(got[6], manual[1])
    backward = _manual(VideoSegmenter(tiny_model), video, [5, 4, 3], late, 2, [memory0])
    assert torch.equal(got[4], backward[1]) and torch.equal(got[3], backward[2])


def test_a_frame_of_background_strokes_only_is_an_annotated_frame(tiny_model) -> None:
    video, scribble = _video()
    only_bg = np.zeros_like(scribble)
    only_bg[:4, :] = 11
    got = _run(VideoSegmenter(tiny_model), video, {0: scribble, 6: only_bg})
    assert sorted(got) == list(range(len(video)))
    with pytest.raises(InferenceError, match="label no object"):
        _run(VideoSegmenter(tiny_model), video, {6: only_bg})
    with pytest.raises(InferenceError, match="same 2 object slots"):
        segmenter = VideoSegmenter(tiny_model)
        memory = segmenter.scribble_memory(video[6], only_bg, 3)
        segmenter.initialize(video[0], scribble, other_scribbles=[memory])
