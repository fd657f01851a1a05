"""The training loop shared by the pre-training and video-training scripts.

Per iteration (one optimiser step over TRAIN.ACCUMULATE_STEPS = k micro-batches): for each micro-batch,
forward (and the no-gradient reversed pass when the consistency loss is on; never in pre-training, as in
the authors' pre-training script) and backward of the total loss divided by k (mixed precision on CUDA
when TRAIN.AMP; under DDP the gradients are all-reduced on the last micro-batch only); then optional
gradient clipping (TRAIN.GRAD_CLIP), optimiser step, schedule step. One process with k micro-batches of B
clips computes the same step as k processes with B clips each.

The loss terms (averaged over the micro-batches) are averaged over the processes and checked (a NaN/Inf
stops the run naming the iteration and the terms) in groups: every ``RunOptions.loss_sync_interval``
iterations (default: every iteration on the CPU, where it costs nothing, and every LOG_INTERVAL iterations
on CUDA, so that the GPU does not wait for the host in between), at every log step and before every
checkpoint. The same reduction tells every process whether one of them received SIGTERM/SIGINT. This is the
loop's only host synchronisation besides the AMP scaler's inf check. With a group of N a non-finite loss is
still reported with its own iteration, but up to N - 1 further steps may have been taken (no checkpoint is
written after it). Every term is written per iteration (the value of that iteration, averaged over the
processes, whatever the grouping) to ``train_log.jsonl`` in the checkpoint folder and, when
TRAIN.TENSORBOARD and ``tensorboard`` is installed, to TensorBoard (with prediction overlays every
LOG_INTERVAL iterations); rank 0 shows a tqdm bar and logs a line every LOG_INTERVAL iterations.

Frame-gap curriculum: every SKIP_INCREASE_STEP iterations the skip grows by one up to MAX_SKIP and is set
on the dataset object in the main process. With ``NUM_WORKERS = 0`` the next batch uses it; loader
workers are not persistent and hold a copy of the dataset taken when the epoch's iterator starts, so
with workers the new skip reaches them at the next epoch, as in the authors' code. Resume reproduces
both cases (``rhmnet.engine.optim.skip_at`` is a function of the iteration).

Interruptions: on SIGTERM (what cluster schedulers send before preemption) or SIGINT the current iteration
is finished, a resumable ``last_checkpoint.pth.tar`` of it is written atomically and
:class:`TrainingInterrupted` is raised with the command that resumes the run; a second SIGINT stops at once.
With several processes the request is shared through the per-iteration loss reduction, so every rank stops
after the same iteration.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import random
import shlex
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import Dataset
from tqdm import tqdm

from rhmnet.config import Config, ConfigError, LossConfig
from rhmnet.data.build import STAGES, build_train_dataset, set_skip
from rhmnet.engine.checkpoints import (
    LAST_CHECKPOINT,
    LOG_FILE,
    ResumePlan,
    TrainState,
    capture_rng_state,
    checkpoint_dir,
    epoch_checkpoint_path,
    guard_earlier_run,
    plan_resume,
    prepare_checkpoint_dir,
    restore_rng_state,
    resume_source,
    save_training_checkpoint,
    trim_log,
)
from rhmnet.engine.data import EpochSeededDataset, build_loader, derive_seed, start_epoch, to_device
from rhmnet.engine.distributed import DistContext, all_gather_object, all_reduce_mean
from rhmnet.engine.optim import build_optimizer, build_scheduler, resolve_schedule, skip_at
from rhmnet.engine.step import forward_and_losses
from rhmnet.engine.visualize import overlay_clip
from rhmnet.errors import RHMNetError
from rhmnet.losses import LossTerms
from rhmnet.model.rhmnet import position_table_size
from rhmnet.model_io import build_model, load_weights, use_checkpoint_position_table

log = logging.getLogger("rhmnet.train")

TERM_NAMES = tuple(f.name for f in dataclasses.fields(LossTerms))
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class NonFiniteLossError(RHMNetError, RuntimeError):
    """A loss term became NaN or Inf; training stops (the run failed: exit status 1)."""

    exit_code = 1


class TrainingInterrupted(RHMNetError, RuntimeError):
    """SIGTERM/SIGINT stopped training after a resumable checkpoint was written."""

    label = "interrupted"

    def __init__(self, signum: int, checkpoint: Optional[Path], iteration: int, resume_command: str) -> None:
        self.signum, self.checkpoint, self.iteration = signum, checkpoint, iteration
        name = signal.Signals(signum).name
        super().__init__(f"{name} received: stopped after iteration {iteration}, checkpoint {checkpoint}; "
                         f"resume with: {resume_command}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal (143 for SIGTERM, 130 for SIGINT)."""
        return 128 + self.signum


