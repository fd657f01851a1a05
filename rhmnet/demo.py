"""A demo that learns, on a CPU, with no downloads:

    python -m rhmnet.demo [--out outputs/demo] [--iters N] [--threads T]

1. builds a synthetic scribble-VOS dataset (moving textured shapes; DAVIS and YouTube-VOS layouts);
2. trains ``configs/demo.yaml`` (a small RHMNet) from scratch on it, from scribbles only, with a progress bar;
3. evaluates J&F on held-out synthetic videos (initialised from a first-frame scribble) and compares with
   a baseline that repeats the first frame's dilated scribble on every frame;
4. runs the trained model on the real DAVIS sample sequences in ``../shared/data/davis-sample`` when
   present (scribbles synthesised from their first-frame masks);
5. writes palette masks, overlay GIFs and a results table into the output folder, whose path it prints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
from PIL import Image

from rhmnet.config import Config, load_config
from rhmnet.data.io import (
    list_files,
    read_davis_eval_scribble,
    read_image,
    read_image_set,
    read_palette_png,
    write_palette_png,
    write_scribble,
)
from rhmnet.dataprep.scribble_synthesis import ScribbleStyle, rng_for, scribble_from_labels
from rhmnet.dataprep.synthetic_videos import add_texture_spread_argument, make_synthetic_dataset
from rhmnet.engine.cli import setup_logging
from rhmnet.engine.distributed import init_distributed
from rhmnet.engine.trainer import RunOptions, run_training
from rhmnet.errors import run_cli
from rhmnet.evaluation.common import apply_threads
from rhmnet.evaluation.davis import evaluate_results
from rhmnet.inference import VideoSegmenter
from rhmnet.model import RHMNet
from rhmnet.model_io import load_model
from rhmnet.segment import overlay

log = logging.getLogger("rhmnet.demo")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = Path(os.environ.get("RHMNET_SHARED", REPO.parent / "shared"))


@dataclass
class Scores:
    """J&F summary of one evaluated set."""

    name: str
    jf: float
    j: float
    f: float
    videos: int

    def row(self) -> str:
        return f"| {self.name} | {self.videos} | {self.jf:.3f} | {self.j:.3f} | {self.f:.3f} |"


def demo_config(data: dict[str, Path], checkpoints: Path, overrides: list[str]) -> Config:
    """``configs/demo.yaml`` pointed at the generated data and the demo's checkpoint folder."""
    return load_config(
        "demo",
        [
            f"DATASETS.DAVIS.PATH={data['davis']}",
            f"DATASETS.YTB.ROOT={data['youtube']}",
            f"TRAIN.CHECKPOINT_DIR={checkpoints}",
            *overrides,
        ],
    )


def train(cfg: Config, iterations: Optional[int], device: str) -> Path:
    """Train the video stage on the synthetic data; returns the last checkpoint."""
    ctx = init_distributed(device)
    setup_logging(ctx)
    result = run_training(cfg, "video", ctx, RunOptions(max_iters=iterations, progress=True, extend_schedule=True,
                                                         overwrite=True))  # the demo owns its folder
    log.info(
        "trained %d iterations in %.0f s (%.2f it/s)",
        result.state.iteration,
        result.seconds,
        result.iterations_per_second,
    )
    for older in result.checkpoints[:-1]:  # the demo needs only the final weights
        older.unlink(missing_ok=True)
    return result.checkpoints[-1]


def segment_video(
    segmenter: VideoSegmenter, frames: list[Path], scribble: np.ndarray, out_dir: Path
) -> list[np.ndarray]:
    """Initialise on frame 0 with ``scribble``, step every frame, write palette PNGs; returns the masks."""
    out_dir.mkdir(parents=True, exist_ok=True)
    first = read_image(frames[0])
    segmenter.initialize(first, scribble)
    masks = []
    for index, path in enumerate(frames):
        result = segmenter.step(first if index == 0 else read_image(path))
        write_palette_png(out_dir / f"{path.stem}.png", result.labels)
        masks.append(result.labels)
    return masks


def dilated_scribble_baseline(scribble: np.ndarray, frames: list[Path], out_dir: Path, radius: int) -> None:
    """The baseline: every frame gets the first frame's object scribbles dilated by ``radius`` pixels."""
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = np.zeros(scribble.shape, np.uint8)
    for obj in sorted(int(v) for v in np.unique(scribble) if 0 < v < 11):
        mask[cv2.dilate((scribble == obj).astype(np.uint8), kernel) > 0] = obj
    for path in frames:
        write_palette_png(out_dir / f"{path.stem}.png", mask)


def write_gif(frames: list[Path], masks: list[np.ndarray], scribble: np.ndarray, path: Path) -> None:
    """Overlay GIF: the first frame with its scribble, then every frame with the predicted masks."""
    images = [overlay(read_image(frames[0]), np.where(scribble < 11, scribble, 0).astype(np.uint8), 0.9)]
    images += [overlay(read_image(f), m) for f, m in zip(frames, masks)]
    scale = min(1.0, 480 / max(images[0].shape[:2]))
    pil = [Image.fromarray(i).resize((int(i.shape[1] * scale), int(i.shape[0] * scale))) for i in images]
    path.parent.mkdir(parents=True, exist_ok=True)
    pil[0].save(path, save_all=True, append_images=pil[1:], duration=120, loop=0)


