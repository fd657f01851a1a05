"""The one video loop: initialise on the first frame, step every frame, hand each mask to a sink.

Every caller that segments a whole video (DAVIS and YouTube-VOS evaluation, ``reference_check``,
``rhmnet.segment``, the demo) runs :func:`segment_video`. Input and output overlap with the model:

- frames are decoded ahead by a background thread into a bounded queue (:class:`FrameSource`), so
  memory stays flat in video length;
- masks are written by a small thread pool with a bounded number of pending writes
  (:class:`PaletteWriter`), optionally resized back to each frame's original size;
- objects that join later (YouTube-VOS) come from a hook called on every frame (``new_objects``);
- a :class:`~rhmnet.evaluation.speed.SpeedMeter` times the model step alone.

A failure in a background thread (unreadable frame, unwritable mask) is raised in the caller as a
:class:`VideoIOError` naming the file; the threads stop on any error and on KeyboardInterrupt.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import cv2
import numpy as np
from PIL import Image

from rhmnet.data.io import IMAGE_SUFFIXES, list_files, read_frame_like, read_image, write_palette_png
from rhmnet.inference.session import FrameResult, InferenceError, ScribbleMemory, VideoSegmenter

if TYPE_CHECKING:
    from rhmnet.evaluation.speed import SpeedMeter

DEFAULT_PREFETCH = 4  # decoded frames waiting in the queue (plus one being decoded)
DEFAULT_WRITERS = 2  # PNG-writing threads
DEFAULT_PENDING_WRITES = 8  # masks queued for writing before the loop waits


class VideoIOError(InferenceError):
    """A frame could not be read or a mask could not be written (the message names the file)."""


class MaskWriteError(VideoIOError):
    """A mask could not be written (read-only folder, full disk): the run failed (exit status 1)."""

    exit_code = 1


@dataclass
class VideoFrame:
    """One decoded frame: its position in the source, a name for its output file, the RGB image the
    network sees and the size (h, w) of the frame as stored (masks are written at that size)."""

    index: int
    name: str
    image: np.ndarray
    original_hw: tuple[int, int]


@dataclass
class ObjectStart:
    """Objects that first appear on a frame: their label map (at the network's frame size) and ids."""

    labels: np.ndarray
    object_ids: Sequence[int]


def target_size(height: int, width: int, size: Optional[int]) -> tuple[int, int]:
    """(h, w) the network sees: width ``size``, height int(size*h/w) for frames at least that wide."""
    if size is None or width < size:
        return height, width
    return int(size * height / width), size


def resize_to_width(image: np.ndarray, width: Optional[int]) -> np.ndarray:
    """A frame at least ``width`` wide resized (bilinear) to :func:`target_size`; others unchanged."""
    new_hw = target_size(*image.shape[:2], width)
    if new_hw == image.shape[:2]:
        return image
    return cv2.resize(image, (new_hw[1], new_hw[0]), interpolation=cv2.INTER_LINEAR)


def _decode_paths(paths: Sequence[Path], names: Optional[Sequence[str]], width: Optional[int]) -> Iterator[VideoFrame]:
    first_shape = None
    for index, path in enumerate(paths):
        path = Path(path)
        try:
            image = read_image(path) if first_shape is None else read_frame_like(path, first_shape)
            first_shape = image.shape
        except Exception as exc:  # noqa: BLE001 - any decoder failure becomes an error naming the file
            message = str(exc) if str(path) in str(exc) else f"cannot read frame {path}: {exc}"
            raise VideoIOError(message) from exc
        name = names[index] if names is not None else path.stem
        yield VideoFrame(index, name, resize_to_width(image, width), image.shape[:2])


def _decode_video(path: Path, max_frames: Optional[int], width: Optional[int]) -> Iterator[VideoFrame]:
    if not path.is_file():
        raise VideoIOError(f"video not found: {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoIOError(f"cannot open video {path}")
    try:
        listed = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))  # from the header; 0 or less when unknown
        index = 0
        while max_frames is None or index < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield VideoFrame(index, f"{index:05d}", resize_to_width(image, width), image.shape[:2])
            index += 1
        if index == 0:
            raise VideoIOError(f"no frame could be decoded from {path}")
        expected = listed if max_frames is None else min(listed, max_frames)
        if index < expected:
            raise VideoIOError(
                f"{path}: truncated or damaged video: its header lists {listed} frames but only {index} "
                f"could be decoded"
            )
    finally:
        capture.release()


