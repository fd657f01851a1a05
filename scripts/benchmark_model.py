"""Speed and memory of streaming inference at 854x480 with 1, 2 and 3 objects, one table per device.

    python scripts/benchmark_model.py [--frames 25] [--objects 1 2 3] [--devices cpu cuda]
        [--config NAME] [--checkpoint CKPT] [--threads N] [--precision fp32|bf16|fp16] [--compile] [KEY=VALUE ...]

Each table gives ms per frame (model step only: no file I/O; median over the timed frames and over the
"full memory" frames 18 on, when the memory lists of the default settings are full), frames per second
and peak memory, and names the machine it was measured on (CPU model, usable cores, threads, torch
version, load average; the GPU's name on CUDA). These are absolute times of this machine: to compare two
versions of the code, run them side by side with ``scripts/benchmark_paired.py``.

With no checkpoint a randomly initialised model of ``--config`` is used (speed does not depend on the
weights); trailing ``KEY=VALUE`` overrides apply to the config (e.g. another backbone). Frame 0
(initialisation and first step) is not timed.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

import rhmnet
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.session import PRECISIONS

FULL_MEMORY_FRAME = 18


def synthetic_video(frames: int, objects: int, height: int = 480, width: int = 854, seed: int = 0):
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


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated CUDA memory, or the process's peak resident memory on CPU (MB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def benchmark(segmenter: VideoSegmenter, objects: int, frames: int) -> dict[str, float]:
    """Time ``step`` on a synthetic video (labels read each frame, as an evaluator does)."""
    device = segmenter.device
    video, scribble = synthetic_video(frames, objects)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    segmenter.initialize(video[0], scribble)
    _ = segmenter.step(video[0]).labels
    times = []
    for frame in video[1:]:
        synchronize(device)
        start = time.perf_counter()
        _ = segmenter.step(frame).labels
        synchronize(device)
        times.append(1000 * (time.perf_counter() - start))
    full = times[FULL_MEMORY_FRAME - 1 :]
    ms = float(np.median(times))
    return {
        "objects": objects,
        "ms": ms,
        "fps": 1000 / ms,
        "full_ms": float(np.median(full)) if full else float("nan"),
        "peak_mb": peak_memory_mb(device),
    }


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


def print_table(rows: list[dict[str, float]], title: str, measured_on: str) -> None:
    """One table for one device, with the machine it was measured on."""
    print(title)
    print(f"measured on: {measured_on}")
    print(f"{'objects':>7}  {'ms/frame':>9}  {'FPS':>6}  {'ms/frame, full memory':>21}  {'peak MB':>8}")
    for r in rows:
        print(f"{r['objects']:>7}  {r['ms']:9.1f}  {r['fps']:6.2f}  {r['full_ms']:21.1f}  {r['peak_mb']:8.0f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=25, help="frames per video (frame 0 not timed)")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--devices", "--device", nargs="+", default=None,
                        help="devices to benchmark, one table each (default: cpu, and cuda when available)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--config", default="video_training", help="config name or path (e.g. lite)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--precision", choices=sorted(PRECISIONS), default="fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile the frame encoder")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    for name in devices:
        device = torch.device(name)
        if args.checkpoint:
            model = rhmnet.load_model(args.checkpoint, args.config, device=device, overrides=args.overrides)
        else:
            torch.manual_seed(0)
            cfg = rhmnet.load_config(args.config, ["MODEL.BACKBONE.PRETRAINED=false", *args.overrides])
            model = rhmnet.build_model(cfg, device)
        segmenter_args = {"precision": args.precision, "compile": args.compile}
        rows = [
            benchmark(VideoSegmenter(model, model.cfg.TEST, **segmenter_args), n, args.frames)
            for n in args.objects
        ]
        threads = f"CPU, {torch.get_num_threads()} threads"
        what = torch.cuda.get_device_name(device) if device.type == "cuda" else threads
        config = model.cfg.NAME + (f" with {' '.join(args.overrides)}" if args.overrides else "")
        measured_on = f"{what}; {machine()}" if device.type == "cuda" else f"{machine()}, {threads}"
        print_table(rows, f"RHMNet streaming inference ({config}, {args.precision}"
                    f"{', compiled' if args.compile else ''}), 854x480, {args.frames - 1} timed frames, {what}",
                    measured_on)


if __name__ == "__main__":
    main()
