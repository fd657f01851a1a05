"""A demo that learns to segment real video on a CPU, with no downloads:

    rhmnet-demo [--out outputs/demo] [--overwrite] [--davis PATH ...] [--iters N] [--threads N|auto] [--holdout]

(``python -m rhmnet.demo`` is the same command.)

Relative paths and the defaults are from the working directory: ``--out`` is ``outputs/demo`` there, and
``<shared>`` (``--shared``) is ``$RHMNET_SHARED``, else ``../shared``. A non-empty ``--out`` is an error
unless ``--overwrite``: the earlier run is then set aside, removed when this run succeeds and put back when
it fails.

1. builds a synthetic scribble-VOS dataset (moving textured shapes; DAVIS and YouTube-VOS layouts) and
   prepares every DAVIS-layout training root given with ``--davis`` (default: ``<shared>/data/davis16-train``
   when present): frames and masks resized to the config's training resolution, scribbles synthesised
   from the masks by :mod:`rhmnet.dataprep.scribble_synthesis`;
2. trains RHMNet-Lite (``configs/lite.yaml``: the ImageNet-pretrained EfficientNet-Lite0 backbone) on both,
   from scribbles only, with a progress bar;
3. evaluates J&F on held-out synthetic videos and on the DAVIS validation sequences it finds
   (``<shared>/data/davis-sample``: blackswan, car-shadow), each initialised from a first-frame scribble
   synthesised from the first mask, beside two baselines on the same videos: the dilated first-frame
   scribble, and a training-free cosine k-nearest-neighbour propagation on the same pretrained backbone.
   With ``--holdout`` it trains on the training part of each ``--davis`` root's fixed split only and also
   evaluates the held-out sequences and multi-object videos built from them (docs/generalisation.md);
4. writes the model (``model.pth.tar``, loadable by ``rhmnet.load_model``, ``rhmnet-eval-davis --checkpoint``
   and ``rhmnet-segment``), palette masks, overlay GIFs, ``results.md`` and ``results.json``.

Without ``--davis`` and ``<shared>`` it trains and reports on synthetic videos only (and says so). Real video:
DAVIS-2016/2017 480p from https://davischallenge.org/davis2017/code.html.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

from rhmnet.cli_args import ArgumentParser
from rhmnet.config import Config, load_config
from rhmnet.dataprep.synthetic_videos import add_texture_spread_argument
from rhmnet.demo.data import (
    DAVIS_SET,
    SYNTHETIC_SET,
    build_training_data,
    davis_sample,
    davis_val_videos,
    held_out_sets,
    held_out_videos,
    synthetic_videos,
    training_davis_roots,
)
from rhmnet.demo.report import DemoResults
from rhmnet.demo.scoring import run_methods
from rhmnet.demo.training import train
from rhmnet.errors import run_cli
from rhmnet.guards import check_output, replaced_on_success
from rhmnet.model_io import load_model, save_model
from rhmnet.ranges import AT_LEAST_1, option
from rhmnet.runtime import add_threads_argument, apply_threads

log = logging.getLogger(__name__)
DEFAULT_OUT = Path("outputs") / "demo"  # under the working directory
DAVIS_DOWNLOAD = "https://davischallenge.org/davis2017/code.html"


def default_shared() -> Path:
    """The developers' shared material: ``$RHMNET_SHARED``, else ``../shared`` from the working directory
    (never a path inside the installed package). It may not exist: the demo then runs on synthetic video."""
    return Path(os.environ.get("RHMNET_SHARED", Path("..") / "shared"))


class PhaseTimer:
    """Wall-clock seconds of each named phase of the demo."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        log.info("phase %s: %.0f s", name, self.seconds[name])


def add_run_arguments(parser: argparse.ArgumentParser, device_help: str) -> None:
    """The options the demo shares with ``scripts/learning_curve.py``: config, device, threads, seed, the
    training data (``--davis``, the synthetic videos) and where the DAVIS sample is."""
    parser.add_argument("--config", default="lite", help="config to train (default: configs/lite.yaml)")
    parser.add_argument("--device", default="cpu", help=device_help)
    add_threads_argument(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--davis",
        type=Path,
        action="append",
        default=None,
        help="DAVIS-layout training root (JPEGImages/480p, Annotations/480p; repeatable; default: "
        "<shared>/data/davis16-train when present)",
    )
    parser.add_argument("--num-train", type=option(int, AT_LEAST_1), default=32,
                        help="synthetic training videos per layout")
    parser.add_argument("--num-val", type=option(int, AT_LEAST_1), default=8, help="held-out synthetic videos")
    parser.add_argument(
        "--train-objects",
        type=option(int, AT_LEAST_1),
        nargs=2,
        default=(1, 3),
        metavar=("MIN", "MAX"),
        help="objects per synthetic training video (default 1 3, like the held-out ones); 2 3 teaches telling "
        "objects apart at a cost on DAVIS val (docs/demo.md)",
    )
    add_texture_spread_argument(parser)
    parser.add_argument(
        "--shared",
        type=Path,
        default=default_shared(),
        help="folder holding data/davis-sample and data/davis16-train (default: $RHMNET_SHARED, else ../shared "
        "from the working directory)",
    )
    parser.add_argument(
        "--holdout",
        action="store_true",
        help="train on the training part of each --davis root's fixed split (docs/generalisation.md) and also "
        "report its held-out sequences and multi-object videos built from them, each with both baselines",
    )
    parser.add_argument(
        "--val-seed", type=int, default=0, help="seed of the held-out scribbles and multi-object videos (--holdout)"
    )


