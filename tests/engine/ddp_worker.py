"""Trains the tiny config for two iterations on a fixed, balanced data order; run by test_distributed.py
with and without ``torchrun``.

Usage, from the repository root: python -m tests.engine.ddp_worker SYNTHETIC_ROOT OUT_DIR GLOBAL_BATCH
[ACCUMULATE_STEPS]
(writes OUT_DIR/pretrain_weights_small_synthetic/... and OUT_DIR/first_grads.pt, the gradients the first optimiser
step applies: from identical weights, so they differ only by float summation order. Later steps start
from weights that AdamW has already pushed apart where a gradient is zero up to float noise.)

Determinism: dropout is off, the order is fixed (no shuffle).

Without ACCUMULATE_STEPS the global batch holds every clip twice as ``[A, B, B, A]``:
``DistributedSampler`` gives rank 0 ``[A, B]`` and rank 1 ``[B, A]``, so each rank's batch-normalised
losses equal the global batch's and the averaged gradients match a single process with the whole batch.

With ACCUMULATE_STEPS = k each optimiser step splits its global batch into P x k groups of different clips
(P processes); group ``m * P + r`` goes to micro-batch m of rank r. One process with k = 2 and two
processes with k = 1 then see the same two groups per step (as micro-batches or as ranks).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from rhmnet.data.build import build_train_dataset
from rhmnet.engine import RunOptions, Trainer, init_distributed
from rhmnet.engine.data import EpochSeededDataset, FixedSamples
from rhmnet.engine.distributed import cleanup
from tests.engine.conftest import tiny_config

ITERATIONS = 2


def accumulation_order(clips: list, processes: int, accumulate: int, batch: int) -> list:
    """Sample order for ITERATIONS optimiser steps: step s rotates ``clips`` by s and cuts them into
    ``processes * accumulate`` groups of ``batch``; group ``m * processes + r`` lands in micro-batch m of
    rank r (rank r reads positions r, r + P, r + 2P, ... of the order)."""
    groups_per_step = processes * accumulate
    order: list = [None] * (ITERATIONS * groups_per_step * batch)
    for step in range(ITERATIONS):
        rotated = clips[step:] + clips[:step]
        for m in range(accumulate):
            for r in range(processes):
                group = rotated[(m * processes + r) * batch:(m * processes + r + 1) * batch]
                micro = step * accumulate + m  # this rank's micro-batch count
                for i, clip in enumerate(group):
                    order[r + processes * (micro * batch + i)] = clip
    return order


def main() -> None:
    root, out, global_batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    accumulate = int(sys.argv[4]) if len(sys.argv) > 4 else None
    roots = {"davis": root / "DAVIS", "youtube": root / "Youtube-VOS", "coco": root / "COCO"}
    ctx = init_distributed("cpu")
    per_process = global_batch // ctx.world_size // (accumulate or 1)
    cfg = tiny_config(roots, out, "MODEL.TRANSFORMER.DROPOUT=0", "TRAIN.EPOCH=1",
                      f"TRAIN.BATCH_SIZE={per_process}", f"TRAIN.ACCUMULATE_STEPS={accumulate or 1}")
    clips = EpochSeededDataset(build_train_dataset(cfg, "video"), seed=123)
    order = []
    if accumulate is None:
        for i in range(ITERATIONS):
            a, b = clips[2 * i], clips[2 * i + 1]
            order += [a, b] * (global_batch // 4) + [b, a] * (global_batch // 4)
    else:
        order = accumulation_order([clips[i] for i in range(global_batch)], ctx.world_size, accumulate,
                                   per_process)
    try:
        train_and_record(cfg, ctx, order, out)  # returns with the trainer unreachable: cleanup() frees it
    finally:
        cleanup(ctx)


def train_and_record(cfg, ctx, order: list, out: Path) -> None:
    """Train on ``order`` and save the gradients the first optimiser step applies (DDP-averaged)."""
    trainer = Trainer(cfg, "video", ctx, RunOptions(shuffle=False, progress=False), FixedSamples(order))
    first_grads: dict[str, torch.Tensor] = {}
    net = trainer.net

    def record_first(optimizer, args, kwargs) -> None:
        if not first_grads:
            first_grads.update({n: p.grad.detach().clone() for n, p in net.named_parameters()
                                if p.grad is not None})

    trainer.optimizer.register_step_pre_hook(record_first)
    trainer.fit()
    if ctx.is_main:
        torch.save(first_grads, out / "first_grads.pt")

if __name__ == "__main__":
    main()
