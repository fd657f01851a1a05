"""Time per frame and peak memory of the video driver along one long synthetic video.

    python scripts/benchmark_video_length.py [--frames 1000] [--size 96 128] [--report 100 500 1000]

Frames are generated on the fly (never held together), segmented with ``rhmnet.inference.driver`` (decoded
ahead in a thread, palette PNGs written by a thread pool into a temporary folder) and reported at the
given frame counts: mean ms per frame over the frames since the previous report (model step alone, and
end to end including generation and writing) and the process's peak and current RSS. Flat columns mean
time and memory do not grow with the video's length. By default a small randomly initialised model
(ResNet-18 backbone, hidden size 64) on small frames keeps the run short: flatness, not speed, is the
point; ``--paper`` uses the ``video_training`` architecture instead.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

import rhmnet
from rhmnet.cli_args import ArgumentParser
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.driver import segment_video
from rhmnet.inference.frame_io import FrameSource, VideoFrame
from rhmnet.inference.mask_io import PaletteWriter
from rhmnet.inference.timing import read_status_kib

SMALL_MODEL = [
    "MODEL.BACKBONE.NAME=resnet18",
    "MODEL.HIDDEN_DIM=64",
    "MODEL.TRANSFORMER.NHEAD=4",
    "MODEL.TRANSFORMER.DIM_FEEDFORWARD=128",
]


def moving_frames(count: int, height: int, width: int, seed: int = 0) -> Iterator[np.ndarray]:
    """A square drifting over a fixed noise background, one frame at a time."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    side = max(8, min(height, width) // 3)
    for t in range(count):
        frame = background.copy()
        y = (t * 2) % (height - side)
        x = (t * 3) % (width - side)
        frame[y : y + side, x : x + side] = (220, 60, 40)
        yield frame


def first_scribble(height: int, width: int) -> np.ndarray:
    """Object 1 inside the square's first position, background along the bottom."""
    side = max(8, min(height, width) // 3)
    scribble = np.zeros((height, width), np.uint8)
    scribble[side // 3 : 2 * side // 3, 2 : side - 2] = 1
    scribble[height - 4 : height - 2, 2 : width - 2] = 11
    return scribble


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--size", type=int, nargs=2, default=[96, 128], metavar=("H", "W"))
    parser.add_argument("--report", type=int, nargs="+", default=[100, 500, 1000], help="frame counts to report at")
    parser.add_argument("--paper", action="store_true", help="video_training architecture instead of the small one")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = args.size
    device = torch.device(args.device)
    torch.manual_seed(0)
    overrides = ["MODEL.BACKBONE.PRETRAINED=false"] + ([] if args.paper else SMALL_MODEL)
    model = rhmnet.build_model(rhmnet.load_config("video_training", overrides), device).eval()
    segmenter = VideoSegmenter(model, model.cfg.TEST)
    reports = sorted(n for n in args.report if n <= args.frames)
    rows: list[tuple[int, float, float, float, float]] = []
    step_seconds = 0.0
    window = {"start": time.perf_counter(), "frames": 0, "step": 0.0}

    def step_timed(frame: np.ndarray, frame_num: int):
        nonlocal step_seconds
        start = time.perf_counter()
        result = real_step(frame, frame_num=frame_num)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        step_seconds += time.perf_counter() - start
        return result

    real_step = segmenter.step
    segmenter.step = step_timed  # type: ignore[method-assign]

    def at_frame(frame: VideoFrame, _result: object) -> None:
        done = frame.index + 1
        if done not in reports:
            return
        now = time.perf_counter()
        count = done - window["frames"]
        total_ms = 1000 * (now - window["start"]) / count
        step_ms = 1000 * (step_seconds - window["step"]) / count
        peak = (read_status_kib("VmHWM") or float("nan")) / 1024
        current = (read_status_kib("VmRSS") or float("nan")) / 1024
        rows.append((done, step_ms, total_ms, peak, current))
        window.update(start=now, frames=done, step=step_seconds)

    with tempfile.TemporaryDirectory() as out:
        source = FrameSource.from_arrays(moving_frames(args.frames, height, width))
        run = segment_video(segmenter, source, first_scribble(height, width), sink=PaletteWriter(out),
                            on_frame=at_frame)
        written = len(list(Path(out).glob("*.png")))
    model_name = "video_training" if args.paper else "small (ResNet-18, hidden 64)"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{args.frames}-frame synthetic video, {width}x{height}, model {model_name}, {where}; {written} PNGs written")
    print(f"{'frames':>7}  {'step ms/frame':>13}  {'end-to-end ms/frame':>19}  {'peak RSS MiB':>12}  {'RSS MiB':>8}")
    for done, step_ms, total_ms, peak, current in rows:
        print(f"{done:>7}  {step_ms:13.2f}  {total_ms:19.2f}  {peak:12.1f}  {current:8.1f}")
    print("(ms per frame averaged over the frames since the previous row)")
    print(f"overall: {run.frames} frames, {run.fps:.1f} FPS end to end, {run.frames / step_seconds:.1f} FPS model step")


if __name__ == "__main__":
    main()
