"""Speed and memory of streaming inference at 854x480 with 1, 2 and 3 objects.

    python scripts/benchmark_model.py [--frames 25] [--objects 1 2 3] [--device cpu|cuda] [--checkpoint CKPT]

Prints a table: ms per frame (model step only: no file I/O), frames per second and peak memory on the
current device. With no checkpoint a randomly initialised `video_training` model is used (speed does
not depend on the weights). Frame 0 (initialisation and first step) is excluded from the mean; the
"full memory" column averages the frames from 18 on, when the memory lists of the default settings
(every 6th frame, at most 4 entries) are full.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

import rhmnet
from rhmnet.inference import InferenceSettings, VideoSegmenter

FULL_MEMORY_FRAME = 18


def synthetic_video(frames: int, objects: int, height: int = 480, width: int = 854, seed: int = 0):
    """Smooth random frames and a scribble with one stroke per object plus a background stroke."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(frames, -(-height // 8), -(-width // 8), 3), dtype=np.uint8)
    video = base.repeat(8, axis=1).repeat(8, axis=2)[:, :height, :width]
    scribble = np.zeros((height, width), np.uint8)
    for o in range(objects):
        y = 60 + 120 * o
        scribble[y : y + 6, 100 + 50 * o : 400 + 50 * o] = o + 1
    scribble[height - 20 : height - 14, 50 : width - 50] = 11
    return video, scribble


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def benchmark(model: rhmnet.model.RHMNet, objects: int, frames: int, device: torch.device) -> dict[str, float]:
    video, scribble = synthetic_video(frames, objects)
    segmenter = VideoSegmenter(model, InferenceSettings.from_config(model.cfg))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    segmenter.initialize(video[0], scribble)
    segmenter.step(video[0])
    times = []
    for frame in video[1:]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        segmenter.step(frame)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    ms = 1000 * float(np.mean(times))
    full = times[FULL_MEMORY_FRAME - 1 :]
    full_ms = 1000 * float(np.mean(full)) if full else float("nan")
    return {"objects": objects, "ms": ms, "fps": 1000 / ms, "full_ms": full_ms, "peak_mb": peak_memory_mb(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=25, help="frames per video (frame 0 not timed)")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--config", default="video_training")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.checkpoint:
        model = rhmnet.load_model(args.checkpoint, args.config, device=device)
    else:
        torch.manual_seed(0)
        cfg = rhmnet.load_config(args.config, ["MODEL.BACKBONE.PRETRAINED=false"])
        model = rhmnet.build_model(cfg, device).eval()
    rows = [benchmark(model, n, args.frames, device) for n in args.objects]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"RHMNet streaming inference, 854x480, {args.frames - 1} timed frames, device: {name}")
    print(f"{'objects':>7}  {'ms/frame':>9}  {'FPS':>6}  {'ms/frame, full memory':>21}  {'peak MB':>8}")
    for r in rows:
        print(f"{r['objects']:>7}  {r['ms']:9.1f}  {r['fps']:6.2f}  {r['full_ms']:21.1f}  {r['peak_mb']:8.0f}")


if __name__ == "__main__":
    main()
