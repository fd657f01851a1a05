"""Shared pieces of the evaluation runners (``eval_davis.py``, ``eval_ytb.py``): the authors' model and checkpoint
arguments, the config they name and the checkpoints to run. Threads, device and segmenter: :mod:`rhmnet.runtime`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from rhmnet.config import Config, config_from_dict, load_config
from rhmnet.guards import safe_name
from rhmnet.ranges import AT_LEAST_0, option
from rhmnet.runtime import add_speed_arguments

CHECKPOINT_PATTERN = "pretrain_weights_{config}/pretrain_checkpoint_{epoch}.pth.tar"


def add_model_arguments(
    parser: argparse.ArgumentParser, default_config: str | None = "video_training"
) -> None:
    """The authors' model/checkpoint arguments plus device, checkpoint and override options."""
    parser.add_argument(
        "--gpu", type=str, default=None, help="GPU index (as the authors' scripts); cuda:N when available"
    )
    parser.add_argument(
        "--device", type=str, default=None, help="torch device (default: cuda if available, else cpu)"
    )
    parser.add_argument(
        "--config",
        type=str,
        default=None,
        help=f"config name (configs/<name>.yaml) or path (default: the one stored in a --checkpoint of ours, "
        f"else {default_config})",
    )
    parser.set_defaults(default_config=default_config)
    parser.add_argument("--ckpt-num", type=option(int, AT_LEAST_0), default=0,
                        help="epoch of the checkpoint to evaluate")
    parser.add_argument("--start", type=option(int, AT_LEAST_0), default=0,
                        help="first epoch of a range (when --ckpt-num is 0)")
    parser.add_argument("--end", type=option(int, AT_LEAST_0), default=0,
                        help="last epoch of a range (when --ckpt-num is 0; not before --start)")
    parser.add_argument(
        "--checkpoint", type=str, default=None, help="explicit checkpoint file (overrides --ckpt-num)"
    )
    parser.add_argument(
        "--checkpoint-dir",
        type=str,
        default="checkpoints",
        help="folder holding pretrain_weights_<config>/pretrain_checkpoint_<N>.pth.tar",
    )
    parser.add_argument(
        "--no-tf32",
        dest="tf32",
        action="store_false",
        help="CUDA: full-fp32 convolutions and matrix products (PyTorch lets cuDNN use TF32 by default); "
        "closer to CPU outputs (speed not measured)",
    )
    add_speed_arguments(parser)
    parser.add_argument("--video-name", type=str, default=None, help="run a single video")
    parser.add_argument("--save-path", type=str, default="test_vis", help="output folder")
    # config overrides come positionally; --opts KEY=VALUE ... of older command lines still works (and says so)
    parser.add_argument("--opts", nargs="*", default=[], help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")


def check_model_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2) of :func:`add_model_arguments`' options that involve two of them."""
    if not args.checkpoint and not args.ckpt_num and args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    if args.video_name is not None:
        safe_name(args.video_name, "--video-name", "video name")
    if args.opts:
        print(f"note: --opts is not needed: pass config overrides positionally ({' '.join(args.opts)})",
              file=sys.stderr)


def config_from_args(args: argparse.Namespace) -> Config:
    """Config named by ``--config`` (else the one stored in ``--checkpoint``, else the default) with the
    trailing ``KEY=VALUE`` overrides (and those of an old command line's ``--opts``) applied."""
    overrides = list(args.opts) + list(args.overrides)
    if args.config is None and getattr(args, "checkpoint", None) and Path(args.checkpoint).is_file():
        from rhmnet.model_io import CHECKPOINT_FORMAT, read_checkpoint

        data = read_checkpoint(args.checkpoint)
        if data.get("format") == CHECKPOINT_FORMAT and "config" in data:
            return config_from_dict(data["config"], overrides)
    return load_config(config_name(args), overrides)


def config_name(args: argparse.Namespace) -> str | None:
    """``--config``, or the default config of the command."""
    return args.config if args.config is not None else getattr(args, "default_config", None)


def config_label(args: argparse.Namespace) -> str:
    """Short name of the config for output folder names."""
    name = config_name(args)
    return Path(name).stem if name else "model"


def checkpoints_to_run(args: argparse.Namespace) -> list[tuple[str, Path, bool]]:
    """(label, path, required) for each checkpoint: --checkpoint, --ckpt-num, or --start..--end."""
    if args.checkpoint:
        return [(Path(args.checkpoint).name.split(".")[0], Path(args.checkpoint), True)]
    name = config_label(args)
    pattern = Path(args.checkpoint_dir) / CHECKPOINT_PATTERN
    if args.ckpt_num > 0:
        return [(str(args.ckpt_num), Path(str(pattern).format(config=name, epoch=args.ckpt_num)), True)]
    if args.end < args.start:
        raise ValueError(f"--end {args.end} is before --start {args.start}")
    return [
        (str(ep), Path(str(pattern).format(config=name, epoch=ep)), False)
        for ep in range(args.start, args.end + 1)
    ]


def available_checkpoints(args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """(label, path) of each checkpoint to evaluate; a missing epoch of a range is reported and skipped,
    a missing explicit checkpoint (or no checkpoint at all) is an error."""
    found = 0
    for label, path, required in checkpoints_to_run(args):
        if not path.is_file():
            if required:
                raise FileNotFoundError(f"checkpoint not found: {path}")
            print(f"Epoch {label} does not exist ({path})")
            continue
        found += 1
        yield label, path
    if found == 0:
        raise FileNotFoundError(
            f"no checkpoint found for epochs {args.start}..{args.end} in {args.checkpoint_dir}"
        )


def summary_stats(
    rows: Sequence[dict[str, float]], keys: Sequence[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and (population) standard deviation of each key over rows."""
    table = np.array([[r[k] for k in keys] for r in rows], dtype=np.float64)
    return dict(zip(keys, table.mean(axis=0))), dict(zip(keys, table.std(axis=0)))

