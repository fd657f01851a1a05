"""Frames in: folders of images, video files and arrays decoded ahead of the model.

:class:`FrameSource` decodes the frames of one video in a background thread into a bounded queue (memory
stays flat in video length); a frame that cannot be read is raised in the consumer as a
:class:`VideoIOError` naming the file. Frames at least ``resize_width`` wide are resized to that width
(:func:`target_size`) and keep their stored size for writing the masks back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from rhmnet.data.io import IMAGE_SUFFIXES, list_files, read_frame_like, read_image
from rhmnet.inference.session import InferenceError

DEFAULT_PREFETCH = 4  # decoded frames waiting in the queue (plus one being decoded)


class VideoIOError(InferenceError):
    """A frame could not be read or a mask could not be written (the message names the file)."""


@dataclass
class VideoFrame:
    """One decoded frame: its position in the source, a name for its output file, the RGB image the
    network sees and the size (h, w) of the frame as stored (masks are written at that size)."""

    index: int
    name: str
    image: np.ndarray
    original_hw: tuple[int, int]


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
    the queue. Iterate it once (as a context manager, or let :func:`~rhmnet.inference.driver.segment_video` do it).
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
