"""What object pasting (DATASETS.PASTE_OBJECTS_PROBABILITY) costs in data loading, and what it gives.

    python scripts/benchmark_pasting.py --davis outputs/demo/data/davis-train [--config lite] \
        [--probabilities 0 0.5 1] [--samples 60] [KEY=value ...]

``--davis`` is a DAVIS-layout training root with scribbles (``train_scribbles``) and dense masks, e.g. the
demo's prepared ``<out>/data/davis-train``. For each probability the DAVIS dataset of the config is built
alone (``DATASETS.SAMPLE_PROBABILITY=[0,1]``) and ``--samples`` training samples are drawn on one thread,
after one untimed sample, ``--repeats`` times, interleaved (so that other load hits every probability
alike). The table gives the median milliseconds per sample and the mean number of selected objects per
sample (the config's ``MAX_OBJECT_NUM`` caps it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from rhmnet.cli_args import ArgumentParser
from rhmnet.config import load_config
from rhmnet.data.build import build_train_dataset
from rhmnet.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis", type=Path, required=True, help="DAVIS-layout training root with scribbles and masks")
    parser.add_argument("--config", default="lite")
    parser.add_argument("--probabilities", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--skip", type=int, default=5, help="frame-gap curriculum value to sample with")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the table gives the median")
    parser.add_argument("overrides", nargs="*", metavar="KEY=value")
    return parser


def measure(config: str, overrides: list[str], samples: int, skip: int) -> tuple[float, float]:
    """(milliseconds per sample, mean selected objects) of the config's training dataset."""
    cfg = load_config(config, overrides)
    dataset = build_train_dataset(cfg, "video")
    dataset.change_skip(skip)
    dataset.reseed(0)
    dataset[0]
    start = time.perf_counter()
    objects = sum(int(dataset[i]["num_objects"]) for i in range(samples))
    return 1000 * (time.perf_counter() - start) / samples, objects / samples


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    results: dict[float, list[tuple[float, float]]] = {p: [] for p in args.probabilities}
    for repeat in range(args.repeats):
        for probability in args.probabilities:
            overrides = [f"DATASETS.DAVIS.PATH={args.davis}", "DATASETS.SAMPLE_PROBABILITY=[0,1]",
                         f"DATASETS.PASTE_OBJECTS_PROBABILITY={probability}", *args.overrides]
            results[probability].append(measure(args.config, overrides, args.samples, args.skip))
            print(f"repeat {repeat + 1}, probability {probability:g}: {results[probability][-1][0]:.1f} ms", flush=True)
    rows = ["| PASTE_OBJECTS_PROBABILITY | ms per sample (median) | selected objects per sample |", "|---|---|---|"]
    for probability, runs in results.items():
        rows.append(f"| {probability:g} | {statistics.median(r[0] for r in runs):.1f} | {runs[0][1]:.2f} |")
    print("\n".join([f"{args.config} on {args.davis}, {args.samples} samples, skip {args.skip}, 1 thread", *rows]))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
