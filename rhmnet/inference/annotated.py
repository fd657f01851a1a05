"""Segment a video from strokes on several frames (the DAVIS interactive protocol, generalised).

Every annotated frame starts two passes with a fresh memory: forward towards the next annotated frame
and backward towards the previous one (the video's ends for the first and last). Each pass stops halfway,
so every frame is segmented once, from its **nearest annotated frame** (at equal distance, the earlier
one, i.e. its forward pass); an annotated frame keeps the result of its own forward pass. The
scribble-level memory of every pass holds the strokes of **all** annotated frames: the starting frame's
as the initial scribble, the others through :meth:`VideoSegmenter.scribble_memory`. The result is a
function of the strokes alone: after new strokes every pass runs again, and replaces each frame's mask
as its pass reaches it. With one annotated frame this is exactly the one-scribble run (frame 0: forward
only; frame k: forward to the end and backward to frame 0, as ``eval_davis.py`` does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from rhmnet.inference.driver import segment_video
from rhmnet.inference.frame_io import DEFAULT_PREFETCH, FrameSource, VideoFrame
from rhmnet.inference.session import FrameResult, InferenceError, VideoSegmenter
from rhmnet.labels import BACKGROUND, MAX_OBJECTS


@dataclass(frozen=True)
class Pass:
    """One run with a fresh memory: the frames in the order stepped (the annotated ``start`` first);
    ``keep_first`` is False for a backward pass (the annotated frame keeps its forward result)."""

    start: int
    frames: list[int]
    keep_first: bool


def plan_passes(num_frames: int, annotated: Sequence[int], first: Sequence[int] = ()) -> list[Pass]:
    """The passes covering ``num_frames`` frames from the ``annotated`` frame indices, each frame once from
    its nearest annotated frame (ties: the earlier one). Passes of the frames in ``first`` come first (in
    that order; e.g. the most recently drawn), then the others by frame index; forward before backward."""
    marks = sorted(set(annotated))
    if not marks:
        raise InferenceError("no annotated frame to segment from")
    if marks[0] < 0 or marks[-1] >= num_frames:
        raise InferenceError(f"annotated frames {marks} must lie in 0..{num_frames - 1}")
    passes: dict[int, list[Pass]] = {}
    for i, start in enumerate(marks):
        end = (start + marks[i + 1]) // 2 if i + 1 < len(marks) else num_frames - 1  # midpoint: the earlier
        begin = (marks[i - 1] + start) // 2 + 1 if i > 0 else 0
        runs = [Pass(start, list(range(start, end + 1)), True)]
        if begin < start:
            runs.append(Pass(start, list(range(start, begin - 1, -1)), False))
        passes[start] = runs
    order = [m for m in dict.fromkeys(first) if m in passes] + [m for m in marks if m not in first]
    return [run for start in order for run in passes[start]]


def object_count(scribbles: Mapping[int, np.ndarray]) -> int:
    """The largest object id (1..10) over all scribbles; an error when no scribble labels an object."""
    ids = [int(v) for labels in scribbles.values() for v in np.unique(labels) if 1 <= v <= MAX_OBJECTS]
    if not ids:
        raise InferenceError("the strokes label no object (values 1..10 mark objects; 11 is background)")
    return max(ids)


def segment_annotated(
    segmenter: VideoSegmenter,
    read_frame: Callable[[int], np.ndarray],
    num_frames: int,
    scribbles: Mapping[int, np.ndarray],
    on_frame: Callable[[int, FrameResult], None],
    first: Sequence[int] = (),
    on_pass: Optional[Callable[[Pass], None]] = None,
    prefetch: int = DEFAULT_PREFETCH,
) -> int:
    """Segment frames ``0..num_frames-1`` (``read_frame(i)``: RGB uint8, decoded ahead in a background
    thread) from label maps ``scribbles`` (frame index -> ``[H, W]``, 0 unlabeled, 1..10 objects, 11
    background) on one or more frames, by :func:`plan_passes`. ``on_frame(index, result)`` gets every
    frame's result once (raise in it to stop); ``on_pass`` is told of each pass as it starts. Returns the
    number of object slots."""
    marks = [k for k, labels in scribbles.items() if int(np.asarray(labels).max(initial=0)) > 0]
    bad = [int(v) for labels in scribbles.values() for v in np.unique(labels) if v > BACKGROUND]
    if bad:
        raise InferenceError(f"scribble values must lie in 0..{BACKGROUND}, found {max(bad)}")
    num_objects = object_count({k: scribbles[k] for k in marks})
    passes = plan_passes(num_frames, marks, first)
    memories = {}
    if len(marks) > 1:
        memories = {k: segmenter.scribble_memory(read_frame(k), scribbles[k], num_objects) for k in marks}
    for run in passes:
        if on_pass is not None:
            on_pass(run)
        others = [memories[k] for k in marks if k != run.start]

        def deliver(frame: VideoFrame, result: FrameResult, run: Pass = run) -> None:
            if frame.index > 0 or run.keep_first:
                on_frame(run.frames[frame.index], result)

        source = FrameSource.from_arrays(_frames(read_frame, run.frames), prefetch=prefetch)
        segment_video(segmenter, source, scribbles[run.start], num_objects=num_objects, on_frame=deliver,
                      other_scribbles=others)
    return num_objects


def _frames(read_frame: Callable[[int], np.ndarray], indices: Sequence[int]) -> Iterator[np.ndarray]:
    for index in indices:
        yield read_frame(index)
