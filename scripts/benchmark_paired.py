"""Old against new code, side by side: two worker processes step alternately through the same frames.

    python scripts/benchmark_paired.py --baseline REF [--frames 25] [--objects 1 2 3] [--threads 2]
        [--checkpoint CKPT] [--video DIR --mask PNG | --synthetic [--size WxH]] [--compete] [--check]
        [KEY=VALUE ...]

The baseline commit ``REF`` is exported (``git archive``) into a temporary folder; the new code is this
working tree. Each worker imports its own copy of ``rhmnet``, builds the same model (``--checkpoint``, or
a randomly initialised ``video_training`` model from seed 0) and segments the same frames with the same
scribble: by default the first ``--frames`` frames of DAVIS blackswan from ``../shared`` (its first-frame
mask gives the object's stroke; further objects get synthetic strokes), else (or with ``--synthetic``)
the synthetic video of ``scripts/benchmark_model.py``; the frames are made here and handed to both workers
(``scripts/_benchmark_paired_worker.py``, which imports only what every version of ``rhmnet`` has). Frame 0
(initialisation) is not timed; each later frame is stepped by both workers in turn (the order alternates
from frame to frame), the label map read as an evaluator does. Both run with the same ``--threads``.

The table gives per object count and thread count: median ms per frame of each, the median over the
"full memory" frames (18 on), the speed-up (old median / new median), and the slowest frame and the 95th
percentile against the median. The machine (CPU model, cores, torch version, load average) is printed:
absolute times mean something only on that machine, and only the ratio when other work shares it.

``--compete`` runs a busy process (``while True: pass``) pinned to one core during the measurement (steady
under load: compare ``--threads 1 2``). ``--check`` also compares the outputs frame by frame: the maximum
absolute difference of the probabilities and the number of label-map pixels that differ.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from rhmnet.cli_args import ArgumentParser
from rhmnet.tools.benchmarking import machine, synthetic_scribble, synthetic_video

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).resolve().with_name("_benchmark_paired_worker.py")
SHARED_BLACKSWAN = ROOT.parent / "shared" / "data" / "davis-sample"
FULL_MEMORY_FRAME = 18


# -- the frames (same in both workers) -------------------------------------------------------------------
def davis_video(video_dir: Path, mask_path: Path, frames: int, objects: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``frames`` JPEGs of a DAVIS sequence and a scribble: object 1 is a stroke through the
    eroded first-frame mask, objects 2.. synthetic strokes, background a stroke away from the mask."""
    import cv2

    paths = sorted(video_dir.glob("*.jpg"))[:frames]
    if not paths:
        raise SystemExit(f"{video_dir}: no .jpg frames")
    video = np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths])
    mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
    if mask is None or mask.shape != video.shape[1:3]:
        raise SystemExit(f"{mask_path}: not a readable mask of the frames' size {video.shape[1:3]}")
    inner = cv2.erode((mask > 0).astype(np.uint8), np.ones((15, 15), np.uint8))
    ys, _ = np.nonzero(inner)
    if len(ys) == 0:
        raise SystemExit(f"{mask_path}: the object is too small for a stroke")
    height, width = mask.shape
    scribble = synthetic_scribble(objects, height, width, first=2)
    away = cv2.dilate((mask > 0).astype(np.uint8), np.ones((41, 41), np.uint8)) > 0
    scribble[(scribble == 11) & away] = 0
    row = int(np.median(ys))
    band = np.zeros_like(inner)
    band[row - 3 : row + 3] = 1
    scribble[(inner & band) > 0] = 1
    return video, scribble


