"""Shared pieces of the evaluation entry points: arguments, device, config, checkpoints."""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from rhmnet.config import Config, ConfigError, config_from_dict, load_config
from rhmnet.guards import check_device, safe_name
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.session import PRECISIONS
from rhmnet.ranges import AT_LEAST_0, AT_LEAST_1, option

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
    parser.add_argument("--ckpt_num", type=option(int, AT_LEAST_0), default=0,
                        help="epoch of the checkpoint to evaluate")
    parser.add_argument("--start", type=option(int, AT_LEAST_0), default=0,
                        help="first epoch of a range (when --ckpt_num is 0)")
    parser.add_argument("--end", type=option(int, AT_LEAST_0), default=0,
                        help="last epoch of a range (when --ckpt_num is 0; not before --start)")
    parser.add_argument(
        "--checkpoint", type=str, default=None, help="explicit checkpoint file (overrides --ckpt_num)"
    )
    parser.add_argument(
        "--checkpoint_dir",
        type=str,
        default="checkpoints",
        help="folder holding pretrain_weights_<config>/pretrain_checkpoint_<N>.pth.tar",
    )
    parser.add_argument(
        "--no_tf32",
        dest="tf32",
        action="store_false",
        help="CUDA: full-fp32 convolutions and matrix products (PyTorch lets cuDNN use TF32 by default); "
        "closer to CPU outputs (speed not measured)",
    )
    add_speed_arguments(parser)
    parser.add_argument("--video_name", type=str, default=None, help="run a single video")
    parser.add_argument("--save_path", type=str, default="test_vis", help="output folder")
    parser.add_argument("--opts", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")


def check_model_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit 2) of :func:`add_model_arguments`' options that involve two of them."""
    if not args.checkpoint and not args.ckpt_num and args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    if args.video_name is not None:
        safe_name(args.video_name, "--video_name", "video name")


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    """``--precision``, ``--compile`` and ``--threads`` (inference speed options)."""
    parser.add_argument(
        "--precision",
        choices=sorted(PRECISIONS),
        default="fp32",
        help="autocast precision of the model step (fp16: CUDA only); reduced precision is not validated yet",
    )
    parser.add_argument(
        "--compile", action="store_true", help="torch.compile the frame encoder (CUDA: with CUDA graphs)"
    )
    add_threads_argument(parser)


THREADS_HELP = (
    "torch CPU threads: a number, or 'auto' for the cores other processes are not keeping busy at start-up "
    "(at least 1; depends on the machine's load, so results may vary between runs); default: torch's own "
    "choice (OMP_NUM_THREADS, else all usable cores), the same whatever else the machine is doing"
)