def resume_command(checkpoint: Path, argv: Optional[list[str]]) -> str:
    """The command line ``argv`` (as in ``sys.argv``) with ``--resume checkpoint`` in place of any earlier
    ``--resume`` and ``--overwrite``; just ``--resume checkpoint`` when ``argv`` is None."""
    if not argv:
        return f"--resume {shlex.quote(str(checkpoint))}"
    rest, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg == "--resume":
            skip = True
        elif not arg.startswith("--resume=") and arg != "--overwrite":
            rest.append(arg)
    return shlex.join(["python", argv[0], *rest, "--resume", str(checkpoint)])


@dataclass
class RunOptions:
    """Run controls that are not part of the experiment config."""

    resume: Optional[str] = None  # checkpoint path; else cfg.RESUME
    max_iters: Optional[int] = None  # stop after this many (global) iterations and save last_checkpoint
    save_every: int = 0  # also write last_checkpoint every N iterations (0: only at epoch ends)
    progress: bool = True  # tqdm bar on rank 0
    shuffle: bool = True  # shuffle the sample order per epoch (off: fixed order, for tests)
    overwrite: bool = False  # replace an earlier run's checkpoints and log in the checkpoint folder
    extend_schedule: bool = False  # max_iters beyond TRAIN.EPOCH epochs raises TRAIN.EPOCH (else an error)
    handle_signals: bool = True  # SIGTERM/SIGINT: checkpoint the current iteration, then stop (main thread)
    command: Optional[list[str]] = None  # the command line (sys.argv) to print with --resume on a signal
    loss_sync_interval: Optional[int] = None  # iterations between loss all-reduce/checks; None: 1 on CPU,
    # TRAIN.LOG_INTERVAL on CUDA (records are identical either way: one per iteration)


@dataclass
class TrainResult:
    """What a run did: final state, per-iteration loss terms, written checkpoints, throughput."""

    state: TrainState
    history: list[dict[str, float]] = field(default_factory=list)
    checkpoints: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    iterations_per_second: float = 0.0


def stage_loss_config(cfg: Config, stage: str) -> LossConfig:
    """The loss settings of ``stage``: pre-training never computes the consistency loss (the authors'
    pre-training script has none), whatever TRAIN.LOSS.CONSISTENCY.WEIGHT says."""
    loss = cfg.TRAIN.LOSS
    if stage == "pretrain" and loss.CONSISTENCY.WEIGHT != 0:
        log.warning("TRAIN.LOSS.CONSISTENCY.WEIGHT=%g is ignored in pre-training (as in the authors' code)",
                    loss.CONSISTENCY.WEIGHT)
        loss = copy.deepcopy(loss)
        loss.CONSISTENCY.WEIGHT = 0.0
    return loss


