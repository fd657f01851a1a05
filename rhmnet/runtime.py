"""What every command that runs the model sets up first: torch's CPU threads, the device, the model and the
streaming segmenter, and the speed options (``--precision``, ``--compile``, ``--threads``) that choose them.

Used by the evaluation runners, ``rhmnet.segment``, the studio and the demo. Turning TF32 off for the whole
process (``--no-tf32``) is logged (logger ``rhmnet.runtime``).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
import warnings
from pathlib import Path

import torch

from rhmnet.config import Config, ConfigError
from rhmnet.guards import check_device
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.session import PRECISIONS
from rhmnet.model_io import load_model
from rhmnet.ranges import AT_LEAST_1

log = logging.getLogger(__name__)


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
    if count != torch.get_num_threads():
        log.info("--threads: torch's CPU thread count for this process %d -> %d", torch.get_num_threads(), count)
        torch.set_num_threads(count)
    return count


def disable_tf32() -> None:
    """Full-fp32 cuDNN convolutions and CUDA matrix products for the rest of the process (``--no-tf32``); one
    log line says which of PyTorch's TF32 switches this turned off."""
    switches = {
        "torch.backends.cudnn.allow_tf32": torch.backends.cudnn,
        "torch.backends.cuda.matmul.allow_tf32": torch.backends.cuda.matmul,
    }
    changed = [name for name, owner in switches.items() if owner.allow_tf32]
    for owner in switches.values():
        owner.allow_tf32 = False
    if changed:
        log.info("--no-tf32: set %s to False for this process (CUDA convolutions and matrix products in full fp32, "
                 "closer to CPU outputs)", " and ".join(changed))


def select_device(device: str | None = None, gpu: str | None = None, tf32: bool = True) -> torch.device:
    """``--device`` wins; else ``--gpu N`` -> cuda:N when CUDA is available (warning and cpu otherwise).
    ``tf32=False`` turns TF32 off for cuDNN convolutions and CUDA matrix products (:func:`disable_tf32`)."""
    if not tf32:
        disable_tf32()
    if device:
        return check_device(device)
    if gpu is not None and gpu != "":
        if torch.cuda.is_available():
            return torch.device(f"cuda:{gpu.split(',')[0]}")
        warnings.warn(f"--gpu {gpu} requested but CUDA is not available; running on the CPU", stacklevel=2)
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_checkpoint_model(path: Path, cfg: Config, device: torch.device) -> torch.nn.Module:
    """Our model from a checkpoint (ours or the authors' format) with ``cfg``, in eval mode on ``device``."""
    return load_model(path, config=cfg, device=device)


def make_segmenter(
    model: torch.nn.Module, cfg: Config, precision: str = "fp32", compile: bool = False
) -> VideoSegmenter:
    """A streaming segmenter with the inference settings of ``cfg.TEST`` (prepares ``model`` for inference)."""
    return VideoSegmenter(model, cfg.TEST, precision=precision, compile=compile)