def threads_option(text: str) -> int | str:
    """``--threads`` value: a positive integer or ``auto``."""
    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}") from None
    problem = AT_LEAST_1.problem(count)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return count


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads N|auto`` (default None: torch's own thread count, independent of the machine's load)."""
    parser.add_argument("--threads", type=threads_option, default=None, metavar="N|auto", help=THREADS_HELP)


CPU_SAMPLE_SECONDS = 0.2  # how long auto_threads watches the cores


def read_cpu_times(path: str = "/proc/stat") -> dict[int, tuple[int, int]]:
    """Per core, ``(all ticks, idle ticks)`` since boot from Linux's ``/proc/stat`` (idle includes I/O
    wait); empty where the file does not exist."""
    times: dict[int, tuple[int, int]] = {}
    try:
        with open(path) as stat:
            for line in stat:
                name, *fields = line.split()
                if not (name.startswith("cpu") and name[3:].isdigit()):
                    continue
                ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
                times[int(name[3:])] = (sum(ticks), ticks[3] + (ticks[4] if len(ticks) > 4 else 0))
    except OSError:
        return {}
    return times


def busy_cores_now(cores: set[int], seconds: float = CPU_SAMPLE_SECONDS) -> float | None:
    """How many of ``cores`` other processes keep busy right now: their non-idle share over ``seconds``,
    summed (Linux); None where per-core times cannot be read."""
    before = read_cpu_times()
    if not before or not cores <= before.keys():
        return None
    time.sleep(seconds)
    after = read_cpu_times()
    busy = 0.0
    for core in cores:
        total = after[core][0] - before[core][0]
        idle = after[core][1] - before[core][1]
        busy += (total - idle) / total if total > 0 else 0.0
    return busy


def auto_threads() -> int:
    """Default CPU thread count: the usable cores minus the load other processes put on them, at least 1.

    Measured on a 2-core machine with a competing CPU-bound process: 2 threads ran about 2x slower than
    1 (the threads wait for each other whenever one is descheduled); on an idle machine all cores pay.
    The load is read once at start-up: on Linux from the cores' busy time over the next 0.2 s (a job that
    has just ended no longer counts), elsewhere from the 1-minute load average; load that starts later is
    not seen.
    """
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cores = len(affinity) if affinity else (os.cpu_count() or 1)
    busy = busy_cores_now(affinity) if affinity else None
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):  # not available on this platform
            busy = 0.0
    return max(1, min(cores, int(cores - busy + 0.5)))


def apply_threads(threads: int | str | None) -> int:
    """Set torch's CPU thread count from ``--threads``: a count, ``"auto"`` (:func:`auto_threads`, opt-in:
    it follows the machine's load at start-up) or None (torch's own choice, left unchanged: deterministic
    for a machine, whatever else it is doing). Returns the count in effect."""
    if threads is None:
        return torch.get_num_threads()
    if threads == "auto":
        count = auto_threads()
    elif isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1:
        count = threads
    else:
        raise ConfigError(f"--threads must be a positive integer or 'auto', got {threads!r}")
    torch.set_num_threads(count)
    return count


def select_device(device: str | None = None, gpu: str | None = None, tf32: bool = True) -> torch.device:
    """``--device`` wins; else ``--gpu N`` -> cuda:N when CUDA is available (warning and cpu otherwise).
    ``tf32=False`` turns TF32 off for cuDNN convolutions and CUDA matrix products."""
    if not tf32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    if device:
        return check_device(device)
    if gpu is not None and gpu != "":
        if torch.cuda.is_available():
            return torch.device(f"cuda:{gpu.split(',')[0]}")
        warnings.warn(f"--gpu {gpu} requested but CUDA is not available; running on the CPU", stacklevel=2)
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def config_from_args(args: argparse.Namespace) -> Config:
    """Config named by ``--config`` (else the one stored in ``--checkpoint``, else the default) with
    ``--opts`` and trailing ``KEY=VALUE`` overrides applied."""
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
    """(label, path, required) for each checkpoint: --checkpoint, --ckpt_num, or --start..--end."""
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


def load_checkpoint_model(path: Path, cfg: Config, device: torch.device) -> torch.nn.Module:
    """Our model from a checkpoint (ours or the authors' format) with ``cfg``, in eval mode on ``device``."""
    from rhmnet import load_model

    return load_model(path, config=cfg, device=device)


def make_segmenter(
    model: torch.nn.Module, cfg: Config, precision: str = "fp32", compile: bool = False
) -> VideoSegmenter:
    """A streaming segmenter with the inference settings of ``cfg.TEST`` (prepares ``model`` for inference)."""
    return VideoSegmenter(model, cfg.TEST, precision=precision, compile=compile)


def summary_stats(
    rows: Sequence[dict[str, float]], keys: Sequence[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean and (population) standard deviation of each key over rows."""
    table = np.array([[r[k] for k in keys] for r in rows], dtype=np.float64)
    return dict(zip(keys, table.mean(axis=0))), dict(zip(keys, table.std(axis=0)))


def iterate_progress(items: Sequence, desc: str, enabled: bool = True) -> Iterator:
    """tqdm over items (disabled when not wanted)."""
    from tqdm import tqdm

    return iter(tqdm(items, desc=desc, disable=not enabled))