def check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject bad values of :func:`add_run_arguments`' options before any work (a usage error)."""
    low, high = args.train_objects
    if not 1 <= low <= high:
        parser.error(f"--train-objects {low} {high}: need 1 <= MIN <= MAX")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="rhmnet-demo", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output folder (default: {DEFAULT_OUT} in the working directory)")
    add_run_arguments(parser, "cpu (the demo's target) or cuda")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier demo run in --out (put back if this run fails)")
    parser.add_argument("--iters", type=option(int, AT_LEAST_1), default=None,
                        help="training iterations (default: the config's)")
    parser.add_argument(
        "--davis-frames",
        type=option(int, AT_LEAST_1),
        default=None,
        help="segment only the first N frames of each DAVIS validation video (no J&F then)",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=value", help="overrides of the config")
    return parser


def real_video_notice(shared: Path, davis_roots: Sequence[Path]) -> Optional[str]:
    """One line saying what the demo skips for want of real video and how to add it; ``None`` when it
    trains on real video and evaluates on the DAVIS sample."""
    has_sample = davis_sample(shared) is not None
    train_on_davis = "--davis DAVIS_ROOT to train on it"
    val_rows = "--shared DIR (or set RHMNET_SHARED) with the DAVIS root at DIR/data/davis-sample for the DAVIS val rows"
    if davis_roots and has_sample:
        return None
    if has_sample:
        missing, skipped, remedy = "davis16-train", "training on synthetic videos only", train_on_davis
    elif davis_roots:
        missing, skipped, remedy = "davis-sample", "skipping the DAVIS val rows", val_rows
    else:
        missing, skipped = "davis16-train or davis-sample", "training and reporting on synthetic videos only"
        remedy = f"{train_on_davis} and {val_rows}"
    return (f"no {missing} in {shared.resolve() / 'data'}: {skipped}; for real video get DAVIS-2016/2017 480p "
            f"({DAVIS_DOWNLOAD}) and pass {remedy}")


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_run_arguments(parser, args)
    apply_threads(args.threads)
    out = args.out.resolve()
    davis_roots = training_davis_roots(args)
    probe = load_config(args.config, args.overrides)  # fails early on a bad config or override
    check_output(out, args.overwrite, what="--out")
    print(f"demo output folder: {out}")
    notice = real_video_notice(args.shared, davis_roots)
    if notice is not None:
        print(notice)
    with replaced_on_success(out):  # --overwrite: the earlier run comes back if this one fails
        return run_demo(args, out, davis_roots, probe)


def cli(argv: Optional[list[str]] = None) -> int:
    """``rhmnet-demo`` and ``python -m rhmnet.demo``: :func:`main` behind the shared error reporting."""
    return run_cli(main, argv)


def run_demo(args: argparse.Namespace, out: Path, davis_roots: list[Path], probe: Config) -> int:
    """The demo's work after its arguments were checked: data, training, evaluation, reports."""
    start = time.perf_counter()
    timer = PhaseTimer()
    with timer("data"):
        data = build_training_data(out / "data", args, davis_roots, probe.DATASETS.RESIZE_SHORT_SIDE)
    cfg = load_config(args.config, [*data.overrides(), f"TRAIN.CHECKPOINT_DIR={out / 'checkpoints'}",
                                    f"TRAIN.SEED={args.seed}", *args.overrides])
    with timer("train"):
        checkpoint, iters_per_second, iterations = train(cfg, args.iters, args.device)
    model = load_model(checkpoint)
    save_model(model, out / "model.pth.tar")
    with timer("evaluate synthetic"):
        videos = synthetic_videos(data.synthetic_davis)
        rows = run_methods(model, cfg, videos, data.synthetic_davis, out, SYNTHETIC_SET, "synthetic")
    sample = davis_sample(args.shared)
    if sample is not None:  # else main said what is skipped
        with timer("evaluate DAVIS val"):
            videos = davis_val_videos(sample, out, args.seed, args.davis_frames)
            score = args.davis_frames is None  # J&F only for fully segmented videos
            rows += run_methods(model, cfg, videos, sample, out, DAVIS_SET, "davis-val", score)
    held_out = held_out_sets(davis_roots, out / "data", args.val_seed) if args.holdout else []
    for held in held_out:
        with timer("evaluate held-out"):
            single, multi = held_out_videos(held, out, args.val_seed, args.davis_frames)
            score = args.davis_frames is None
            tag = f"held-out-{held.root.name}"
            rows += run_methods(model, cfg, single, held.root, out, held.single_set(), tag, score)
            if multi:
                rows += run_methods(model, cfg, multi, held.multiobject, out, held.multi_set(), f"multi-{tag}", score)
    minutes = (time.perf_counter() - start) / 60
    report = DemoResults(rows, timer.seconds, minutes, iterations, iters_per_second, davis_roots, held_out).write(out)
    print(report)
    print(f"model: {out / 'model.pth.tar'}; results, masks and overlay GIFs are in {out}")
    return 0
