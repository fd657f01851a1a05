"""Speed and memory meters of the video driver: FPS of the model step alone and peak memory, per video and
overall.

Only the time spent inside the model step is counted (no file reading or writing). On CUDA the clock stops
after a device synchronisation and the peak is ``torch.cuda.max_memory_allocated`` (reset per video).
On CPU the peak is the process's peak resident set size: reset per video through
``/proc/self/clear_refs`` where the kernel allows it, otherwise the lifetime peak is reported (and
marked as such).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch

if TYPE_CHECKING:
    from rhmnet.inference.driver import VideoRun

T = TypeVar("T")
_MB = 1024.0 * 1024.0


@dataclass
class VideoSpeed:
    """Timing of one video: frames stepped, seconds inside the model step, peak memory (MiB)."""

    name: str
    frames: int = 0
    seconds: float = 0.0
    peak_memory_mb: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def read_status_kib(key: str) -> float | None:
    """A ``kB`` field of /proc/self/status (e.g. VmHWM, VmRSS), or None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter of this process (Linux); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class SpeedMeter:
    """Collects :class:`VideoSpeed` records; use :meth:`video` around a video and :meth:`step` per frame."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    videos: list[VideoSpeed] = field(default_factory=list)
    peak_is_lifetime: bool = False

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)

    @property
    def _cuda(self) -> bool:
        return self.device.type == "cuda" and torch.cuda.is_available()

    @contextmanager
    def video(self, name: str) -> Iterator[VideoSpeed]:
        """Measure one video; the yielded record fills in as frames are stepped."""
        record = VideoSpeed(name)
        if self._cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        elif not _reset_peak_rss():
            self.peak_is_lifetime = True
        try:
            yield record
        finally:
            record.peak_memory_mb = self._peak_mb()
            self.videos.append(record)

    def step(self, record: VideoSpeed, fn: Callable[[], T]) -> T:
        """Run ``fn`` (one model step) and add its duration to ``record``."""
        if self._cuda:
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        out = fn()
        if self._cuda:
            torch.cuda.synchronize(self.device)
        record.seconds += time.perf_counter() - start
        record.frames += 1
        return out

    def _peak_mb(self) -> float:
        if self._cuda:
            return torch.cuda.max_memory_allocated(self.device) / _MB
        hwm = read_status_kib("VmHWM")
        if hwm is not None:
            return hwm / 1024.0
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    @property
    def total(self) -> VideoSpeed:
        """All videos together: frames / seconds summed, peak = the largest video peak."""
        return VideoSpeed(
            "overall",
            frames=sum(v.frames for v in self.videos),
            seconds=sum(v.seconds for v in self.videos),
            peak_memory_mb=max((v.peak_memory_mb for v in self.videos), default=0.0),
        )

    def memory_label(self) -> str:
        """What the peak memory column measures."""
        if self._cuda:
            return "peak CUDA memory allocated (MiB)"
        return "peak process RSS (MiB" + (", process lifetime)" if self.peak_is_lifetime else ")")

    def format(self, title: str = "speed (model step only)") -> str:
        """A plain-text table: one row per video and an overall row."""
        lines = [
            f"{title}; memory = {self.memory_label()}",
            f"{'video':<28}{'frames':>8}{'seconds':>10}{'FPS':>9}{'peak MiB':>11}",
        ]
        for rec in [*self.videos, self.total]:
            lines.append(
                f"{rec.name:<28}{rec.frames:>8d}{rec.seconds:>10.2f}{rec.fps:>9.2f}{rec.peak_memory_mb:>11.1f}"
            )
        return "\n".join(lines)

    def rows(self) -> list[dict[str, object]]:
        """Records as dicts (for CSV writing), the overall row last."""
        return [
            {
                "video": r.name,
                "frames": r.frames,
                "seconds": round(r.seconds, 4),
                "fps": round(r.fps, 3),
                "peak_memory_mb": round(r.peak_memory_mb, 1),
            }
            for r in [*self.videos, self.total]
        ]


def end_to_end_line(runs: Sequence[VideoRun], meter: SpeedMeter) -> str:
    """One line comparing frames per second including decoding and PNG writing with the model step's."""
    frames = sum(r.frames for r in runs)
    seconds = sum(r.seconds for r in runs)
    if frames == 0 or seconds <= 0:
        return "end to end: no frames"
    fps, step_fps = frames / seconds, meter.total.fps
    return (
        f"end to end (decoding and PNG writing included): {frames} frames in {seconds:.2f} s, {fps:.2f} FPS "
        f"= {100 * fps / step_fps:.1f}% of the model step's {step_fps:.2f} FPS"
    )
