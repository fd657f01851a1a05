"""Trains the tiny config for two iterations on a fixed, balanced data order; run by test_distributed.py
with and without ``torchrun``.

Usage: python ddp_worker.py SYNTHETIC_ROOT OUT_DIR GLOBAL_BATCH
(writes OUT_DIR/pretrain_weights_demo/... and OUT_DIR/last_grads.pt, the last step's gradients)

Determinism: dropout is off, the order is fixed (no shuffle) and the global batch holds every clip
twice as ``[A, B, B, A]``: ``DistributedSampler`` gives rank 0 ``[A, B]`` and rank 1 ``[B, A]``, so each
rank's batch-normalised losses equal the global batch's and the averaged gradients match a single process.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from rhmnet.data.build import build_train_dataset  # noqa: E402
from rhmnet.engine import RunOptions, Trainer, init_distributed  # noqa: E402
from rhmnet.engine.data import EpochSeededDataset, FixedSamples  # noqa: E402
from rhmnet.engine.distributed import cleanup  # noqa: E402
from tests.engine.conftest import tiny_config  # noqa: E402

ITERATIONS = 2


def main() -> None:
    root, out, global_batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    roots = {"davis": root / "DAVIS", "youtube": root / "Youtube-VOS", "coco": root / "COCO"}
    ctx = init_distributed("cpu")
    cfg = tiny_config(roots, out, "MODEL.TRANSFORMER.DROPOUT=0", "TRAIN.EPOCH=1",
                      f"TRAIN.BATCH_SIZE={global_batch // ctx.world_size}")
    clips = EpochSeededDataset(build_train_dataset(cfg, "video"), seed=123)
    order = []
    for i in range(ITERATIONS):
        a, b = clips[2 * i], clips[2 * i + 1]
        order += [a, b] * (global_batch // 4) + [b, a] * (global_batch // 4)
    try:
        trainer = Trainer(cfg, "video", ctx, RunOptions(shuffle=False, progress=False), FixedSamples(order))
        trainer.fit()
        if ctx.is_main:  # gradients of the last step (averaged over the processes by DDP)
            torch.save({n: p.grad for n, p in trainer.net.named_parameters()}, out / "last_grads.pt")
    finally:
        cleanup(ctx)


if __name__ == "__main__":
    main()
