#!/usr/bin/env python
"""Synthesise training/evaluation scribbles in the authors' format from dense annotations.

  python scripts/synthesize_scribbles.py davis --root /datasets/DAVIS [--out DIR] [--seed 0]
  python scripts/synthesize_scribbles.py youtube --root /datasets/Youtube-VOS [--splits train valid]
  python scripts/synthesize_scribbles.py coco --instances instances_train2017.json --out /datasets/COCO

DAVIS writes train_scribbles/<seq>/<frame>.bmp for every annotated frame and valid_scribbles{0..4}/<seq>.bmp
(frame 0); YouTube-VOS writes <split>_scribbles/<video>/<frame>.bmp; COCO writes scribbles/<image>.bmp and
COCO_scribbles.json. Objects too small to scribble are reported and skipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rhmnet.data.io import DatasetError  # noqa: E402
from rhmnet.dataprep.scribble_synthesis import (  # noqa: E402
    ScribbleStyle,
    SynthesisReport,
    synthesize_coco,
    synthesize_davis,
    synthesize_youtube,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (output is deterministic given it)")
    parser.add_argument(
        "--radius",
        type=int,
        nargs=2,
        default=(2, 4),
        metavar=("MIN", "MAX"),
        help="stroke half-thickness range in pixels",
    )
    parser.add_argument("--min-area", type=int, default=64, help="skip objects with fewer mask pixels")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    sub = parser.add_subparsers(dest="layout", required=True)
    davis = sub.add_parser("davis", help="DAVIS-2017 layout (Annotations/480p)")
    davis.add_argument("--root", required=True, type=Path)
    davis.add_argument("--out", type=Path, default=None, help="output root (default: --root)")
    davis.add_argument("--sequences", nargs="*", default=None, help="default: every ImageSets/2017 list")
    davis.add_argument("--groups", type=int, default=5, help="number of valid_scribbles{g} sets")
    ytb = sub.add_parser("youtube", help="YouTube-VOS 2018/2019 layout")
    ytb.add_argument("--root", required=True, type=Path)
    ytb.add_argument("--out", type=Path, default=None, help="output root (default: --root)")
    ytb.add_argument("--splits", nargs="+", default=["train", "valid"])
    coco = sub.add_parser("coco", help="COCO instance annotations (pycocotools)")
    coco.add_argument("--instances", required=True, type=Path, help="instances_*.json")
    coco.add_argument(
        "--out", required=True, type=Path, help="writes <out>/scribbles and <out>/COCO_scribbles.json"
    )
    coco.add_argument("--limit", type=int, default=None, help="only the first N images (by id)")
    args = parser.parse_args(argv)
    low, high = args.radius
    if not 0 <= low <= high:
        parser.error(f"--radius MIN MAX needs 0 <= MIN <= MAX, got {low} {high}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    style = ScribbleStyle(radius=(args.radius[0], args.radius[1]), min_area=args.min_area)
    progress = not args.quiet
    try:
        if args.layout == "davis":
            report: SynthesisReport = synthesize_davis(
                args.root,
                args.out,
                seed=args.seed,
                style=style,
                sequences=args.sequences,
                groups=args.groups,
                progress=progress,
            )
        elif args.layout == "youtube":
            report = synthesize_youtube(
                args.root, args.out, seed=args.seed, style=style, splits=args.splits, progress=progress
            )
        else:
            report = synthesize_coco(
                args.instances, args.out, seed=args.seed, style=style, limit=args.limit, progress=progress
            )
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