def load_frames(args: argparse.Namespace, objects: int, video_dir: Optional[Path],
                mask: Optional[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The frames and scribble both workers segment: the DAVIS sequence's, else synthetic ones."""
    if video_dir:
        return davis_video(video_dir, mask, args.frames, objects)
    return synthetic_video(args.frames, objects, *args.size)


# -- the parent ----------------------------------------------------------------------------------------------
class Worker:
    """A worker process running the code in ``code_dir``."""

    def __init__(self, name: str, code_dir: Path, checkpoint: Optional[str], overrides: list[str]) -> None:
        self.name = name
        env = {**os.environ, "PYTHONPATH": str(code_dir)}
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=env, text=True, cwd=str(code_dir))
        checkpoint = str(Path(checkpoint).resolve()) if checkpoint else None
        self.info = self.ask({"cmd": "model", "checkpoint": checkpoint, "overrides": overrides})

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} worker stopped (exit code {self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)


def export_ref(ref: str, dest: Path) -> str:
    """Write the tree of commit ``ref`` into ``dest``; returns the full commit id."""
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", ref + "^{commit}"],
                                check=True, capture_output=True, text=True).stdout.strip()
    except subprocess.CalledProcessError:
        raise SystemExit(f"--baseline {ref}: not a commit of {ROOT}") from None
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", commit], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} failed")
    return commit


