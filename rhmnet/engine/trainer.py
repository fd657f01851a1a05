"""The training loop shared by the pre-training and video-training scripts.

Per iteration: forward (and the no-gradient reversed pass when the consistency loss is on), every loss
term averaged over the processes and checked (a NaN/Inf stops the run naming the iteration and the
terms), backward (mixed precision on CUDA when TRAIN.AMP), optional gradient clipping (TRAIN.GRAD_CLIP),
optimiser step, schedule step. Every term is written per iteration to ``train_log.jsonl`` in the
checkpoint folder and, when TRAIN.TENSORBOARD and ``tensorboard`` is installed, to TensorBoard (with
prediction overlays every LOG_INTERVAL iterations); rank 0 shows a tqdm bar and logs a line every
LOG_INTERVAL iterations.

Frame-gap curriculum: every SKIP_INCREASE_STEP iterations the skip grows by one up to MAX_SKIP and is set
on the dataset object in the main process. With ``NUM_WORKERS = 0`` the next batch uses it; loader
workers are not persistent and hold a copy of the dataset taken when the epoch's iterator starts, so
with workers the new skip reaches them at the next epoch, as in the authors' code. Resume reproduces
both cases (``rhmnet.engine.optim.skip_at`` is a function of the iteration).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset
from tqdm import tqdm

from rhmnet.checkpoint import build_model, load_weights
from rhmnet.config import Config
from rhmnet.data.build import STAGES, build_train_dataset, set_skip
from rhmnet.engine.checkpoints import (
    LAST_CHECKPOINT,
    ResumePlan,
    TrainState,
    capture_rng_state,
    checkpoint_dir,
    epoch_checkpoint_path,
    plan_resume,
    prepare_checkpoint_dir,
    restore_rng_state,
    resume_source,
    save_training_checkpoint,
)
from rhmnet.engine.data import EpochSeededDataset, build_loader, derive_seed, start_epoch, to_device
from rhmnet.engine.distributed import DistContext, all_gather_object, all_reduce_mean
from rhmnet.engine.optim import build_optimizer, build_scheduler, skip_at
from rhmnet.engine.step import forward_and_losses
from rhmnet.engine.visualize import overlay_clip
from rhmnet.losses import LossTerms

log = logging.getLogger("rhmnet.train")

TERM_NAMES = tuple(f.name for f in dataclasses.fields(LossTerms))
LOG_FILE = "train_log.jsonl"


class NonFiniteLossError(RuntimeError):
    """A loss term became NaN or Inf; training stops."""


@dataclass
class RunOptions:
    """Run controls that are not part of the experiment config."""

    resume: Optional[str] = None  # checkpoint path; else cfg.RESUME
    max_iters: Optional[int] = None  # stop after this many (global) iterations and save last_checkpoint
    save_every: int = 0  # also write last_checkpoint every N iterations (0: only at epoch ends)
    progress: bool = True  # tqdm bar on rank 0
    shuffle: bool = True  # shuffle the sample order per epoch (off: fixed order, for tests)


@dataclass
class TrainResult:
    """What a run did: final state, per-iteration loss terms, written checkpoints, throughput."""

    state: TrainState
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    iterations_per_second: float = 0.0


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Trainer:
    """Builds model, data, optimiser and schedule for one stage and runs the loop (:meth:`fit`)."""

    def __init__(
        self,
        cfg: Config,
        stage: str,
        ctx: DistContext,
        options: Optional[RunOptions] = None,
        dataset: Optional[Dataset] = None,
        writer: Any = None,
    ) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown training stage {stage!r} (expected one of {', '.join(STAGES)})")
        self.cfg, self.stage, self.ctx = cfg, stage, ctx
        self.options = options or RunOptions()
        self.device = ctx.device
        train = cfg.TRAIN
        self.amp = bool(train.AMP) and self.device.type == "cuda"
        if train.AMP and not self.amp:
            log.warning("TRAIN.AMP is ignored on %s (mixed precision runs on CUDA only)", self.device)

        resume_path = resume_source(self.options.resume, cfg)
        plan = plan_resume(resume_path, cfg, stage) if resume_path else None

        # same initial weights on every rank (DDP also broadcasts rank 0's)
        seed_everything(train.SEED)
        model_cfg = copy.deepcopy(cfg)
        if plan is not None:  # the checkpoint provides the backbone: no ImageNet download
            model_cfg.MODEL.BACKBONE.PRETRAINED = False
        net = build_model(model_cfg, "cpu")
        net.cfg = cfg  # checkpoints record the run's resolved config
        if plan is not None:
            load_weights(net, plan.model_state(), str(plan.path))
            log.info("%s %s (%s)", "resuming from" if plan.mode == "exact" else "initial weights from",
                     plan.path, plan.reason)
        self.net = net.to(self.device)

        base = dataset if dataset is not None else build_train_dataset(cfg, stage)
        self.dataset = EpochSeededDataset(base, train.SEED)
        self.loader, self.sampler, self.generator = build_loader(
            self.dataset, ctx, train.BATCH_SIZE, train.NUM_WORKERS, train.SEED, self.options.shuffle)
        self.iters_per_epoch = len(self.sampler) // train.BATCH_SIZE
        if self.iters_per_epoch < 1:
            raise ValueError(
                f"an epoch gives {len(self.sampler)} samples per process ({len(self.dataset)} over "
                f"{ctx.world_size} processes), fewer than TRAIN.BATCH_SIZE={train.BATCH_SIZE}"
            )
        self.total_iters = train.EPOCH * self.iters_per_epoch

        self.optimizer = build_optimizer(self.net, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.iters_per_epoch)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)
        self.state = TrainState(0, self.iters_per_epoch, ctx.world_size, train.BATCH_SIZE, skip_at(0, cfg))
        rng = self._load_training_state(plan) if plan is not None and plan.mode == "exact" else None

        self.model: nn.Module = self.net
        if ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.net, device_ids=ids, broadcast_buffers=False)
        if rng is not None:
            restore_rng_state(rng, self.device)
        else:
            seed_everything(derive_seed(train.SEED, ctx.rank, 1))

        self.folder = checkpoint_dir(cfg)
        self.writer = writer
        if ctx.is_main:
            prepare_checkpoint_dir(cfg, stage)
            if self.writer is None and train.TENSORBOARD:
                self.writer = open_tensorboard(cfg)

    # -- setup ---------------------------------------------------------------------------------------------
    def _load_training_state(self, plan: ResumePlan) -> Optional[dict[str, Any]]:
        """Restore optimiser, schedule, scaler and position; returns this rank's RNG state (or None when
        the run geometry changed and the continuation cannot be exact)."""
        data, saved = plan.data, plan.train_state
        self.optimizer.load_state_dict(data["optimizer"])
        self.scheduler.load_state_dict(data["scheduler"])
        self.scaler.load_state_dict(data["scaler"])
        geometry = (saved.iters_per_epoch, saved.world_size, saved.batch_size)
        current = (self.iters_per_epoch, self.ctx.world_size, self.cfg.TRAIN.BATCH_SIZE)
        self.state = dataclasses.replace(saved, iters_per_epoch=self.iters_per_epoch,
                                         world_size=self.ctx.world_size, batch_size=self.cfg.TRAIN.BATCH_SIZE)
        rng_states = data.get("rng") or []
        if geometry != current or len(rng_states) != self.ctx.world_size:
            log.warning("%s was written with (iterations/epoch, processes, batch) = %s, this run has %s: "
                        "continuing from iteration %d, but not bit-exactly", plan.path, geometry, current,
                        saved.iteration)
            return None
        return rng_states[self.ctx.rank]

    # -- loop ----------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train until TRAIN.EPOCH epochs (or ``max_iters`` iterations) are done."""
        opts, state = self.options, self.state
        stop_at = self.total_iters if opts.max_iters is None else min(self.total_iters, opts.max_iters)
        result = TrainResult(state)
        self.net.train()
        bar = tqdm(total=self.total_iters, initial=state.iteration, desc=f"{self.stage} {self.cfg.NAME}",
                   disable=not (self.ctx.is_main and opts.progress), dynamic_ncols=True, leave=True)
        log_file = (self.folder / LOG_FILE).open("a") if self.ctx.is_main else None
        start, first_done = time.perf_counter(), None
        try:
            while state.iteration < stop_at:
                epoch, before = state.epoch, state.iteration
                for batch in self._epoch_batches(epoch, state.batch_in_epoch):
                    record = self._train_step(batch, epoch)
                    result.history.append(record)
                    first_done = first_done or (time.perf_counter(), state.iteration)
                    self._report(record, bar, log_file)
                    due = opts.save_every and state.iteration % opts.save_every == 0
                    if due and state.iteration < stop_at:
                        result.checkpoints += self._save(self.folder / LAST_CHECKPOINT)
                    if state.iteration >= stop_at:
                        break
                if state.iteration == before:
                    raise RuntimeError(f"epoch {epoch} yielded no batches (iteration {before})")
                if state.batch_in_epoch == 0:
                    result.checkpoints += self._save(epoch_checkpoint_path(self.cfg, state.epoch))
            if state.iteration < self.total_iters:
                result.checkpoints += self._save(self.folder / LAST_CHECKPOINT)
        finally:
            bar.close()
            if log_file is not None:
                log_file.close()
            if self.writer is not None:
                self.writer.flush()
        result.seconds = time.perf_counter() - start
        if first_done is not None and state.iteration > first_done[1]:
            elapsed = time.perf_counter() - first_done[0]
            result.iterations_per_second = (state.iteration - first_done[1]) / elapsed
        return result

    def _epoch_batches(self, epoch: int, start_batch: int):
        """Batches of ``epoch`` from ``start_batch`` on, with the dataset's skip as an uninterrupted run
        would have it (workers copy the dataset when the iterator starts)."""
        cfg, first = self.cfg, epoch * self.iters_per_epoch
        workers = cfg.TRAIN.NUM_WORKERS > 0
        set_skip(self.dataset, skip_at(first if workers else first + start_batch, cfg))
        batches = start_epoch(self.loader, self.sampler, self.generator, self.ctx, cfg.TRAIN.SEED, epoch,
                              start_batch)
        set_skip(self.dataset, skip_at(first + start_batch, cfg))  # the main process's copy
        return batches

    def _train_step(self, batch: dict[str, Any], epoch: int) -> dict[str, float]:
        """One optimisation step; returns the logged record (loss terms averaged over processes)."""
        cfg, state = self.cfg, self.state
        index = state.iteration
        batch = to_device(batch, self.device)
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            terms, out, _ = forward_and_losses(self.model, batch, cfg.TRAIN.LOSS)
        values = torch.stack([getattr(terms, name).detach().float() for name in TERM_NAMES])
        floats = dict(zip(TERM_NAMES, all_reduce_mean(values, self.ctx).tolist()))
        bad = [name for name, value in floats.items() if not math.isfinite(value)]
        if bad:
            shown = ", ".join(f"{name}={value:.6g}" for name, value in floats.items())
            raise NonFiniteLossError(
                f"non-finite loss at iteration {index} (epoch {epoch}, batch {state.batch_in_epoch}): "
                f"{', '.join(bad)} not finite ({shown}); stopping. Try a lower TRAIN.LR, "
                f"TRAIN.GRAD_CLIP > 0 or TRAIN.AMP=False; checkpoints so far are in {self.folder}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(terms.total).backward()
        if cfg.TRAIN.GRAD_CLIP > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.TRAIN.GRAD_CLIP)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        state.iteration += 1
        new_skip = skip_at(state.iteration, cfg)
        if new_skip != state.skip:
            set_skip(self.dataset, new_skip)
            log.info("iteration %d: frame gap (skip) %d -> %d%s", state.iteration, state.skip, new_skip,
                     " (loader workers see it from the next epoch)" if cfg.TRAIN.NUM_WORKERS > 0 else "")
            state.skip = new_skip
        record = {"iteration": index, "epoch": epoch, **floats, "lr": lrs[0], "backbone_lr": lrs[-1],
                  "skip": state.skip}
        if self.writer is not None and self.ctx.is_main and index % max(1, cfg.TRAIN.LOG_INTERVAL) == 0:
            probs = [frame[-1] for frame in out.multi_pred_prob]
            grid = overlay_clip(batch["images"], batch["scribbles"], probs,
                                normalisation=self.net.backbone.normalisation)
            self.writer.add_image("predictions", grid, index, dataformats="HWC")
        return record

    def _report(self, record: dict[str, float], bar: tqdm, log_file: Any) -> None:
        """Per-iteration outputs on rank 0: JSON line, TensorBoard scalars, bar, periodic log line."""
        if not self.ctx.is_main:
            return
        index = int(record["iteration"])
        log_file.write(json.dumps({**record, "time": time.time()}) + "\n")
        log_file.flush()
        if self.writer is not None:
            for name in (*TERM_NAMES, "lr", "skip"):
                self.writer.add_scalar(f"train/{name}", record[name], index)
        bar.set_postfix(loss=f"{record['total']:.4f}", lr=f"{record['lr']:.2e}", skip=record["skip"],
                        refresh=False)
        bar.update(1)
        if index % max(1, self.cfg.TRAIN.LOG_INTERVAL) == 0:
            terms = "  ".join(f"{name} {record[name]:.5g}" for name in TERM_NAMES)
            log.info("epoch %d  iter %d/%d  %s  lr %.3e  skip %d", record["epoch"], index + 1,
                     self.total_iters, terms, record["lr"], record["skip"])

    def _save(self, path: Path) -> list[Path]:
        """Write a checkpoint (rank 0; every rank contributes its RNG state)."""
        rng_states = all_gather_object(capture_rng_state(self.device), self.ctx)
        if not self.ctx.is_main:
            return []
        save_training_checkpoint(path, self.net, self.stage, self.state, self.optimizer, self.scheduler,
                                 self.scaler, rng_states)
        log.info("saved %s (iteration %d, epoch %d)", path, self.state.iteration, self.state.epoch)
        return [path]


def open_tensorboard(cfg: Config) -> Any:
    """A SummaryWriter in ``<parent of CHECKPOINT_DIR>/tensorboard/<NAME>``, or None (with a warning) when
    the ``tensorboard`` package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("TRAIN.TENSORBOARD is on but the tensorboard package is not installed; "
                    "continuing without")
        return None
    return SummaryWriter(str(Path(cfg.TRAIN.CHECKPOINT_DIR).parent / "tensorboard" / cfg.NAME))


def run_training(
    cfg: Config, stage: str, ctx: DistContext, options: Optional[RunOptions] = None,
    dataset: Optional[Dataset] = None,
) -> TrainResult:
    """Build a :class:`Trainer` and run it."""
    return Trainer(cfg, stage, ctx, options, dataset).fit()
