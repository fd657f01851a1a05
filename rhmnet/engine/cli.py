"""The training commands: ``rhmnet-pretrain`` (= ``train_script_pretrain.py``, COCO pre-training, default
config ``pre_training``) and ``rhmnet-train`` (= ``train_script_video_training.py``, video training on
YouTube-VOS + DAVIS, default config ``video_training``). The command chooses the stage; the options are
the same.

    rhmnet-train --config video_training [KEY=value ...]
    torchrun --nproc_per_node 4 --no-python rhmnet-train --config video_training
    torchrun --nproc_per_node 4 train_script_video_training.py --config video_training
    python -m torch.distributed.launch --nproc_per_node 4 train_script_video_training.py \
        --config video_training

Options: ``--config NAME|PATH``, ``--resume PATH`` (exact continuation for a checkpoint of the same config
and stage, else initial weights), ``--device cpu|cuda|cuda:N`` (default ``cuda:LOCAL_RANK`` when CUDA is
available, else CPU), ``--local-rank`` (legacy launcher, which passes ``--local_rank=N``; the environment
wins), ``--max-iters N`` (stop after N iterations, e.g. smoke runs; more than the config's schedule is an
error), ``--save-every N``, ``--overwrite`` (replace an earlier run in the checkpoint folder),
``--no-progress``; trailing ``KEY=value`` pairs override the config (``TRAIN.LR=1e-4 TRAIN.BATCH_SIZE=2``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional

import torch
from tqdm import tqdm

from rhmnet.cli_args import ArgumentParser
from rhmnet.config import load_config
from rhmnet.engine.checkpoints import checkpoint_dir
from rhmnet.engine.distributed import DistContext, cleanup, init_distributed
from rhmnet.engine.trainer import RunOptions, TrainingInterrupted, run_training
from rhmnet.errors import run_cli
from rhmnet.ranges import AT_LEAST_0, AT_LEAST_1, option

log = logging.getLogger("rhmnet.train")


def build_parser(stage: str, default_config: str) -> argparse.ArgumentParser:
    """Arguments of the training scripts (``stage`` only changes the help text)."""
    parser = ArgumentParser(
        description=f"RHMNet {stage} training.",
        epilog="Trailing KEY=value pairs override config entries, e.g. TRAIN.LR=1e-4 TRAIN.EPOCH=2.",
    )
    parser.add_argument("--config", default=default_config,
                        help=f"config name or YAML path (default {default_config})")
    parser.add_argument("--resume", default=None,
                        help="checkpoint to continue from (overrides RESUME in the config)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda:LOCAL_RANK if available, else cpu)")
    parser.add_argument("--local-rank", type=int, default=None,
                        help="set by the legacy torch.distributed.launch; LOCAL_RANK in the environment wins")
    parser.add_argument("--max-iters", type=option(int, AT_LEAST_1), default=None,
                        help="stop after this many iterations in total (writes last_checkpoint.pth.tar)")
    parser.add_argument("--save-every", type=option(int, AT_LEAST_0), default=0,
                        help="also write last_checkpoint.pth.tar every N iterations (0: off)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the checkpoints and log of an earlier run in the checkpoint folder")
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no tqdm progress bar")
    parser.add_argument("overrides", nargs="*", metavar="KEY=value", help="config overrides")
    return parser


def parse_args(stage: str, default_config: str, argv: Optional[list[str]] = None) -> argparse.Namespace:
    """Parse options and overrides in any order (a value outside its range is a usage error, exit 2)."""
    return build_parser(stage, default_config).parse_intermixed_args(argv)


class _TqdmHandler(logging.Handler):
    """Log records printed through tqdm so they do not break the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def setup_logging(ctx: DistContext) -> None:
    """INFO on rank 0, warnings only on the other ranks (prefixed with the rank)."""
    handler = _TqdmHandler()
    prefix = "" if ctx.world_size == 1 else f"[rank {ctx.rank}] "
    handler.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("rhmnet")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if ctx.is_main else logging.WARNING)
    root.propagate = False


def main(stage: str, default_config: str, argv: Optional[list[str]] = None) -> int:
    """Train one stage; errors propagate to :func:`cli` (only the main process reports an interruption)."""
    args = parse_args(stage, default_config, argv)
    ctx: Optional[DistContext] = None
    try:
        ctx = init_distributed(args.device, args.local_rank)
        setup_logging(ctx)
        cfg = load_config(args.config, args.overrides)
        log.info("%s training, config %s, %d process(es), device %s; checkpoints in %s", stage, cfg.NAME,
                 ctx.world_size, ctx.device, checkpoint_dir(cfg))
        options = RunOptions(resume=args.resume, max_iters=args.max_iters, save_every=args.save_every,
                             progress=args.progress, overwrite=args.overwrite, command=list(sys.argv))
        result = run_training(cfg, stage, ctx, options)
        peak = ""
        if ctx.device.type == "cuda":
            peak = f", peak GPU memory {torch.cuda.max_memory_allocated(ctx.device) / 2**30:.2f} GiB"
        log.info("done: iteration %d, epoch %d, %.2f iterations/s%s", result.state.iteration,
                 result.state.epoch, result.iterations_per_second, peak)
        return 0
    except TrainingInterrupted as exc:
        if ctx is not None and not ctx.is_main:
            return exc.exit_code
        raise
    finally:
        if ctx is not None:
            cleanup(ctx)


def cli(stage: str, default_config: str, argv: Optional[list[str]] = None) -> int:
    """The training scripts' entry point: :func:`main` behind the shared error reporting
    (exit status 0, 1 for a failed run, 2 for bad input, 128 + N after signal N; see ``rhmnet.errors``)."""
    return run_cli(lambda args: main(stage, default_config, args), argv)


def pretrain(argv: Optional[list[str]] = None) -> int:
    """``rhmnet-pretrain`` and ``train_script_pretrain.py``: COCO pre-training (default config pre_training)."""
    return cli("pretrain", "pre_training", argv)


def train_video(argv: Optional[list[str]] = None) -> int:
    """``rhmnet-train`` and ``train_script_video_training.py``: video training (default config video_training)."""
    return cli("video", "video_training", argv)
