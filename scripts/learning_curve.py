"""RHMNet-Lite's learning curve under a wall-clock budget (on one GPU: at most 8 minutes of training).

    python scripts/learning_curve.py --device cuda [--minutes 8] [--points 8] [--out outputs/curve]
    python scripts/learning_curve.py --prepare-only --out DIR      # only the training data, under DIR/data
    python scripts/learning_curve.py --device cuda --data DIR/data  # train on data prepared earlier
    python scripts/learning_curve.py --evaluate RUN                 # re-score RUN's saved points here

1. Data as the demo's (``python -m rhmnet.demo``): synthetic videos plus every ``--davis`` root (default
   ``<shared>/data/davis16-train``) prepared at the training resolution, with synthesised scribbles.
2. Calibration: a short run of the same config (``--calibrate-seconds``) measures iterations per second.
3. The schedule is sized to the budget: ``--points`` epochs of equal length whose total fills ``--minutes``
   at the measured rate (times ``--fill``, for epoch-end checkpoints and loader restarts). A timer stops
   the run at the budget whatever happens (the trainer checkpoints the iteration it is in).
4. Each epoch's checkpoint (the averaged weights under TRAIN.EMA_DECAY) is one point of the curve: its
   wall-clock minutes since training started, and J&F on the DAVIS validation sequences of
   ``<shared>/data/davis-sample`` and on the held-out synthetic videos. With ``--holdout`` (as the demo's)
   it trains on the training part of each ``--davis`` root's fixed split and also scores the held-out
   sequences and the multi-object videos built from them; the two baselines on those sets are scored
   once (they do not train) and listed under the table. Each point's model is saved as
   ``points/point-<k>.pth.tar`` (model-only, loadable by ``rhmnet.load_model``).
5. ``curve.md`` and ``curve.json`` in ``--out``. With ``--no-scoring`` the points are only saved; copy the
   run folder's ``points/`` and ``curve.json`` elsewhere and score them there with ``--evaluate``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import torch

from rhmnet import demo
from rhmnet.cli_args import ArgumentParser
from rhmnet.config import Config, load_config
from rhmnet.dataprep.splits import davis_split
from rhmnet.engine.checkpoints import EPOCH_CHECKPOINT_GLOB, LAST_CHECKPOINT, LOG_FILE, checkpoint_dir
from rhmnet.engine.trainer import TrainingInterrupted
from rhmnet.errors import run_cli
from rhmnet.model_io import load_model, model_from_checkpoint, read_checkpoint, save_model
from rhmnet.runtime import apply_threads

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("rhmnet.learning_curve")
HELD_OUT_FACT = "held out (never trained on)"


@dataclass
class Point:
    """One point of the curve: a checkpoint's training time and scores."""

    index: int
    iteration: int
    minutes: float
    davis_val: Optional[float] = None
    synthetic: Optional[float] = None
    held_out: dict[str, float] = field(default_factory=dict)  # --holdout: J&F per held-out set


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "curve", help="output folder")
    demo.add_run_arguments(parser, "cpu or cuda (training and evaluation)")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget in wall-clock minutes")
    parser.add_argument("--points", type=int, default=8, help="points of the curve (epochs of equal length)")
    parser.add_argument("--calibrate-seconds", type=float, default=30.0, help="length of the calibration run")
    parser.add_argument("--fill", type=float, default=0.93, help="share of the budget the schedule is sized to")
    parser.add_argument("--workers", type=int, default=None, help="loader processes (default: 0 on cpu, 8 on cuda)")
    parser.add_argument("--data", type=Path, default=None, help="training data prepared earlier (--prepare-only)")
    parser.add_argument("--prepare-only", action="store_true", help="write the training data to <out>/data, stop")
    parser.add_argument("--no-scoring", action="store_true", help="train and save the points, score them later")
    parser.add_argument("--evaluate", type=Path, default=None, metavar="RUN", help="re-score RUN's points, stop")
    parser.add_argument("overrides", nargs="*", metavar="KEY=value", help="overrides of the config")
    return parser