def evaluate(results: Path, davis_root: Path, sequences: list[str], name: str) -> Scores:
    """DAVIS-toolkit J&F (first and last frames excluded) of the PNGs under ``results``."""
    result = evaluate_results(results, davis_root, 2017, "val", sequences=sequences, workers=1, progress=False)
    g = result.global_metrics()
    return Scores(name, g["J&F-Mean"], g["J-Mean"], g["F-Mean"], len(sequences))


def run_synthetic(model: RHMNet, davis_root: Path, out: Path) -> tuple[Scores, Scores]:
    """Held-out synthetic videos: the model and the dilated-scribble baseline."""
    sequences = read_image_set(davis_root / "ImageSets" / "2017" / "val.txt")
    segmenter = VideoSegmenter(model)
    for seq in sequences:
        frames = list_files(davis_root / "JPEGImages" / "480p" / seq, (".jpg",))
        num_objects = int(read_palette_png(davis_root / "Annotations" / "480p" / seq / f"{frames[0].stem}.png").max())
        scribble = read_davis_eval_scribble(
            davis_root / "valid_scribbles0" / f"{seq}.bmp", with_bg=True, num_objects=num_objects
        )
        masks = segment_video(segmenter, frames, scribble, out / "synthetic" / "rhmnet" / seq)
        dilated_scribble_baseline(scribble, frames, out / "synthetic" / "baseline" / seq, radius=4)
        write_gif(frames, masks, scribble, out / "overlays" / f"synthetic-{seq}.gif")
    model_scores = evaluate(out / "synthetic" / "rhmnet", davis_root, sequences, "RHMNet (demo model)")
    base_scores = evaluate(out / "synthetic" / "baseline", davis_root, sequences, "baseline: dilated scribble")
    return model_scores, base_scores


def run_davis_sample(
    model: RHMNet, sample: Path, out: Path, seed: int, max_frames: Optional[int] = None
) -> Optional[Scores]:
    """Real DAVIS frames (at 480p) with scribbles synthesised from the first-frame masks."""
    image_set = sample / "ImageSets" / "2017" / "val.txt"
    if not image_set.is_file():
        log.info("no DAVIS sample at %s: skipping the real-frame part (set RHMNET_SHARED)", sample)
        return None
    sequences = read_image_set(image_set)
    segmenter = VideoSegmenter(model)
    style = ScribbleStyle(radius=(3, 5))
    for seq in sequences:
        frames = list_files(sample / "JPEGImages" / "480p" / seq, (".jpg",))[:max_frames]
        labels = read_palette_png(sample / "Annotations" / "480p" / seq / f"{frames[0].stem}.png")
        ids = [int(v) for v in np.unique(labels) if 0 < v < 255]
        scribble, _, _ = scribble_from_labels(labels, ids, 11, rng_for(seed, "demo", seq), style)
        write_scribble(out / "davis-sample" / "scribbles" / f"{seq}.bmp", scribble)
        masks = segment_video(segmenter, frames, scribble, out / "davis-sample" / "rhmnet" / seq)
        write_gif(frames, masks, scribble, out / "overlays" / f"davis-{seq}.gif")
    if max_frames is not None:  # evaluate the frames that were segmented
        return None
    return evaluate(out / "davis-sample" / "rhmnet", sample, sequences, "DAVIS sample (real frames)")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "demo", help="output folder")
    parser.add_argument("--iters", type=int, default=None, help="training iterations (default: the config's)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: the cores not already busy, at least 1)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (the demo's target) or cuda")
    parser.add_argument("--num-train", type=int, default=32, help="synthetic training videos per layout")
    parser.add_argument("--num-val", type=int, default=8, help="held-out synthetic videos")
    add_texture_spread_argument(parser)
    parser.add_argument(
        "--davis-frames",
        type=int,
        default=None,
        help="segment only the first N frames of each DAVIS sample video (no J&F then)",
    )
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="folder holding data/davis-sample")
    parser.add_argument("overrides", nargs="*", metavar="KEY=value", help="overrides of configs/demo.yaml")
    args = parser.parse_args(argv)
    apply_threads(args.threads)  # default: the cores not already busy (see rhmnet.evaluation.common.auto_threads)
    start = time.perf_counter()
    out = args.out.resolve()
    print(f"demo output folder: {out}")
    data = make_synthetic_dataset(
        out / "data",
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        size=(128, 128),
        frames=16,
        layouts=("davis", "youtube"),
        progress=True,
        texture_spread=args.texture_spread,
    )
    cfg = demo_config(data, out / "checkpoints", [f"TRAIN.SEED={args.seed}", *args.overrides])
    checkpoint = train(cfg, args.iters, args.device)
    model = load_model(checkpoint)
    synthetic, baseline = run_synthetic(model, data["davis"], out)
    rows = [synthetic, baseline]
    real = run_davis_sample(model, args.shared / "data" / "davis-sample", out, args.seed, args.davis_frames)
    if real is not None:
        rows.append(real)
    minutes = (time.perf_counter() - start) / 60
    table = "\n".join(["| evaluated on | videos | J&F | J | F |", "|---|---|---|---|---|", *(r.row() for r in rows)])
    report = f"# RHMNet demo\n\n{table}\n\nTotal time: {minutes:.1f} min on {torch.get_num_threads()} CPU threads.\n"
    (out / "results.md").write_text(report)
    (out / "results.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2))
    print(report)
    print(f"held-out synthetic J&F: {synthetic.jf:.3f} (baseline {baseline.jf:.3f})")
    print(f"results, masks and overlay GIFs are in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
