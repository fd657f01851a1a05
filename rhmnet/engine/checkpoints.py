"""Training checkpoints: where they go, what they hold, and how a run resumes from one.

Layout (the authors' names, so evaluation's ``--ckpt-num`` finds them)::

    {TRAIN.CHECKPOINT_DIR}/pretrain_weights_{NAME}/pretrain_checkpoint_{epoch}.pth.tar  (completed epochs)
    {TRAIN.CHECKPOINT_DIR}/pretrain_weights_{NAME}/last_checkpoint.pth.tar  (--max-iters / --save-every)
    {TRAIN.CHECKPOINT_DIR}/pretrain_weights_{NAME}/config.yaml  (the resolved config)
    {TRAIN.CHECKPOINT_DIR}/pretrain_weights_{NAME}/STAGE  (pretrain / video: one stage per folder)
    {TRAIN.CHECKPOINT_DIR}/pretrain_weights_{NAME}/train_log.jsonl  (one line per iteration)

A folder holds one run: starting a run in a folder with checkpoints or a log of an earlier run is an error
unless the run resumes exactly from a checkpoint (``--resume``) or ``overwrite`` is given (the earlier run's
checkpoints and log are then deleted first). Left-over ``.*.tmp`` files of interrupted writes are removed
at start-up.

A checkpoint is our format (``rhmnet.model_io.save_model``, written atomically, loadable with
``rhmnet.load_model``) plus the training state: optimizer, scheduler, AMP scaler, iteration, epoch,
stage, every rank's RNG states (Python, NumPy, torch, CUDA) and the data position. With
``TRAIN.EMA_DECAY`` > 0 its ``model`` is the moving average of the weights (what inference and a next stage
load) and ``trained_model`` / ``ema_updates`` hold the optimised weights and the average's count. Samples are pure
functions of (seed, epoch, index) (``rhmnet.engine.data``) and the schedules pure functions of the
iteration, so nothing else is needed to continue exactly.

Resume rule (``--resume PATH``, else ``RESUME`` in the config):

- **exact** when the checkpoint is ours, holds a training state, and was written by the same config
  ``NAME`` and stage: weights, optimizer, schedule, iteration and RNG states continue;
- **initial weights only** otherwise (another config or stage, e.g. the video stage starting from
  pre-training epoch 14, or the authors' ``{'epoch', 'state_dict'}`` files): fresh optimiser and
  schedule from iteration 0.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from rhmnet.config import Config
from rhmnet.model_io import (
    CHECKPOINT_FORMAT,
    TMP_SUFFIX,
    CheckpointError,
    model_state_from_checkpoint,
    read_checkpoint,
    save_model,
)

log = logging.getLogger(__name__)

LAST_CHECKPOINT = "last_checkpoint.pth.tar"
STAGE_FILE = "STAGE"
LOG_FILE = "train_log.jsonl"
EPOCH_CHECKPOINT_GLOB = "pretrain_checkpoint_*.pth.tar"


@dataclass
class TrainState:
    """Where training stands: completed iterations and the run geometry they refer to."""

    iteration: int = 0
    iters_per_epoch: int = 1
    world_size: int = 1
    batch_size: int = 1
    skip: int = 0

    @property
    def epoch(self) -> int:
        """Completed epochs (the authors' checkpoint ``epoch``)."""
        return self.iteration // self.iters_per_epoch

    @property
    def batch_in_epoch(self) -> int:
        return self.iteration % self.iters_per_epoch


def checkpoint_dir(cfg: Config) -> Path:
    """``{TRAIN.CHECKPOINT_DIR}/pretrain_weights_{NAME}`` (the authors' name for both stages)."""
    return Path(cfg.TRAIN.CHECKPOINT_DIR) / f"pretrain_weights_{cfg.NAME}"


def epoch_checkpoint_path(cfg: Config, epoch: int) -> Path:
    """Checkpoint written after ``epoch`` completed epochs."""
    return checkpoint_dir(cfg) / f"pretrain_checkpoint_{epoch}.pth.tar"


def earlier_run_files(folder: Path) -> list[Path]:
    """Checkpoints and the log of a run already in ``folder`` (newest first)."""
    if not folder.is_dir():
        return []
    files = [*folder.glob(EPOCH_CHECKPOINT_GLOB), folder / LAST_CHECKPOINT, folder / LOG_FILE]
    return sorted((p for p in files if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)


def guard_earlier_run(cfg: Config, resuming_exactly: bool, overwrite: bool, delete: bool = True) -> None:
    """Refuse to start a run in a folder that holds an earlier run, unless this run continues it exactly
    or ``overwrite`` (then the earlier checkpoints and log are deleted when ``delete``; pass False on the
    processes other than rank 0)."""
    folder = checkpoint_dir(cfg)
    files = earlier_run_files(folder)
    if not files or resuming_exactly:
        return
    if not overwrite:
        latest = next((p for p in files if p.name != LOG_FILE), None)
        hint = f"continue it with --resume {latest}, " if latest is not None else ""
        raise CheckpointError(
            f"{folder} holds an earlier run ({', '.join(p.name for p in files[:4])}"
            f"{', ...' if len(files) > 4 else ''}); {hint}replace it with --overwrite, or give this run "
            "its own folder (NAME=... or TRAIN.CHECKPOINT_DIR=...)"
        )
    if delete:
        for path in [*files, folder / STAGE_FILE]:
            path.unlink(missing_ok=True)
        log.warning("--overwrite: deleted the earlier run's %d checkpoint/log file(s) in %s", len(files), folder)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the ``.<name>.<random>.tmp`` files that interrupted atomic writes left behind."""
    stale = sorted(folder.glob(f".*{TMP_SUFFIX}")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
        log.warning("removed %s, left by an interrupted checkpoint write", path)
    return stale


def trim_log(path: Path, iteration: int) -> int:
    """Drop the lines of a ``train_log.jsonl`` for iterations >= ``iteration`` (a resumed run replays them);
    returns how many were dropped. Unparsable lines (a write cut by a kill) are dropped too."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            keep = int(json.loads(line)["iteration"]) < iteration
        except (ValueError, KeyError, TypeError):
            keep = False
        if keep:
            kept.append(line + "\n")
        else:
            dropped += 1
    if dropped:
        tmp = path.with_name(f".{path.name}{TMP_SUFFIX}")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)
    return dropped


def prepare_checkpoint_dir(cfg: Config, stage: str) -> Path:
    """Create the folder, refuse one that holds the other stage's checkpoints, remove stale temporary files
    and write the resolved config (``config.yaml``) and the ``STAGE`` marker."""
    folder = checkpoint_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder)
    marker = folder / STAGE_FILE
    if marker.is_file():
        previous = marker.read_text().strip()
        if previous != stage:
            raise CheckpointError(
                f"{folder} holds checkpoints of the {previous!r} stage; give this {stage!r} run its own "
                f"folder, e.g. NAME={cfg.NAME}_{stage} or another TRAIN.CHECKPOINT_DIR"
            )
    marker.write_text(stage + "\n")
    cfg.save(folder / "config.yaml")
    return folder