def _groups(batches: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive groups of ``size`` items (an incomplete last group is dropped)."""
    group: list[Any] = []
    for item in batches:
        group.append(item)
        if len(group) == size:
            yield group
            group = []


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
            raise ConfigError(f"unknown training stage {stage!r} (expected one of {', '.join(STAGES)})")
        # the run's own copy: what is resolved below (position table, an extended schedule) is written into it
        # and into the run's checkpoints, never into the caller's config
        cfg = copy.deepcopy(cfg)
        self.cfg, self.stage, self.ctx = cfg, stage, ctx
        self.options = options or RunOptions()
        self.device = ctx.device
        train = cfg.TRAIN
        self.amp = bool(train.AMP) and self.device.type == "cuda"
        if train.AMP and not self.amp:
            log.warning("TRAIN.AMP is ignored on %s (mixed precision runs on CUDA only)", self.device)

        resume_path = resume_source(self.options.resume, cfg)
        plan = plan_resume(resume_path, cfg, stage) if resume_path else None
        # before any work: never mix this run into an earlier one's folder without --resume/--overwrite
        guard_earlier_run(cfg, plan is not None and plan.mode == "exact", self.options.overwrite,
                          delete=ctx.is_main)

        # same initial weights on every rank (DDP also broadcasts rank 0's)
        seed_everything(train.SEED)
        if plan is not None:  # a table size the config does not name comes from the checkpoint
            use_checkpoint_position_table(cfg, plan.model_state())
        cfg.MODEL.POS_TABLE_SIZE = position_table_size(cfg)  # explicit in every checkpoint of this run
        model_cfg = copy.deepcopy(cfg)
        if plan is not None:  # the checkpoint provides the backbone: no ImageNet download
            model_cfg.MODEL.BACKBONE.PRETRAINED = False
        net = build_model(model_cfg, "cpu")
        if plan is not None:
            # an exact resume continues the trained weights; a new stage starts from the run's model
            load_weights(net, plan.trained_state() if plan.mode == "exact" else plan.model_state(), str(plan.path))
            log.info("%s %s (%s)", "resuming from" if plan.mode == "exact" else "initial weights from",
                     plan.path, plan.reason)
        self.net = net.to(self.device)
        self.ema = self._build_average(plan)

        base = dataset if dataset is not None else build_train_dataset(cfg, stage)
        self.dataset = EpochSeededDataset(base, train.SEED)
        self.loader, self.sampler, self.generator = build_loader(
            self.dataset, ctx, train.BATCH_SIZE, train.NUM_WORKERS, train.SEED, self.options.shuffle,
            pin_memory=train.PIN_MEMORY)
        self.accumulate = train.ACCUMULATE_STEPS
        # iterations are optimiser steps of ACCUMULATE_STEPS micro-batches each
        self.iters_per_epoch = len(self.sampler) // train.BATCH_SIZE // self.accumulate
        if self.iters_per_epoch < 1:
            raise ConfigError(
                f"an epoch gives {len(self.sampler)} samples per process ({len(self.dataset)} over "
                f"{ctx.world_size} processes), fewer than TRAIN.BATCH_SIZE x TRAIN.ACCUMULATE_STEPS = "
                f"{train.BATCH_SIZE} x {self.accumulate}"
            )
        self.total_iters = train.EPOCH * self.iters_per_epoch
        self._check_max_iters()
        self.loss_cfg = stage_loss_config(cfg, stage)
        if ctx.is_main:
            log.info("%s: %d process(es) x %d clips x %d accumulation step(s) = global batch %d; %d optimiser "
                     "steps per epoch; learning-rate schedule %s", stage, ctx.world_size, train.BATCH_SIZE,
                     self.accumulate, ctx.world_size * train.BATCH_SIZE * self.accumulate, self.iters_per_epoch,
                     resolve_schedule(cfg, stage))

        self.optimizer = build_optimizer(self.net, cfg)
        self.scheduler = build_scheduler(self.optimizer, cfg, self.iters_per_epoch, stage)
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
        interval = self.options.loss_sync_interval
        self.loss_sync_interval = max(1, interval if interval is not None else
                                      (1 if self.device.type == "cpu" else train.LOG_INTERVAL))
        self._pending: list[dict[str, Any]] = []  # iterations whose loss terms are still on the device
        self._emit = _discard  # set by fit(): where checked records go
        if ctx.is_main:
            prepare_checkpoint_dir(cfg, stage)
            if self.writer is None and train.TENSORBOARD:
                self.writer = open_tensorboard(cfg)

    # -- setup ---------------------------------------------------------------------------------------------
    def _check_max_iters(self) -> None:
        """``max_iters`` beyond the schedule (TRAIN.EPOCH epochs) extends it when ``extend_schedule`` (TRAIN.EPOCH
        of the run's config, which its checkpoints record), else is an error naming both numbers."""
        wanted, train = self.options.max_iters, self.cfg.TRAIN
        if wanted is None or wanted <= self.total_iters:
            return
        epochs = math.ceil(wanted / self.iters_per_epoch)
        if not self.options.extend_schedule:
            raise ConfigError(
                f"{wanted} iterations requested (--max-iters) but the config's schedule has {self.total_iters} "
                f"(TRAIN.EPOCH={train.EPOCH} x {self.iters_per_epoch} iterations per epoch); set "
                f"TRAIN.EPOCH={epochs} to train that long"
            )
        log.info("%d iterations requested: schedule extended from TRAIN.EPOCH=%d (%d iterations) to "
                 "TRAIN.EPOCH=%d", wanted, train.EPOCH, self.total_iters, epochs)
        train.EPOCH = epochs
        self.total_iters = epochs * self.iters_per_epoch

    def _build_average(self, plan: Optional[ResumePlan]) -> Optional[AveragedModel]:
        """The exponential moving average of the weights (TRAIN.EMA_DECAY > 0), restored on an exact resume
        of a run that kept one; None when off."""
        decay = float(self.cfg.TRAIN.EMA_DECAY)
        if decay == 0:
            return None
        average = AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
        if plan is not None and plan.mode == "exact" and "trained_model" in plan.data:
            load_weights(average.module, plan.model_state(), str(plan.path))
            average.n_averaged.fill_(int(plan.data.get("ema_updates", 1)))
        return average

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
        log_file = None
        if self.ctx.is_main:
            dropped = trim_log(self.folder / LOG_FILE, state.iteration)
            if dropped:
                log.info("%s: dropped %d line(s) of iterations >= %d (replayed after the resume)",
                         self.folder / LOG_FILE, dropped, state.iteration)
            log_file = (self.folder / LOG_FILE).open("a")
        start, first_done = time.perf_counter(), None

        def emit(record: dict[str, float]) -> None:
            result.history.append(record)
            self._report(record, bar, log_file)

        self._emit = emit
        restore_signals = self._install_signal_handlers()
        try:
            while state.iteration < stop_at:
                epoch, before = state.epoch, state.iteration
                for micro_batches in self.step_batches(epoch, state.batch_in_epoch):
                    self.train_step(micro_batches, epoch)
                    first_done = first_done or (time.perf_counter(), state.iteration)
                    if self._stop_requested():
                        self._stop(result)
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
            self.flush_losses()
        finally:
            self._emit = _discard  # ``emit`` refers to this trainer: no cycle may outlive fit (see cleanup)
            restore_signals()
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

    def step_batches(self, epoch: int, start_step: int = 0) -> Iterator[list[dict[str, Any]]]:
        """The micro-batches of ``epoch`` grouped one list per optimiser step, from step ``start_step`` on
        (what :meth:`train_step` takes; benchmarks drive the loop with these two)."""
        return _groups(self._epoch_batches(epoch, start_step), self.accumulate)

    def _epoch_batches(self, epoch: int, start_batch: int):
        """Micro-batches of ``epoch`` from optimiser step ``start_batch`` on, with the dataset's skip as an
        uninterrupted run would have it (workers copy the dataset when the iterator starts)."""
        cfg, first = self.cfg, epoch * self.iters_per_epoch
        workers = cfg.TRAIN.NUM_WORKERS > 0
        set_skip(self.dataset, skip_at(first if workers else first + start_batch, cfg))
        batches = start_epoch(self.loader, self.sampler, self.generator, self.ctx, cfg.TRAIN.SEED, epoch,
                              start_batch * self.accumulate)
        set_skip(self.dataset, skip_at(first + start_batch, cfg))  # the main process's copy
        return batches

    def _micro_step(self, batch: dict[str, Any], last: bool) -> tuple[torch.Tensor, Any]:
        """Forward and backward of one micro-batch (loss divided by the accumulation count); gradients are
        synchronised across processes only on the ``last`` micro-batch. Returns the detached loss terms."""
        sync = last or not self.ctx.distributed
        with contextlib.nullcontext() if sync else self.model.no_sync():
            with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                terms, out, _ = forward_and_losses(self.model, batch, self.loss_cfg)
            loss = terms.total if self.accumulate == 1 else terms.total / self.accumulate
            self.scaler.scale(loss).backward()
        return torch.stack([getattr(terms, name).detach().float() for name in TERM_NAMES]), out

    def _check_losses(self) -> None:
        """Average the unchecked pending loss terms over the processes (one all-reduce, one copy to the
        host), learn whether any process was signalled, and stop on the first non-finite loss."""
        todo = [item for item in self._pending if "floats" not in item]
        if not todo:
            return
        terms = torch.stack([item["terms"] for item in todo])
        flag = terms.new_full((1,), float(self._signal is not None))
        reduced = all_reduce_mean(torch.cat([terms.flatten(), flag]), self.ctx)
        self._stop_agreed = bool(reduced[-1] > 0)  # some rank was signalled: all stop after this iteration
        rows = reduced[:-1].view(len(todo), -1).tolist()
        for item, values in zip(todo, rows):
            floats = dict(zip(TERM_NAMES, values))
            bad = [name for name, value in floats.items() if not math.isfinite(value)]
            if bad:
                shown = ", ".join(f"{name}={value:.6g}" for name, value in floats.items())
                later = (f" (checked at iteration {todo[-1]['iteration']}: losses are checked every "
                         f"{self.loss_sync_interval} iterations)" if item is not todo[-1] else "")
                raise NonFiniteLossError(
                    f"non-finite loss at iteration {item['iteration']} (epoch {item['epoch']}, batch "
                    f"{item['batch']}): {', '.join(bad)} not finite ({shown}){later}; stopping. Try a lower "
                    f"TRAIN.LR, TRAIN.GRAD_CLIP > 0 or TRAIN.AMP=False; checkpoints so far are in {self.folder}"
                )
            item["floats"] = floats

    def _emit_checked(self) -> None:
        """Hand the checked records of completed steps, in order, to the log."""
        while self._pending and "floats" in self._pending[0] and "skip" in self._pending[0]:
            item = self._pending.pop(0)
            self._emit({"iteration": item["iteration"], "epoch": item["epoch"], **item["floats"],
                        "lr": item["lr"], "backbone_lr": item["backbone_lr"], "skip": item["skip"]})

    def flush_losses(self) -> None:
        """Check and log every pending iteration (before checkpoints and at the end of the run)."""
        self._check_losses()
        self._emit_checked()

    def train_step(self, micro_batches: list[dict[str, Any]], epoch: int) -> None:
        """One optimisation step over the micro-batches; its loss terms (averaged over them) stay on the
        device until :meth:`_check_losses`, which runs before the optimiser step when one is due."""
        cfg, state = self.cfg, self.state
        index = state.iteration
        lrs = [group["lr"] for group in self.optimizer.param_groups]
        self.optimizer.zero_grad(set_to_none=True)
        values, out, batch = None, None, None
        for m, micro in enumerate(micro_batches):
            batch = to_device(micro, self.device)
            micro_values, out = self._micro_step(batch, last=m == len(micro_batches) - 1)
            values = micro_values if values is None else values + micro_values
        values = values / len(micro_batches)
        pending = {"iteration": index, "epoch": epoch, "batch": state.batch_in_epoch, "terms": values,
                   "lr": lrs[0], "backbone_lr": lrs[-1]}
        self._pending.append(pending)
        log_step = index % cfg.TRAIN.LOG_INTERVAL == 0
        if log_step or len(self._pending) >= self.loss_sync_interval:
            self._check_losses()  # before the step: with an interval of 1 no step follows a bad loss
        if cfg.TRAIN.GRAD_CLIP > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.TRAIN.GRAD_CLIP)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            update_moving_average(self.ema, self.net)
        state.iteration += 1
        new_skip = skip_at(state.iteration, cfg)
        if new_skip != state.skip:
            set_skip(self.dataset, new_skip)
            log.info("iteration %d: frame gap (skip) %d -> %d%s", state.iteration, state.skip, new_skip,
                     " (loader workers see it from the next epoch)" if cfg.TRAIN.NUM_WORKERS > 0 else "")
            state.skip = new_skip
        pending["skip"] = state.skip
        self._emit_checked()
        if self.writer is not None and self.ctx.is_main and index % cfg.TRAIN.LOG_INTERVAL == 0:
            probs = [frame[-1] for frame in out.mask_probs]
            grid = overlay_clip(batch["images"], batch["scribbles"], probs,
                                normalisation=self.net.backbone.normalisation)
            self.writer.add_image("predictions", grid, index, dataformats="HWC")

    # -- interruption ------------------------------------------------------------------------------------
    _signal: Optional[int] = None
    _stop_agreed: bool = False

    def _install_signal_handlers(self):
        """Catch SIGTERM/SIGINT (main thread only); returns a function that restores the old handlers."""
        if not self.options.handle_signals or threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}

        def on_signal(signum: int, frame: Any) -> None:
            if signum == signal.SIGINT and self._signal is not None:
                raise KeyboardInterrupt  # a second Ctrl-C stops at once
            self._signal = signum
            log.warning("%s received: finishing iteration %d, then writing a checkpoint and stopping "
                        "(Ctrl-C again to stop at once)", signal.Signals(signum).name, self.state.iteration)

        for sig in STOP_SIGNALS:
            signal.signal(sig, on_signal)

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore

    def _stop_requested(self) -> bool:
        """A signal arrived (this process), or some rank reported one in the last reduction."""
        if self.ctx.world_size == 1:
            return self._signal is not None
        return self._stop_agreed

    def _stop(self, result: TrainResult) -> None:
        """Write the checkpoint of the current iteration and raise :class:`TrainingInterrupted`."""
        path = self.folder / LAST_CHECKPOINT
        result.checkpoints += self._save(path)
        if self.state.batch_in_epoch == 0:  # an epoch just ended: write its checkpoint as the loop would
            result.checkpoints += self._save(epoch_checkpoint_path(self.cfg, self.state.epoch))
        signum = self._signal if self._signal is not None else signal.SIGTERM
        command = resume_command(path, self.options.command)
        if self.ctx.is_main:
            log.warning("stopped by %s after iteration %d; resume with:\n  %s", signal.Signals(signum).name,
                        self.state.iteration, command)
        raise TrainingInterrupted(signum, path, self.state.iteration, command)

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
        if index % self.cfg.TRAIN.LOG_INTERVAL == 0:
            terms = "  ".join(f"{name} {record[name]:.5g}" for name in TERM_NAMES)
            log.info("epoch %d  iter %d/%d  %s  lr %.3e  skip %d", record["epoch"], index + 1,
                     self.total_iters, terms, record["lr"], record["skip"])

    def _save(self, path: Path) -> list[Path]:
        """Write a checkpoint (rank 0; every rank contributes its RNG state) once the pending losses are
        checked and logged."""
        self.flush_losses()
        rng_states = all_gather_object(capture_rng_state(self.device), self.ctx)
        if not self.ctx.is_main:
            return []
        save_training_checkpoint(path, self.net, self.cfg, self.stage, self.state, self.optimizer, self.scheduler,
                                 self.scaler, rng_states, averaged=self.ema)
        log.info("saved %s (iteration %d, epoch %d)", path, self.state.iteration, self.state.epoch)
        return [path]


def update_moving_average(average: AveragedModel, net: nn.Module) -> None:
    """One step of the moving average of ``net``'s weights. They change in place in ``average.module``,
    which training never runs: its backbone drops its folded copies (rebuilt by ``train()``, ``eval()`` or
    ``refresh_folding()``) instead of rebuilding them at every step."""
    average.update_parameters(net)
    average.module.backbone.unfold_batch_norm()


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


def _discard(record: dict[str, float]) -> None:
    """Where checked loss records go outside :meth:`Trainer.fit`."""


def run_training(
    cfg: Config, stage: str, ctx: DistContext, options: Optional[RunOptions] = None,
    dataset: Optional[Dataset] = None,
) -> TrainResult:
    """Build a :class:`Trainer` and run it."""
    return Trainer(cfg, stage, ctx, options, dataset).fit()
