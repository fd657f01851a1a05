"""The studio's frames: random access to a folder of images or a video file, without keeping decoded
full-resolution frames in memory.

Both are read once at start-up by the video driver's reader (an unreadable frame stops the start-up with
its name). Then a folder's frames are read from disk when needed, and a video file's frames are kept as
JPEG bytes (quality 95: roughly 0.1 MB for a natural 854x480 frame, 0.25 MB for noise), which is what the
page shows and what the propagation decodes again: a 1,000-frame video takes 100-250 MB, not 1.2 GB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from rhmnet.data.io import read_image
from rhmnet.inference.frame_io import FrameSource, VideoIOError, frame_files
from rhmnet.segment import FPS_RANGE

JPEG_QUALITY = 95


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """RGB uint8 image -> JPEG bytes."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise VideoIOError("cannot encode a frame as JPEG")
    return data.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> RGB uint8 image."""
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class FrameStore:
    """Frames ``0..len-1`` of one video: ``names`` (mask file names), ``size`` (h, w), ``fps``, :meth:`image`
    (RGB uint8) and :meth:`jpeg` (for the page). Frames are decoded once at start-up by the video driver's
    reader (:class:`~rhmnet.inference.frame_io.FrameSource`), so an unreadable frame is an error naming it
    before the page opens."""

    def __init__(self, path: str | Path, progress: bool = True) -> None:
        self.path = Path(path)
        self._files: list[Path] = []
        self._jpegs: list[bytes] = []
        self.fps, total = 12.0, 0
        if self.path.is_dir():
            self._files = frame_files(self.path)
            source, total = FrameSource.from_paths(self._files), len(self._files)
        elif self.path.is_file():
            source = FrameSource.from_video(self.path)
            fps, total = video_header(self.path)
            self.fps = fps if FPS_RANGE.contains(fps) else self.fps  # a broken header (0, inf) keeps 12
        else:
            raise VideoIOError(f"frames not found: {self.path}")
        self.names: list[str] = []
        self.size: tuple[int, int] = (0, 0)
        with source:
            for frame in source:
                if not self.names:
                    self.size = frame.image.shape[:2]
                self.names.append(frame.name)
                if not self._files:
                    self._jpegs.append(encode_jpeg(frame.image))
                _progress(progress, "reading", len(self.names), total)

    def __len__(self) -> int:
        return len(self.names)

    def image(self, index: int) -> np.ndarray:
        """Frame ``index`` as RGB uint8 ``[H, W, 3]``."""
        if self._files:
            return read_image(self._files[index])
        return decode_jpeg(self._jpegs[index])

    def jpeg(self, index: int) -> bytes:
        """Frame ``index`` as JPEG bytes."""
        if self._files:
            return encode_jpeg(self.image(index))
        return self._jpegs[index]

    @property
    def folder(self) -> Path:
        """The folder the frames come from (a video file's folder)."""
        return self.path if self.path.is_dir() else self.path.parent


def video_header(path: Path) -> tuple[float, int]:
    """The frame rate and frame count a video file's header declares (0 where unknown)."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            return 0.0, 0
        fps, count = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        capture.release()
    return (float(fps) if fps and fps > 0 else 0.0), max(int(count or 0), 0)


def _progress(enabled: bool, what: str, done: int, total: int) -> None:
    if enabled and (done % 50 == 0 or done == total):
        print(f"\r{what}: {done}/{total or '?'} frames", end="\n" if done == total else "", file=sys.stderr,
              flush=True)
