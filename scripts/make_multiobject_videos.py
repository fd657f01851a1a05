#!/usr/bin/env python
"""Write multi-object validation videos built from held-out DAVIS-layout sequences.

  python scripts/make_multiobject_videos.py --root ../shared/data/davis16-train --out datasets/multiobject-val \
      [--seed 0] [--donors 1 2] [--groups 1] [--sequences boat elephant ...] [--overwrite]

Each held-out sequence (default: the validation part of --root's fixed split, rhmnet/dataprep/splits.py) gets
the objects of 1-2 other held-out sequences pasted in: cut out with their masks, scaled, moved by a constant
offset (their own motion is kept), in front of its own object. Exact masks, DAVIS-2017 layout, first-frame
scribbles synthesised from the composed mask; deterministic given --seed. Evaluate a model on them with
  python eval_davis.py --checkpoint MODEL --davis-root OUT --set val --year 17 --with-bg
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rhmnet.cli_args import ArgumentParser
from rhmnet.dataprep.multiobject import make_multiobject_videos
from rhmnet.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, type=Path, help="DAVIS-layout root holding the sequences")
    parser.add_argument("--out", required=True, type=Path, help="output folder (must be empty)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequences", nargs="+", default=None,
                        help="sequences to build from (default: the validation part of --root's split)")
    parser.add_argument("--donors", type=int, nargs=2, default=(1, 2), metavar=("MIN", "MAX"),
                        help="other sequences pasted into each video")
    parser.add_argument("--groups", type=int, default=1, help="scribble sets valid_scribbles0..")
    parser.add_argument("--overwrite", action="store_true", help="replace the videos of an earlier run in --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.donors[0] <= args.donors[1]:
        parser.error(f"--donors MIN MAX needs 1 <= MIN <= MAX, got {args.donors[0]} {args.donors[1]}")
    if args.groups < 1:
        parser.error(f"--groups must be >= 1, got {args.groups}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    records = make_multiobject_videos(args.root, args.out, args.sequences, seed=args.seed,
                                      donors=tuple(args.donors), groups=args.groups, overwrite=args.overwrite,
                                      progress=not args.quiet)
    for record in records:
        print(f"{record.name}: {record.num_objects} objects, {record.frames} frames")
    print(f"{len(records)} videos, {sum(r.num_objects for r in records)} objects, written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
