"""Speed and memory of the scribble studio on a synthetic video, through its real HTTP server.

    python scripts/benchmark_studio.py [--frames 1000] [--size 480 854] [--checkpoint CK | --config lite]
                                       [--threads 2] [--annotated 0 ...]

Writes a video file (a square drifting over noise, MJPG in a temporary folder), starts the studio's server
(uvicorn on a free localhost port, in this process) on it, draws a scribble on each ``--annotated`` frame
through the API, presses Propagate and measures, while the propagation runs, what the page would see:

- start-up: decoding the video into the frame store (JPEG bytes, no decoded frame kept) and its size;
- the time from Propagate to the first annotated frame's mask (the issue's target: within 1 s);
- the propagation's frames per second, end to end (decoding, model, mask encoding; target: 10 or more);
- the latency of the page's requests meanwhile (``/api/status`` and ``/api/frame/i`` every 100 ms; the
  page must never freeze);
- the process's peak resident memory and the bytes the frames and masks take in memory.

Without ``--checkpoint`` a randomly initialised ``--config`` model (default ``lite``, the demo's RHMNet-Lite
architecture) is used: it costs the same time as a trained one.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from rhmnet.cli_args import ArgumentParser
from rhmnet.config import load_config
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.timing import read_status_kib
from rhmnet.model_io import build_model, load_model


def write_video(path: Path, frames: int, height: int, width: int, fps: float = 25.0) -> None:
    """A square drifting over a fixed noise background (MJPG AVI)."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 80, (height, width, 3), dtype=np.uint8)
    side = min(height, width) // 3
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise SystemExit("OpenCV cannot write MJPG video here")
    for t in range(frames):
        frame = background.copy()
        y, x = (t * 2) % (height - side), (t * 3) % (width - side)
        frame[y : y + side, x : x + side] = (40, 60, 220)
        writer.write(frame)
    writer.release()


def square_strokes(frame: int, height: int, width: int) -> list[dict]:
    """An object stroke inside the square of ``frame`` and a background stroke along the bottom."""
    side = min(height, width) // 3
    y, x = (frame * 2) % (height - side), (frame * 3) % (width - side)
    middle = y + side // 2
    return [
        {"frame": frame, "label": 1, "size": 8, "points": [[x + 10, middle], [x + side - 10, middle]]},
        {"frame": frame, "label": 11, "size": 8, "points": [[5, height - 6], [width - 6, height - 6]]},
    ]


class Poller(threading.Thread):
    """Requests what the page requests, every 100 ms, and keeps their latencies."""

    def __init__(self, client, frames: int) -> None:
        super().__init__(daemon=True)
        self.client, self.frames = client, frames
        self.latencies: dict[str, list[float]] = {"status": [], "frame": []}
        self.stop = threading.Event()

    def run(self) -> None:
        index = 0
        while not self.stop.is_set():
            for kind, path in (("status", "/api/status"), ("frame", f"/api/frame/{index % self.frames}")):
                start = time.perf_counter()
                self.client.get(path).raise_for_status()
                self.latencies[kind].append(time.perf_counter() - start)
            index += 7
            time.sleep(0.1)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, nargs=2, default=[480, 854], metavar=("H", "W"))
    parser.add_argument("--checkpoint", default=None, help="a checkpoint (default: a random --config model)")
    parser.add_argument("--config", default="lite")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--annotated", type=int, nargs="+", default=[0], help="frames with strokes")
    parser.add_argument("--note", default="", help="conditions to print with the table (e.g. 'under load')")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import httpx

    from rhmnet.studio.frames import FrameStore
    from rhmnet.studio.project import Project
    from rhmnet.studio.server import bind, build_app, run_server

    torch.set_num_threads(args.threads)
    height, width = args.size
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "video.avi"
        write_video(video, args.frames, height, width)
        rss_before = read_status_kib("VmRSS") / 1024
        start = time.perf_counter()
        store = FrameStore(video, progress=False)
        decode = time.perf_counter() - start
        jpeg_mib = sum(len(j) for j in store._jpegs) / 2**20
        if args.checkpoint:
            model, source = load_model(args.checkpoint), args.checkpoint
        else:
            torch.manual_seed(0)
            model, source = build_model(load_config(args.config)).eval(), f"random-init --config {args.config}"
        out = Path(tmp) / "out"
        out.mkdir()
        project = Project(store, VideoSegmenter(model, model.cfg.TEST), out)
        token = "benchmark"
        sock = bind("127.0.0.1", 0)
        server = threading.Thread(target=run_server, args=(build_app(project, token), sock), daemon=True)
        server.start()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        client = httpx.Client(base_url=base, headers={"X-Studio-Token": token}, timeout=60)
        for _ in range(100):
            try:
                client.get("/api/status").raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.05)
        for frame in args.annotated:
            for stroke in square_strokes(frame, height, width):
                client.post("/api/strokes", json=stroke).raise_for_status()
        newest = args.annotated[-1]
        poller = Poller(client, args.frames)
        poller.start()
        start = time.perf_counter()
        client.post("/api/propagate").raise_for_status()
        first_mask = None
        while True:
            status = client.get("/api/status").json()
            if first_mask is None and status["revisions"][newest] > 0:
                first_mask = time.perf_counter() - start
            if status["state"] in ("done", "error"):
                break
            time.sleep(0.01)
        total = time.perf_counter() - start
        poller.stop.set()
        poller.join()
        if status["state"] == "error":
            raise SystemExit(f"propagation failed: {status['message']}")
        mask_kib = sum(len(m) for m in project.masks) / 1024
        latencies = {k: [v * 1000 for v in values] for k, values in poller.latencies.items()}
        rows += [
            ("model", source),
            ("video", f"{args.frames} frames {width}x{height}, strokes on frame(s) {args.annotated}"),
            ("torch threads", str(args.threads)),
            ("start-up: decode into the frame store", f"{decode:.1f} s ({args.frames / decode:.0f} frames/s)"),
            ("frames kept in memory (JPEG bytes)", f"{jpeg_mib:.1f} MiB ({jpeg_mib * 1024 / args.frames:.0f} KiB a "
             f"frame; decoded they would take {args.frames * height * width * 3 / 2**20:.0f} MiB)"),
            ("Propagate -> annotated frame's mask (target <= 1 s)", f"{first_mask:.2f} s"),
            ("propagation, end to end (target >= 10 fps)", f"{args.frames / total:.1f} frames/s ({total:.1f} s)"),
            ("/api/status during propagation, median / max", f"{statistics.median(latencies['status']):.0f} / "
             f"{max(latencies['status']):.0f} ms ({len(latencies['status'])} requests)"),
            ("/api/frame/i during propagation, median / max", f"{statistics.median(latencies['frame']):.0f} / "
             f"{max(latencies['frame']):.0f} ms"),
            ("masks kept in memory (PNG bytes)", f"{mask_kib / 1024:.1f} MiB"),
            ("resident memory: before the video / peak", f"{rss_before:.0f} / {peak_rss_mib():.0f} MiB"),
        ]
        client.close()
        project.close()
    print(f"\nScribble studio benchmark{' (' + args.note + ')' if args.note else ''}\n")
    width_key = max(len(k) for k, _ in rows)
    print(f"| {'measure':<{width_key}} | value |\n|{'-' * (width_key + 2)}|-------|")
    for key, value in rows:
        print(f"| {key:<{width_key}} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