def _wrap_arrays(
    images: Iterable[np.ndarray], names: Optional[Sequence[str]], width: Optional[int]
) -> Iterator[VideoFrame]:
    for index, image in enumerate(images):
        name = names[index] if names is not None else f"{index:05d}"
        yield VideoFrame(index, name, resize_to_width(image, width), image.shape[:2])


def frame_files(folder: Path) -> list[Path]:
    """The image files of a frames folder, sorted by name; two files with one name (``00002.jpg`` and
    ``00002.png``: one mask file would be written for both) are an error naming them."""
    files = list_files(folder, IMAGE_SUFFIXES)
    if not files:
        raise VideoIOError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    by_stem: dict[str, list[str]] = {}
    for path in files:
        by_stem.setdefault(path.stem, []).append(path.name)
    clashes = [names for names in by_stem.values() if len(names) > 1]
    if clashes:
        shown = "; ".join(" and ".join(names) for names in clashes[:5])
        raise VideoIOError(f"{folder}: frames share a name and would get one mask file: {shown}")
    return files


class FrameSource:
    """Frames of one video in the order they are to be segmented, decoded in a background thread.

    Build one with :meth:`from_paths` (any ordered subset: e.g. ``paths[k::-1]`` runs frames k..0
    backwards), :meth:`from_video` or :meth:`from_arrays`; at most ``prefetch`` decoded frames wait in
    the queue. Iterate it once (as a context manager, or let :func:`segment_video` do it).
    """

    def __init__(self, frames: Iterable[VideoFrame], prefetch: int = DEFAULT_PREFETCH, description: str = "") -> None:
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        self._frames = frames
        self.prefetch = prefetch
        self.description = description
        self._queue: queue.Queue = queue.Queue(maxsize=prefetch)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._peeked: Optional[VideoFrame] = None
        self._iterating = False

    # -- constructors -------------------------------------------------------------------------------------
    @classmethod
    def from_paths(
        cls,
        paths: Sequence[str | Path],
        names: Optional[Sequence[str]] = None,
        resize_width: Optional[int] = None,
        prefetch: int = DEFAULT_PREFETCH,
    ) -> FrameSource:
        """Image files in the given order; output names default to the file stems."""
        paths = [Path(p) for p in paths]
        if not paths:
            raise VideoIOError("no frames to segment (empty list of frame files)")
        if names is not None and len(names) != len(paths):
            raise ValueError(f"{len(names)} names for {len(paths)} frames")
        return cls(_decode_paths(paths, names, resize_width), prefetch, str(paths[0].parent))

    @classmethod
    def open(
        cls,
        path: str | Path,
        max_frames: Optional[int] = None,
        resize_width: Optional[int] = None,
        prefetch: int = DEFAULT_PREFETCH,
    ) -> FrameSource:
        """A folder of images (sorted by name, the first ``max_frames``) or a video file."""
        path = Path(path)
        if path.is_dir():
            files = frame_files(path)
            return cls.from_paths(files[:max_frames], resize_width=resize_width, prefetch=prefetch)
        if not path.is_file():
            raise VideoIOError(f"frames not found: {path}")
        return cls.from_video(path, max_frames, resize_width, prefetch)

    @classmethod
    def from_video(
        cls,
        path: str | Path,
        max_frames: Optional[int] = None,
        resize_width: Optional[int] = None,
        prefetch: int = DEFAULT_PREFETCH,
    ) -> FrameSource:
        """A video file decoded with OpenCV; output names are ``00000``, ``00001``, ..."""
        return cls(_decode_video(Path(path), max_frames, resize_width), prefetch, str(path))

    @classmethod
    def from_arrays(
        cls,
        images: Iterable[np.ndarray],
        names: Optional[Sequence[str]] = None,
        resize_width: Optional[int] = None,
        prefetch: int = DEFAULT_PREFETCH,
    ) -> FrameSource:
        """RGB uint8 arrays (a list, or a generator pulled only as far as the queue allows)."""
        return cls(_wrap_arrays(images, names, resize_width), prefetch, "arrays")

    # -- background decoding ------------------------------------------------------------------------------
    def _put(self, item: object) -> bool:
        """Queue ``item``, waiting while the queue is full; False when the consumer has stopped."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for frame in self._frames:
                if not self._put(frame):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._put(_Failure(exc))
        finally:
            close = getattr(self._frames, "close", None)
            if close is not None:
                close()  # release a video capture even when stopped early

    def __enter__(self) -> FrameSource:
        if self._thread is not None:
            return self  # already decoding (peek() started it)
        self._thread = threading.Thread(target=self._produce, name="rhmnet-decode", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the decoding thread (also after an error or KeyboardInterrupt in the consumer)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def peek(self) -> VideoFrame:
        """The first frame, decoded now (e.g. to check a scribble's size before loading a model); the
        iteration still starts with it."""
        if self._peeked is None:
            if self._iterating:
                raise RuntimeError("peek() must come before the iteration starts")
            self._peeked = next(self._pull(), None)
            if self._peeked is None:
                raise VideoIOError(f"no frames in {self.description}")
        return self._peeked

    def __iter__(self) -> Iterator[VideoFrame]:
        self._iterating = True
        if self._peeked is not None:
            yield self._peeked
        yield from self._pull()

    def _pull(self) -> Iterator[VideoFrame]:
        if self._thread is None:
            self.__enter__()
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._thread is not None and not self._thread.is_alive() and self._queue.empty():
                    raise VideoIOError(f"frame decoding stopped unexpectedly ({self.description})") from None
                continue
            if item is _END:
                return
            if isinstance(item, _Failure):
                if isinstance(item.exc, VideoIOError):
                    raise VideoIOError(str(item.exc)) from item.exc
                raise VideoIOError(f"reading frames of {self.description} failed: {item.exc!r}") from item.exc
            yield item


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def write_mask(path: Path, labels: np.ndarray, original_hw: Optional[tuple[int, int]] = None) -> None:
    """Palette PNG of ``labels``, resized to ``original_hw`` (nearest neighbour, PIL) when that differs."""
    if original_hw is not None and tuple(labels.shape) != tuple(original_hw):
        resized = Image.fromarray(labels, mode="P").resize((original_hw[1], original_hw[0]), Image.Resampling.NEAREST)
        labels = np.asarray(resized)
    write_palette_png(path, labels)


class PaletteWriter:
    """Writes ``<out_dir>/<frame name>.png`` palette masks in background threads.

    At most ``max_pending`` masks wait to be written (the loop waits beyond that). ``resize=True``
    writes each mask at its frame's original size; frames named in ``skip`` are not written (e.g. a frame
    another pass writes). The first failure is raised (naming the file) by the
    next :meth:`put` or by :meth:`close`; use it as a context manager so that every write has finished
    (or been cancelled on error) when the block ends.
    """

    def __init__(
        self,
        out_dir: str | Path,
        resize: bool = True,
        workers: int = DEFAULT_WRITERS,
        max_pending: int = DEFAULT_PENDING_WRITES,
        skip: Sequence[str] = (),
    ) -> None:
        self.out_dir = Path(out_dir)
        self.resize = resize
        self.skip = frozenset(skip)
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="rhmnet-write")
        self._slots = threading.BoundedSemaphore(max(1, max_pending))
        self._futures: list[Future] = []
        self._error: Optional[BaseException] = None
        self._closed = False

    def _write(self, path: Path, labels: np.ndarray, original_hw: Optional[tuple[int, int]]) -> None:
        try:
            write_mask(path, labels, original_hw)
        except Exception as exc:  # noqa: BLE001 - reported in the caller with the file name
            raise MaskWriteError(f"cannot write mask {path}: {exc}") from exc
        finally:
            self._slots.release()

    def _raise_first_error(self) -> None:
        done = [f for f in self._futures if f.done()]
        self._futures = [f for f in self._futures if not f.done()]
        for future in done:
            if future.exception() is not None and self._error is None:
                self._error = future.exception()
        if self._error is not None:
            raise self._error

    def put(self, frame: VideoFrame, result: FrameResult) -> None:
        """Queue the mask of ``frame`` for writing (unless it is to be skipped)."""
        self._raise_first_error()
        if frame.name in self.skip:
            return
        while not self._slots.acquire(timeout=0.1):
            self._raise_first_error()
        path = self.out_dir / f"{frame.name}.png"
        target = frame.original_hw if self.resize else None
        self._futures.append(self._pool.submit(self._write, path, result.labels, target))

    def close(self, cancel: bool = False) -> None:
        """Wait for (or, with ``cancel``, drop) the pending writes; raise the first failure."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=cancel)
        if not cancel:
            self._raise_first_error()

    def __enter__(self) -> PaletteWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.close(cancel=exc_type is not None)


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
