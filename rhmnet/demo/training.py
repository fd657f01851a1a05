"""The demo's training run: the video stage of a config, keeping only its final checkpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from rhmnet.config import Config
from rhmnet.engine.cli import setup_logging
from rhmnet.engine.distributed import init_distributed
from rhmnet.engine.trainer import RunOptions, run_training

log = logging.getLogger(__name__)


def train(
    cfg: Config, iterations: Optional[int], device: str, keep_checkpoints: bool = False
) -> tuple[Path, float, int]:
    """Train the video stage; returns the last checkpoint, iterations per second and iterations done. Only
    the last checkpoint is kept unless ``keep_checkpoints``."""
    ctx = init_distributed(device)
    setup_logging(ctx)
    options = RunOptions(max_iters=iterations, progress=True, extend_schedule=True, overwrite=True)  # own folder
    result = run_training(cfg, "video", ctx, options)
    log.info(
        "trained %d iterations in %.0f s (%.2f it/s)",
        result.state.iteration,
        result.seconds,
        result.iterations_per_second,
    )
    if not keep_checkpoints:
        for older in result.checkpoints[:-1]:  # the demo needs only the final weights
            older.unlink(missing_ok=True)
    return result.checkpoints[-1], result.iterations_per_second, result.state.iteration