def capture_rng_state(device: torch.device) -> dict[str, Any]:
    """This process's Python, NumPy, torch and (on CUDA) device generator states, in a form that
    ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [str(name), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`capture_rng_state`."""
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_training_checkpoint(
    path: Union[str, Path],
    model: nn.Module,
    config: Config,
    stage: str,
    state: TrainState,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: Any,
    rng_states: list[dict[str, Any]],
    averaged: Optional[AveragedModel] = None,
) -> Path:
    """Write a resumable checkpoint atomically (``model`` is the unwrapped network, ``config`` the run's
    resolved config). With ``averaged`` (the moving average of TRAIN.EMA_DECAY) the checkpoint's model is
    the average, what inference and later stages load; the trained weights go under ``trained_model`` for
    an exact resume."""
    path = Path(path)
    extra: dict[str, Any] = {}
    if averaged is not None:
        extra = {"trained_model": model.state_dict(), "ema_updates": int(averaged.n_averaged)}
        model = averaged.module
    save_model(
        model, path, config,
        stage=stage,
        epoch=state.epoch,
        iteration=state.iteration,
        train_state=asdict(state),
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict(),
        scaler=scaler.state_dict(),
        rng=rng_states,
        **extra,
    )
    return path


@dataclass
class ResumePlan:
    """What to take from a checkpoint: ``exact`` continuation or initial ``weights`` only."""

    path: Path
    mode: str  # "exact" or "weights"
    data: dict[str, Any]
    reason: str

    def model_state(self) -> dict[str, torch.Tensor]:
        """The checkpoint's model: the moving average when the run kept one (initial weights, inference)."""
        return model_state_from_checkpoint(self.data, str(self.path))

    def trained_state(self) -> dict[str, torch.Tensor]:
        """The weights the optimiser was training (differs from :meth:`model_state` with TRAIN.EMA_DECAY)."""
        if "trained_model" not in self.data:
            return self.model_state()
        return model_state_from_checkpoint({**self.data, "model": self.data["trained_model"]}, str(self.path))

    @property
    def train_state(self) -> TrainState:
        return TrainState(**self.data["train_state"])


def plan_resume(path: Union[str, Path], cfg: Config, stage: str) -> ResumePlan:
    """Read ``path`` and decide between exact resume and initial weights (see the module docstring)."""
    path = Path(path)
    data = read_checkpoint(path)
    if data.get("format") != CHECKPOINT_FORMAT:
        return ResumePlan(path, "weights", data, "the authors' checkpoint format")
    if "train_state" not in data or "optimizer" not in data:
        return ResumePlan(path, "weights", data, "the checkpoint holds no training state")
    name = data.get("config", {}).get("NAME")
    other_stage = data.get("stage")
    if name != cfg.NAME or other_stage != stage:
        return ResumePlan(path, "weights", data, f"written by config {name!r} ({other_stage}), this run is "
                                                 f"{cfg.NAME!r} ({stage})")
    differing = config_differences(data.get("config", {}), cfg.to_dict())
    if differing:
        log.warning("resuming %s with a changed config: %s", path, ", ".join(differing[:10]))
    return ResumePlan(path, "exact", data, f"same config {cfg.NAME!r} and stage")


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (``RESUME`` ignored)."""
    out = []
    for key in sorted(set(old) | set(new)):
        full = f"{prefix}{key}"
        a, b = old.get(key), new.get(key)
        if full == "RESUME":
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{full}.")
        elif a != b:
            out.append(f"{full}: {a!r} -> {b!r}")
    return out


def resume_source(cli_path: Optional[str], cfg: Config) -> Optional[str]:
    """``--resume`` wins over the config's ``RESUME``."""
    return cli_path or cfg.RESUME
