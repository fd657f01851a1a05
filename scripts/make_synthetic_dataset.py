#!/usr/bin/env python
"""Write a small synthetic scribble-VOS dataset in the DAVIS, YouTube-VOS and COCO layouts.

  python scripts/make_synthetic_dataset.py --out datasets/synthetic --seed 0 --num-train 4 --num-val 2 \
      --size 128x128 --frames 12

Produces <out>/DAVIS, <out>/Youtube-VOS and <out>/COCO (point DATASETS.DAVIS.PATH, DATASETS.YTB.ROOT and
DATASETS.COCOS.* at them). Deterministic given --seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rhmnet.cli_args import ArgumentParser
from rhmnet.dataprep.synthetic_videos import LAYOUTS, add_texture_spread_argument, make_synthetic_dataset


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must look like 128x128 (HEIGHTxWIDTH), got {text!r}"
        ) from None
    return height, width


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-train", type=int, default=4)
    parser.add_argument("--num-val", type=int, default=2)
    parser.add_argument("--num-images", type=int, default=None, help="COCO images (default 2*(train+val))")
    parser.add_argument("--size", type=parse_size, default=(128, 128), help="HEIGHTxWIDTH")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    add_texture_spread_argument(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.time()
    roots = make_synthetic_dataset(
        args.out,
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        size=args.size,
        frames=args.frames,
        num_images=args.num_images,
        layouts=tuple(args.layouts),
        progress=True,
        texture_spread=args.texture_spread,
    )
    for layout, root in roots.items():
        print(f"{layout}: {root}")
    print(f"done in {time.time() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
