"""Training throughput (iterations per second) of named configs on synthetic clips, per device and precision.

    python scripts/benchmark_training.py [--config video_training lite] [--device cpu cuda] [KEY=value ...]

For each config, device and precision (fp32 everywhere; AMP too on CUDA) a ``Trainer`` is built on a small
synthetic dataset written to a temporary folder (``rhmnet.dataprep.synthetic_videos``) and its
optimisation step is timed over ``--iters`` iterations after ``--warmup`` untimed ones, data loading
included (``TRAIN.NUM_WORKERS``), with one device synchronisation at the end of the timed span, so the
rate is what the training loop gets (losses leave the device every LOG_INTERVAL iterations on CUDA).
Weights are random (speed does not depend on them). On the CPU the crop and the batch are reduced by
default (``--cpu-crop``, ``--cpu-batch``) so that a run takes minutes; each row states what it used. A
config that cannot be found (e.g. ``lite`` on a branch without it) is reported and skipped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from rhmnet.cli_args import ArgumentParser
from rhmnet.config import Config, ConfigError, load_config
from rhmnet.dataprep.synthetic_videos import dataset_overrides, make_synthetic_dataset
from rhmnet.engine import DistContext, RunOptions, Trainer


def benchmark_config(
    cfg: Config, stage: str, iters: int, warmup: int, device: torch.device
) -> tuple[float, float]:
    """(iterations per second, peak memory MiB) of ``iters`` training steps after ``warmup`` steps."""
    trainer = Trainer(cfg, stage, DistContext(device=device), RunOptions(progress=False))
    trainer.net.train()
    batches = trainer.step_batches(0)  # one list of micro-batches per optimiser step
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = 0.0
    for done, micro_batches in enumerate(batches):
        if done == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
        if done == warmup + iters:
            break
        trainer.train_step(micro_batches, 0)
    else:
        raise RuntimeError(f"the synthetic epoch gave fewer than {warmup + iters} batches")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    trainer.flush_losses()
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return iters / seconds, peak


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=["video_training", "lite"], help="config names or paths")
    parser.add_argument("--device", nargs="+", default=None, help="devices (default: cpu, and cuda when available)")
    parser.add_argument("--stage", default="video", choices=("video", "pretrain"), help="training stage")
    parser.add_argument("--iters", type=int, default=None, help="timed iterations (default 3 on CPU, 30 on CUDA)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed iterations (default 1 on CPU, 5 on CUDA)")
    parser.add_argument("--cpu-crop", type=int, default=192, help="crop size on the CPU (0: the config's)")
    parser.add_argument("--cpu-batch", type=int, default=2, help="batch size on the CPU (0: the config's)")
    parser.add_argument("--workers", type=int, default=None, help="TRAIN.NUM_WORKERS (default 0 on CPU, 4 on CUDA)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data_cache: dict[int, dict[str, Path]] = {}
        for name in args.config:
            for device_name in devices:
                device = torch.device(device_name)
                cpu = device.type == "cpu"
                precisions = ["fp32"] if cpu else ["fp32", "amp"]
                for precision in precisions:
                    try:
                        base = load_config(name, list(args.overrides))
                    except ConfigError as exc:
                        print(f"skipped config {name!r}: {exc}")
                        break
                    crop = args.cpu_crop if cpu and args.cpu_crop else base.DATASETS.CROP_SIZE[0]
                    batch = args.cpu_batch if cpu and args.cpu_batch else base.TRAIN.BATCH_SIZE
                    workers = args.workers if args.workers is not None else (0 if cpu else 4)
                    iters = args.iters or (3 if cpu else 30)
                    warmup = args.warmup if args.warmup is not None else (1 if cpu else 5)
                    if crop not in data_cache:  # frames as large as the crop: no upsampling work is hidden
                        data_cache[crop] = make_synthetic_dataset(
                            Path(tmp) / f"data{crop}", size=(crop, crop), frames=8, num_train=4, num_val=1)
                    cfg = load_config(name, [
                        *args.overrides, *dataset_overrides(data_cache[crop]),
                        "MODEL.BACKBONE.PRETRAINED=false", "RESUME=", f"DATASETS.CROP_SIZE=[{crop},{crop}]",
                        f"DATASETS.RESIZE_SHORT_SIDE={crop}", f"TRAIN.BATCH_SIZE={batch}",
                        f"TRAIN.NUM_WORKERS={workers}", f"TRAIN.AMP={precision == 'amp'}",
                        f"TRAIN.SAMPLES_PER_EPOCH={batch * (warmup + iters + 1)}", "TRAIN.TENSORBOARD=false",
                        f"TRAIN.CHECKPOINT_DIR={Path(tmp) / 'checkpoints'}",
                    ])  # fmt: skip
                    rate, peak = benchmark_config(cfg, args.stage, iters, warmup, device)
                    where = (torch.cuda.get_device_name(device) if not cpu
                             else f"CPU, {torch.get_num_threads()} threads")
                    rows.append((cfg.NAME, where, precision, crop, batch, iters, rate, peak))
                    print(f"done: {cfg.NAME} on {where} ({precision}): {rate:.3f} it/s", flush=True)
    print(f"\ntraining throughput, stage {args.stage}, synthetic clips, data loading included; "
          "peak MiB = CUDA memory allocated (reset per row) or the process lifetime peak RSS on CPU")
    print(f"{'config':<16}{'device':<28}{'precision':<10}{'crop':>6}{'batch':>6}{'iters':>6}"
          f"{'it/s':>9}{'s/it':>9}{'peak MiB':>10}")
    for name, where, precision, crop, batch, iters, rate, peak in rows:
        print(f"{name:<16}{where:<28}{precision:<10}{crop:>6}{batch:>6}{iters:>6}{rate:>9.3f}{1 / rate:>9.2f}"
              f"{peak:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
