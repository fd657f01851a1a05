"""The studio's frames: random access to a folder of images or a video file, without keeping decoded
full-resolution frames in memory.

A folder's frames are read from disk when needed (each one checked once, at start-up). A video file is
decoded once at start-up and each frame kept as JPEG bytes (quality 95; about 0.1 MB for 854x480), which is
what the page shows and what the model decodes again: 1,000 frames take about 100 MB instead of 1.2 GB.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from rhmnet.data.io import read_frame_like, read_image
from rhmnet.inference.driver import VideoIOError, frame_files

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
    """Frames ``0..len-1`` of one video: ``names`` (mask file names), ``size`` (h, w), :meth:`image` (RGB
    uint8) and :meth:`jpeg` (for the page)."""

    def __init__(self, path: str | Path, progress: bool = True) -> None:
        self.path = Path(path)
        self._files: list[Path] = []
        self._jpegs: list[bytes] = []
        if self.path.is_dir():
            self._files = frame_files(self.path)
            self.names = [p.stem for p in self._files]
            first = read_image(self._files[0])
            for index, file in enumerate(self._files[1:], start=1):  # an unreadable frame is an error now
                read_frame_like(file, first.shape)
                _progress(progress, "checking frames", index + 1, len(self._files))
            self.fps = 12.0
        elif self.path.is_file():
            first = self._decode_video(progress)
            self.names = [f"{i:05d}" for i in range(len(self._jpegs))]
        else:
            raise VideoIOError(f"frames not found: {self.path}")
        self.size: tuple[int, int] = first.shape[:2]

    def _decode_video(self, progress: bool) -> np.ndarray:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise VideoIOError(f"{self.path}: not a video OpenCV can open, nor a folder of frames")
        try:
            fps = capture.get(cv2.CAP_PROP_FPS)
            self.fps = float(fps) if fps and fps > 0 else 12.0
            total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
            first = None
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                if first is None:
                    first = image
                elif image.shape != first.shape:
                    raise VideoIOError(f"{self.path}: frame {len(self._jpegs)} has another size than the first")
                self._jpegs.append(encode_jpeg(image))
                _progress(progress, "decoding", len(self._jpegs), total)
        finally:
            capture.release()
        if first is None:
            raise VideoIOError(f"{self.path}: no frame could be decoded (not a video?)")
        return first

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


def _progress(enabled: bool, what: str, done: int, total: int) -> None:
    if enabled and (done % 50 == 0 or done == total):
        print(f"\r{what}: {done}/{total or '?'} frames", end="\n" if done == total else "", file=sys.stderr,
              flush=True)
