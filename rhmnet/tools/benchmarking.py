"""What the speed scripts (``scripts/benchmark_model.py``, ``scripts/benchmark_paired.py``,
``scripts/profile_frame.py``) share: the synthetic video and scribble they time, and the line naming the
machine a time was measured on."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import torch


def synthetic_video(
    frames: int, objects: int, height: int = 480, width: int = 854, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random frames and a scribble with one stroke per object plus a background stroke."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(frames, -(-height // 8), -(-width // 8), 3), dtype=np.uint8)
    video = base.repeat(8, axis=1).repeat(8, axis=2)[:, :height, :width]
    return video, synthetic_scribble(objects, height, width)


def synthetic_scribble(objects: int, height: int, width: int, first: int = 1) -> np.ndarray:
    """One horizontal stroke per object (ids ``first..objects``) and a background stroke at the bottom."""
    scribble = np.zeros((height, width), np.uint8)
    for o in range(first - 1, objects):
        y = 60 + 120 * o
        scribble[y : y + 6, 100 + 50 * o : 400 + 50 * o] = o + 1
    scribble[height - 20 : height - 14, 50 : width - 50] = 11
    return scribble


def machine() -> str:
    """CPU model, usable cores, torch version and load average: what absolute CPU times depend on."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = "/".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"{model}, {cores} usable cores, torch {torch.__version__}, load average {load}"
