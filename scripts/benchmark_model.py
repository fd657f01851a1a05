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
import resource
import time

import numpy as np
import torch

import rhmnet
from rhmnet.cli_args import ArgumentParser
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.session import PRECISIONS
from rhmnet.tools.benchmarking import machine, synthetic_video

FULL_MEMORY_FRAME = 18


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


def print_table(rows: list[dict[str, float]], title: str, measured_on: str) -> None:
    """One table for one device, with the machine it was measured on."""
    print(title)
    print(f"measured on: {measured_on}")
    print(f"{'objects':>7}  {'ms/frame':>9}  {'FPS':>6}  {'ms/frame, full memory':>21}  {'peak MB':>8}")
    for r in rows:
        print(f"{r['objects']:>7}  {r['ms']:9.1f}  {r['fps']:6.2f}  {r['full_ms']:21.1f}  {r['peak_mb']:8.0f}")
    print()


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
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