def stop_after(seconds: float) -> threading.Timer:
    """A started timer that sends this process SIGINT after ``seconds``: the trainer then checkpoints the
    iteration it is in and raises :class:`TrainingInterrupted`."""
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.daemon = True
    timer.start()
    return timer


def train_for(cfg: Config, seconds: float, device: str) -> None:
    """Train ``cfg`` until its schedule ends or ``seconds`` pass, whichever is first."""
    timer = stop_after(seconds)
    try:
        demo.train(cfg, None, device, keep_checkpoints=True)
    except TrainingInterrupted as stopped:
        log.info("stopped at the time limit after iteration %d", stopped.iteration)
    except KeyboardInterrupt:  # the limit came before the training loop started: nothing to keep
        log.warning("the time limit (%.0f s) came before the first iteration", seconds)
    finally:
        timer.cancel()


def steady_rate(log_path: Path) -> float:
    """Iterations per second over the second half of a training log (after start-up and warm-up)."""
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    if len(records) < 4:
        raise RuntimeError(f"{log_path}: only {len(records)} iterations in the calibration run; raise "
                           "--calibrate-seconds")
    half = records[len(records) // 2 :]
    seconds = half[-1]["time"] - half[0]["time"]
    return (len(half) - 1) / max(seconds, 1e-6)


def training_config(args: argparse.Namespace, data: demo.TrainingData, folder: Path, extra: list[str]) -> Config:
    """The config of a run: the data, the checkpoint folder, the seed, loader workers, the user's overrides."""
    workers = args.workers if args.workers is not None else (8 if args.device.startswith("cuda") else 0)
    return load_config(args.config, [*data.overrides(), f"TRAIN.CHECKPOINT_DIR={folder}", f"TRAIN.SEED={args.seed}",
                                      f"TRAIN.NUM_WORKERS={workers}", *extra, *args.overrides])


def calibrate(args: argparse.Namespace, data: demo.TrainingData, out: Path) -> float:
    """Iterations per second of the config on this machine, from a short run of its own."""
    folder = out / "calibration"
    cfg = training_config(args, data, folder, ["TRAIN.EPOCH=1", "TRAIN.SAMPLES_PER_EPOCH=200000"])
    train_for(cfg, args.calibrate_seconds, args.device)
    rate = steady_rate(checkpoint_dir(cfg) / LOG_FILE)
    shutil.rmtree(folder)  # its weights are of no further use
    log.info("calibration: %.2f iterations per second", rate)
    return rate


def sized_schedule(rate: float, args: argparse.Namespace, cfg: Config) -> list[str]:
    """Overrides that make ``--points`` equal epochs fill ``--fill`` of the budget at ``rate``; a warm-up mix
    (``DATASETS.WARMUP_EPOCHS``) keeps its share of ``cfg``'s epochs, rounded, at least one epoch."""
    per_point = max(1, int(rate * args.minutes * 60 * args.fill / args.points))
    schedule = [f"TRAIN.EPOCH={args.points}", f"TRAIN.SAMPLES_PER_EPOCH={per_point * cfg.TRAIN.BATCH_SIZE}"]
    warmup = cfg.DATASETS.WARMUP_EPOCHS
    if warmup > 0:
        schedule.append(f"DATASETS.WARMUP_EPOCHS={max(1, round(warmup * args.points / cfg.TRAIN.EPOCH))}")
    return schedule


def collect_points(folder: Path, started: float, out: Path) -> list[Point]:
    """The run's checkpoints in order (epoch checkpoints, then a time-limit stop's last checkpoint), each
    saved as a model-only ``points/point-<k>.pth.tar`` with its minutes since ``started``."""
    checkpoints = sorted(folder.glob(EPOCH_CHECKPOINT_GLOB), key=lambda p: p.stat().st_mtime)
    last = folder / LAST_CHECKPOINT
    if last.is_file() and (not checkpoints or last.stat().st_mtime > checkpoints[-1].stat().st_mtime):
        checkpoints.append(last)
    if not checkpoints:
        raise SystemExit(f"{folder}: no checkpoint was written within the budget; raise --minutes")
    points = []
    for index, path in enumerate(checkpoints, 1):
        checkpoint = read_checkpoint(path)
        iteration = int(checkpoint["iteration"])
        save_model(model_from_checkpoint(checkpoint, path), out / "points" / f"point-{index}.pth.tar",
                   iteration=iteration)
        points.append(Point(index, iteration, (path.stat().st_mtime - started) / 60))
    return points


def held_out_sets(run: Path, args: argparse.Namespace) -> list[tuple[str, list[demo.EvalVideo], Path]]:
    """``--holdout``: (set name, videos, DAVIS root) of each ``--davis`` root's held-out sequences and of the
    multi-object videos built from them (under ``run/data``), as the demo evaluates them."""
    if not args.holdout:
        return []
    sets = []
    for held in demo.held_out_sets(demo.training_davis_roots(args), run / "data", args.val_seed):
        single, multi = demo.held_out_videos(held, run, args.val_seed, None)
        sets.append((held.single_set(), single, held.root))
        if multi:
            sets.append((held.multi_set(), multi, held.multiobject))
    return sets


def baseline_scores(sets: list[tuple[str, list[demo.EvalVideo], Path]], run: Path, cfg: Config) -> dict[str, object]:
    """J&F of the two baselines on each held-out set (they do not change along the curve)."""
    scores = {}
    for name, videos, root in sets:
        rows = demo.run_baselines(cfg, videos, root, run / "masks" / "baselines", name, name.replace(" ", "-"))
        scores[f"baselines on {name}"] = ", ".join(f"{r.name} {r.jf:.3f}" for r in rows)
    return scores


def score_points(points: list[Point], run: Path, args: argparse.Namespace, data_root: Path) -> dict[str, object]:
    """J&F of every point's model on DAVIS val (when ``<shared>/data/davis-sample`` exists), on the held-out
    synthetic videos of ``data_root`` and, with ``--holdout``, on the held-out sets (:func:`held_out_sets`);
    returns the baselines' J&F on the held-out sets."""
    sample = args.shared / "data" / "davis-sample"
    davis = demo.davis_val_videos(sample, run, args.seed, None) if (sample / "ImageSets").is_dir() else []
    synthetic = demo.synthetic_videos(data_root)
    held_out = held_out_sets(run, args)
    for point in points:
        model = load_model(run / "points" / f"point-{point.index}.pth.tar", device=args.device)
        scratch = run / "masks" / f"point-{point.index}"
        if davis:
            point.davis_val = demo.score_model(model, model.cfg, davis, sample, scratch, demo.DAVIS_SET, "davis").jf
        point.synthetic = demo.score_model(model, model.cfg, synthetic, data_root, scratch, demo.SYNTHETIC_SET,
                                           "synthetic").jf
        for name, videos, root in held_out:
            point.held_out[name] = demo.score_model(model, model.cfg, videos, root, scratch, name,
                                                    name.replace(" ", "-")).jf
        davis_text = "-" if point.davis_val is None else f"{point.davis_val:.3f}"
        log.info("point %d (%.1f min, iteration %d): DAVIS val %s, synthetic %.3f%s", point.index, point.minutes,
                 point.iteration, davis_text, point.synthetic,
                 "".join(f", {name} {jf:.3f}" for name, jf in point.held_out.items()))
    if not held_out:
        return {}
    model = load_model(run / "points" / f"point-{points[-1].index}.pth.tar", device=args.device)
    return baseline_scores(held_out, run, model.cfg)


def report(points: list[Point], facts: dict[str, object]) -> str:
    """``curve.md``: the points as a table and the run's facts."""
    def cell(value: Optional[float]) -> str:
        return "-" if value is None else f"{value:.3f}"

    held_out = list(dict.fromkeys(name for p in points for name in p.held_out))
    rows = [f"| {p.minutes:.2f} | {p.iteration} | {cell(p.davis_val)} | {cell(p.synthetic)} |"
            + "".join(f" {cell(p.held_out.get(name))} |" for name in held_out) for p in points]
    header = "| minutes | iterations | DAVIS val J&F | held-out synthetic J&F |" + "".join(
        f" {name} J&F |" for name in held_out)
    lines = ["# RHMNet-Lite learning curve", "", header, "|---|---|---|---|" + "---|" * len(held_out), *rows, ""]
    lines += [f"- {key}: {value}" for key, value in facts.items()]
    return "\n".join(lines) + "\n"


def write_results(run: Path, points: list[Point], facts: dict[str, object]) -> None:
    """``curve.json`` and ``curve.md`` in ``run``; prints the table."""
    (run / "curve.json").write_text(json.dumps({"points": [asdict(p) for p in points], **facts}, indent=2))
    text = report(points, facts)
    (run / "curve.md").write_text(text)
    print(text)


def evaluate_saved(run: Path, args: argparse.Namespace) -> int:
    """``--evaluate``: score a run's saved points on this machine and rewrite its curve files."""
    saved = json.loads((run / "curve.json").read_text())
    points = [Point(**{**p, "davis_val": None, "synthetic": None, "held_out": {}}) for p in saved.pop("points")]
    facts = {**saved, "evaluated on": f"{args.device} ({torch.get_num_threads()} threads), re-scored here"}
    if args.holdout and HELD_OUT_FACT not in saved:
        raise SystemExit(f"{run / 'curve.json'}: the run was not trained with --holdout; its held-out scores would "
                         "be of seen video")
    if args.data is not None:
        synthetic_root = demo.TrainingData.existing(args.data.resolve()).synthetic_davis
    else:
        synthetic_root = Path(saved["held-out synthetic root"])
        if not synthetic_root.is_dir():
            raise SystemExit(f"{run / 'curve.json'}: its held-out synthetic root {synthetic_root} is not on this "
                             "machine; pass --data with the run's training data folder")
    facts.update(score_points(points, run, args, synthetic_root))
    write_results(run, points, facts)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    demo.check_run_arguments(parser, args)
    if args.minutes <= 0 or args.points < 1 or not 0 < args.fill <= 1:
        parser.error("--minutes must be > 0, --points >= 1 and 0 < --fill <= 1")
    apply_threads(args.threads)
    if args.evaluate is not None:
        return evaluate_saved(args.evaluate.resolve(), args)
    out = args.out.resolve()
    probe = load_config(args.config, args.overrides)  # fails early on a bad config or override
    if args.data is not None:
        data = demo.TrainingData.existing(args.data.resolve())
    else:
        roots = demo.training_davis_roots(args)
        data = demo.build_training_data(out / "data", args, roots, probe.DATASETS.RESIZE_SHORT_SIDE)
    if args.prepare_only:
        print(f"training data: {out / 'data'}")
        return 0
    if args.holdout:
        demo.check_unseen(data.train_davis, demo.held_out_sets(demo.training_davis_roots(args), out / "data",
                                                               args.val_seed))
    rate = calibrate(args, data, out)
    schedule = sized_schedule(rate, args, probe)
    cfg = training_config(args, data, out / "checkpoints", schedule)
    started = time.time()
    train_for(cfg, args.minutes * 60, args.device)
    trained_minutes = (time.time() - started) / 60
    points = collect_points(checkpoint_dir(cfg), started, out)
    on_gpu = args.device.startswith("cuda")
    facts: dict[str, object] = {
        "device": torch.cuda.get_device_name() if on_gpu else f"cpu ({torch.get_num_threads()} threads)",
        "config": args.config,
        "schedule": " ".join(schedule),
        "calibrated iterations per second": round(rate, 2),
        "training minutes (wall clock, start-up included)": round(trained_minutes, 2),
        "training data": ", ".join(str(p) for p in (data.train_davis, data.youtube)),
        "held-out synthetic root": str(data.synthetic_davis),
        "evaluated on": "-" if args.no_scoring else args.device,
        "torch": torch.__version__,
    }
    if args.holdout:
        facts[HELD_OUT_FACT] = "; ".join(
            f"{root.name}: {', '.join(davis_split(root).val)}" for root in demo.training_davis_roots(args))
    write_results(out, points, facts)  # the points are on disk even if scoring fails
    if not args.no_scoring:
        facts.update(score_points(points, out, args, data.synthetic_davis))
        write_results(out, points, facts)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