def start_competitor() -> subprocess.Popen:
    """A CPU-bound process pinned to the last usable core."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(proc.pid, {max(os.sched_getaffinity(0))})
    return proc


def summary(times: list[float]) -> dict[str, float]:
    median = statistics.median(times)
    full = times[FULL_MEMORY_FRAME - 1 :]
    return {
        "median": median,
        "full": statistics.median(full) if full else float("nan"),
        "p95": float(np.percentile(times, 95)),
        "max": max(times),
        "cpu": 0.0,
    }


def run(args: argparse.Namespace) -> None:
    video_dir = mask = None
    if not args.synthetic:
        video_dir = args.video or (SHARED_BLACKSWAN / "JPEGImages" / "480p" / "blackswan")
        mask = args.mask or (SHARED_BLACKSWAN / "Annotations" / "480p" / "blackswan" / "00000.png")
        if not Path(video_dir).is_dir():
            if args.video:
                raise SystemExit(f"--video {video_dir}: not a folder")
            print(f"{video_dir} not found: synthetic frames")
            video_dir = mask = None
    with tempfile.TemporaryDirectory(prefix="rhmnet-baseline-") as tmp:
        base_dir = Path(tmp) / "baseline"
        base_dir.mkdir()
        commit = export_ref(args.baseline, base_dir)
        head = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                              capture_output=True, text=True).stdout.strip()
        codes = {"old": base_dir, "new": ROOT}
        workers = [Worker(name, code, args.checkpoint, args.overrides) for name, code in codes.items()]
        competitor = start_competitor() if args.compete else None
        try:
            if workers[0].info["weights"] != workers[1].info["weights"]:
                print(f"warning: the two models' weights differ ({workers[0].info['weights']} vs "
                      f"{workers[1].info['weights']})")
            print(f"machine: {machine()}")
            print(f"old: {commit[:10]} ({workers[0].info['rhmnet']}); new: {head} ({workers[1].info['rhmnet']})")
            size = "854x480" if video_dir else "x".join(str(v) for v in args.size[::-1])
            frames_text = f"{video_dir.name if video_dir else 'synthetic'} {size}, {args.frames - 1} timed frames"
            print(f"frames: {frames_text}; {'a busy process on one core' if competitor else 'no competing process'}")
            rows = [measure(workers, objects, threads, args, video_dir, mask, Path(tmp))
                    for threads in args.threads for objects in args.objects]
        finally:
            if competitor is not None:
                competitor.kill()
                competitor.wait()
            for w in workers:
                w.close()
    print_table(rows, args.check)


def measure(workers: list[Worker], objects: int, threads: int, args: argparse.Namespace,
            video_dir: Optional[Path], mask: Optional[Path], tmp: Path) -> dict[str, Any]:
    """Both workers through one video, alternating frame by frame."""
    video, scribble = load_frames(args, objects, video_dir, mask)
    np.save(tmp / "video.npy", video)
    np.save(tmp / "scribble.npy", scribble)
    setup = {"cmd": "video", "threads": threads, "video": str(tmp / "video.npy"),
             "scribble": str(tmp / "scribble.npy")}
    for w in workers:
        w.ask(setup)
    times: dict[str, list[float]] = {"old": [], "new": []}
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    max_diff, label_diff = 0.0, 0
    for index in range(1, args.frames):
        order = workers if index % 2 else workers[::-1]
        for w in order:
            dump = str(tmp / f"{w.name}-{index}") if args.check else None
            out = w.ask({"cmd": "step", "index": index, "dump": dump})
            times[w.name].append(out["ms"])
            cpu[w.name].append(out["cpu_ms"])
        if args.check:
            old, new = (np.load(str(tmp / f"{n}-{index}.probs.npy")) for n in ("old", "new"))
            max_diff = max(max_diff, float(np.abs(old - new).max()))
            old, new = (np.load(str(tmp / f"{n}-{index}.labels.npy")) for n in ("old", "new"))
            label_diff += int((old != new).sum())
        print(f"  {objects} object(s), {threads} thread(s), frame {index}/{args.frames - 1}: "
              f"old {times['old'][-1]:.0f} ms, new {times['new'][-1]:.0f} ms", file=sys.stderr)
    row: dict[str, Any] = {"objects": objects, "threads": threads}
    for name in ("old", "new"):
        row[name] = summary(times[name])
        row[name]["cpu"] = statistics.median(cpu[name])
    row["paired"] = statistics.median(o / n for o, n in zip(times["old"], times["new"]))
    row["max_diff"], row["label_diff"] = max_diff, label_diff
    return row


def full_memory(stats: dict[str, float]) -> str:
    """The full-memory median in ms, or "-" when the video is too short to fill the memory."""
    return "-" if np.isnan(stats["full"]) else f"{stats['full']:.0f}"


def print_table(rows: list[dict[str, Any]], check: bool) -> None:
    print()
    header = ("| objects | threads | old ms/frame (full memory) | new ms/frame (full memory) | speed-up "
              "(median of paired ratios) | old CPU ms | new CPU ms | old slowest / p95 vs median "
              "| new slowest / p95 vs median |")
    if check:
        header += " max prob diff | label pixels differing |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for r in rows:
        old, new = r["old"], r["new"]
        line = (f"| {r['objects']} | {r['threads']} | {old['median']:.0f} ({full_memory(old)}) | "
                f"{new['median']:.0f} ({full_memory(new)}) | {old['median'] / new['median']:.2f}x "
                f"({r['paired']:.2f}x) | {old['cpu']:.0f} | {new['cpu']:.0f} | "
                f"{old['max'] / old['median']:.2f} / {old['p95'] / old['median']:.2f} | "
                f"{new['max'] / new['median']:.2f} / {new['p95'] / new['median']:.2f} |")
        if check:
            line += f" {r['max_diff']:.2e} | {r['label_diff']} |"
        print(line)


def frame_size(text: str) -> tuple[int, int]:
    """``WxH`` -> ``(H, W)``."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if min(width, height) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return height, width


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD", help="git ref of the old code (default: HEAD)")
    parser.add_argument("--frames", type=int, default=25, help="frames per video, frame 0 untimed")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="torch threads of both workers")
    parser.add_argument("--checkpoint", default=None, help="model checkpoint (default: random video_training)")
    parser.add_argument("--video", type=Path, default=None, help="folder of a DAVIS sequence's JPEG frames")
    parser.add_argument("--mask", type=Path, default=None, help="first-frame mask (PNG) of --video")
    parser.add_argument("--synthetic", action="store_true", help="synthetic frames instead of blackswan")
    parser.add_argument("--compete", action="store_true", help="a busy process on one core meanwhile")
    parser.add_argument("--check", action="store_true", help="compare the outputs frame by frame")
    parser.add_argument("--size", type=frame_size, default=(480, 854), metavar="WxH",
                        help="synthetic frame size (default 854x480)")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides (both)")
    return parser


def main(argv: Optional[list[str]] = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.frames < 2 or min(args.objects) < 1 or min(args.threads) < 1:
        parser.error("--frames must be at least 2, --objects and --threads at least 1")
    if (args.video is None) != (args.mask is None):
        parser.error("--video and --mask go together")
    run(args)


if __name__ == "__main__":
    main()
