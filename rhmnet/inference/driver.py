"""The one video loop: initialise on the first frame, step every frame, hand each mask to a sink.

Every caller that segments a whole video (DAVIS and YouTube-VOS evaluation, ``reference_check``,
``rhmnet.segment``, the demo) runs :func:`segment_video`. Input and output overlap with the model:

- frames are decoded ahead by a background thread into a bounded queue
  (:class:`~rhmnet.inference.frame_io.FrameSource`), so memory stays flat in video length;
- masks are written by a small thread pool with a bounded number of pending writes
  (:class:`~rhmnet.inference.mask_io.PaletteWriter`), optionally resized back to each frame's original size;
- objects that join later (YouTube-VOS) come from a hook called on every frame (``new_objects``);
- a :class:`~rhmnet.inference.timing.SpeedMeter` times the model step alone.

A failure in a background thread (unreadable frame, unwritable mask) is raised in the caller as a
:class:`~rhmnet.inference.frame_io.VideoIOError` naming the file; the threads stop on any error and on
KeyboardInterrupt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from rhmnet.inference.frame_io import FrameSource, VideoFrame
from rhmnet.inference.mask_io import PaletteWriter
from rhmnet.inference.session import FrameResult, InferenceError, ScribbleMemory, VideoSegmenter
from rhmnet.inference.timing import SpeedMeter


@dataclass
class ObjectStart:
    """Objects that first appear on a frame: their label map (at the network's frame size) and ids."""

    labels: np.ndarray
    object_ids: Sequence[int]


FrameHook = Callable[[VideoFrame, FrameResult], None]
ObjectHook = Callable[[VideoFrame], Optional[ObjectStart]]


@dataclass
class VideoRun:
    """What :func:`segment_video` did: frames stepped, seconds from the first frame to the last mask
    written (decoding and writing included), and the masks when collected."""

    frames: int = 0
    seconds: float = 0.0
    names: list[str] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def segment_video(
    segmenter: VideoSegmenter,
    frames: FrameSource,
    scribble: Optional[np.ndarray] = None,
    *,
    num_objects: Optional[int] = None,
    object_ids: Optional[Sequence[int]] = None,
    new_objects: Optional[ObjectHook] = None,
    sink: Optional[PaletteWriter] = None,
    on_frame: Optional[FrameHook] = None,
    collect: bool = False,
    meter: Optional[SpeedMeter] = None,
    record_name: str = "video",
    with_reliable: bool = False,
    other_scribbles: Sequence[ScribbleMemory] = (),
) -> VideoRun:
    """Segment ``frames`` in order: initialise on the first with ``scribble``, then step each one.

    ``frame_num`` counts the frames of this run from 0 (so a backward run k..0 is a video of its own).
    ``new_objects(frame)`` is called on every frame: on the first it may supply the initial scribble and
    object ids (when ``scribble`` is None), later its :class:`ObjectStart` joins objects with
    ``add_objects`` before the frame is stepped. Each result goes to ``sink`` (written in the background)
    and ``on_frame``; ``collect`` keeps the label maps in the returned :class:`VideoRun`. ``meter`` times
    the model step alone under ``record_name``. The sink is closed (all masks written) before returning.
    ``with_reliable`` also computes each frame's upsampled reliable-region map (``result.reliable``).
    ``other_scribbles`` (other annotated frames) join the scribble-level memory at initialisation.
    """
    run = VideoRun()
    start = time.perf_counter()
    try:
        with frames:
            if meter is not None:
                with meter.video(record_name) as record:
                    _loop(segmenter, frames, scribble, num_objects, object_ids, new_objects, sink, on_frame,
                          collect, run, lambda fn: meter.step(record, fn), with_reliable, other_scribbles)
            else:
                _loop(segmenter, frames, scribble, num_objects, object_ids, new_objects, sink, on_frame, collect,
                      run, lambda fn: fn(), with_reliable, other_scribbles)
    except BaseException:
        if sink is not None:
            sink.close(cancel=True)
        raise
    if sink is not None:
        sink.close()
    run.seconds = time.perf_counter() - start
    return run


def _loop(
    segmenter: VideoSegmenter,
    frames: FrameSource,
    scribble: Optional[np.ndarray],
    num_objects: Optional[int],
    object_ids: Optional[Sequence[int]],
    new_objects: Optional[ObjectHook],
    sink: Optional[PaletteWriter],
    on_frame: Optional[FrameHook],
    collect: bool,
    run: VideoRun,
    timed: Callable[[Callable[[], FrameResult]], FrameResult],
    with_reliable: bool,
    other_scribbles: Sequence[ScribbleMemory] = (),
) -> None:
    for position, frame in enumerate(frames):
        joining = new_objects(frame) if new_objects is not None else None
        if position == 0:
            if scribble is None and joining is None:
                raise InferenceError(f"no scribble for the first frame ({frame.name}) of {frames.description}")
            labels, ids = (scribble, object_ids) if scribble is not None else (joining.labels, joining.object_ids)
            more = {"other_scribbles": other_scribbles} if other_scribbles else {}  # the one-scribble call as before
            segmenter.initialize(frame.image, labels, num_objects=num_objects, object_ids=ids, **more)
        elif joining is not None:
            segmenter.add_objects(frame.image, joining.labels, joining.object_ids)
        result = timed(lambda f=frame.image, n=position: segmenter.step(f, frame_num=n, with_reliable=with_reliable))
        run.frames += 1
        run.names.append(frame.name)
        if collect:
            run.masks.append(result.labels)
        if sink is not None:
            sink.put(frame, result)
        if on_frame is not None:
            on_frame(frame, result)
    if run.frames == 0:
        raise InferenceError(f"no frames to segment in {frames.description}")
