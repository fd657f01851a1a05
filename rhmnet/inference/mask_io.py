"""Masks out: palette PNGs written in background threads, optionally at each frame's stored size.

:class:`PaletteWriter` keeps a bounded number of writes pending; the first failure (read-only folder,
full disk) is raised in the caller as a :class:`MaskWriteError` naming the file.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from rhmnet.data.io import write_palette_png
from rhmnet.inference.frame_io import VideoFrame, VideoIOError
from rhmnet.inference.session import FrameResult

DEFAULT_WRITERS = 2  # PNG-writing threads
DEFAULT_PENDING_WRITES = 8  # masks queued for writing before the loop waits


class MaskWriteError(VideoIOError):
    """A mask could not be written (read-only folder, full disk): the run failed (exit status 1)."""

    exit_code = 1


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
