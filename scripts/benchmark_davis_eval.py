"""Time our evaluate-only DAVIS evaluation against the official toolkit's algorithm.

The official side is :mod:`rhmnet.tools.official_davis_metrics` (the toolkit's data flow, step by step). Both
run on the same results folder; the script checks that every number agrees to 1e-6 and prints a table.

    python scripts/benchmark_davis_eval.py                          # davis-sample val (2 sequences)
    python scripts/benchmark_davis_eval.py --synthetic --copies 3   # all 6 sample sequences x 3, 2-3 objects

``--synthetic`` builds a larger multi-object set in a temporary folder from the shared DAVIS sample: each
mask is split into two or three objects by vertical bands, and predictions are eroded, dilated or shifted
ground truth. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rhmnet.cli_args import ArgumentParser
from rhmnet.data.io import write_palette_png
from rhmnet.dataprep import shared_dir
from rhmnet.evaluation.davis_scoring import GLOBAL_COLUMNS, evaluate_results
from rhmnet.tools import official_davis_metrics as official


def shared_root() -> Path:
    return shared_dir() / "data" / "davis-sample"


def fake_prediction(mask: np.ndarray, index: int) -> np.ndarray:
    """A plausible imperfect prediction: per frame erode, dilate or shift the ground truth."""
    kernel = np.ones((5, 5), np.uint8)
    mode = index % 3
    if mode == 0:
        return cv2.erode(mask, kernel)
    if mode == 1:
        return cv2.dilate(mask, kernel)
    return np.roll(mask, (index % 9) - 4, axis=1)


def split_objects(mask: np.ndarray, parts: int) -> np.ndarray:
    """Split the foreground into ``parts`` objects by vertical bands of its bounding box (multi-object GT)."""
    out = mask.copy()
    cols = np.flatnonzero(mask.any(axis=0))
    if parts < 2 or cols.size < parts:
        return out
    bounds = np.linspace(cols[0], cols[-1] + 1, parts + 1).astype(int)
    for obj in range(1, parts):
        band = out[:, bounds[obj] : bounds[obj + 1]]
        band[band > 0] = obj + 1
    return out


def build_set(source: Path, target: Path, copies: int, synthetic: bool) -> tuple[Path, Path]:
    """Write ground truth (DAVIS layout, ImageSets/2017/val.txt) and results folders; returns both roots."""
    gt_root, res_root = target / "davis", target / "results"
    names = (source / "ImageSets" / "2017" / "val.txt").read_text().split()
    if synthetic:
        names = sorted(p.name for p in (source / "Annotations" / "480p").iterdir())
    listed = []
    for copy in range(copies if synthetic else 1):
        for k, name in enumerate(names):
            seq = name if copy == 0 else f"{name}-{copy}"
            listed.append(seq)
            parts = 1 + (k + copy) % 3 if synthetic else 1
            for i, path in enumerate(sorted((source / "Annotations" / "480p" / name).glob("*.png"))):
                gt = split_objects(np.array(Image.open(path)), parts)
                write_palette_png(gt_root / "Annotations" / "480p" / seq / path.name, gt)
                write_palette_png(res_root / seq / path.name, fake_prediction(gt, i + copy))
    (gt_root / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (gt_root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(listed) + "\n")
    return gt_root, res_root


def timed(fn, repeats: int) -> tuple[float, object]:  # noqa: ANN001
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", action="store_true", help="all sample sequences, multi-object, copied")
    parser.add_argument("--copies", type=int, default=2, help="copies of each sequence with --synthetic")
    parser.add_argument("--repeats", type=int, default=2, help="runs per method (best time is reported)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    source = shared_root()
    if not source.is_dir():
        print(f"DAVIS sample not found at {source} (set RHMNET_SHARED)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="davis_bench_"))
    try:
        gt_root, res_root = build_set(source, tmp, args.copies, args.synthetic)
        names = (gt_root / "ImageSets" / "2017" / "val.txt").read_text().split()
        frames = sum(len(list((gt_root / "Annotations" / "480p" / n).glob("*.png"))) for n in names)
        print(f"{len(names)} sequences, {frames} frames, {os.cpu_count()} CPUs")
        t_off, ref = timed(lambda: official.evaluate(str(gt_root), str(res_root)), args.repeats)
        rows = [("official algorithm (1 process)", t_off)]
        for workers in (1, os.cpu_count() or 1):
            t, ours = timed(
                lambda w=workers: evaluate_results(res_root, gt_root, 2017, "val", workers=w, progress=False),
                args.repeats,
            )
            rows.append((f"rhmnet.evaluation ({workers} thread{'s' if workers > 1 else ''})", t))
            got = list(ours.global_metrics().values())
            diff = max(abs(a - b) for a, b in zip(got, ref["global"]))
            per = max(
                max(abs(j - ref["per_object"][n][0]), abs(f - ref["per_object"][n][1]))
                for n, j, f in ours.per_object()
            )
            if diff > 1e-6 or per > 1e-6:
                print(f"MISMATCH: global {diff:.2e}, per object {per:.2e}")
                return 1
        print(f"\n{'method':<36}{'seconds':>9}{'speed-up':>10}")
        for name, t in rows:
            print(f"{name:<36}{t:>9.2f}{t_off / t:>9.1f}x")
        print("\nnumbers identical to the official algorithm (max abs difference <= 1e-6)")
        print(", ".join(f"{k} {v:.3f}" for k, v in zip(GLOBAL_COLUMNS, ref["global"])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
