#!/usr/bin/env python
"""Synthesise training/evaluation scribbles in the authors' format from dense annotations.

  python scripts/synthesize_scribbles.py davis --root /datasets/DAVIS [--out DIR] [--seed 0]
  python scripts/synthesize_scribbles.py youtube --root /datasets/Youtube-VOS [--splits train valid]
  python scripts/synthesize_scribbles.py coco --instances instances_train2017.json --out /datasets/COCO

DAVIS writes train_scribbles/<seq>/<frame>.bmp for every annotated frame and valid_scribbles{0..4}/<seq>.bmp
(frame 0); YouTube-VOS writes <split>_scribbles/<video>/<frame>.bmp; COCO writes scribbles/<image>.bmp and
COCO_scribbles.json. Objects too small to scribble are reported and skipped.

Existing scribbles are not replaced unless --overwrite is given; the new ones are written into a hidden
folder under the output root and moved into place once every file has been written. Sequence names (from
ImageSets, --sequences or meta.json) must be plain names.
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
    davis_outputs,
    davis_sequences,
    synthesize_coco,
    synthesize_davis,
    synthesize_youtube,
    youtube_outputs,
)
from rhmnet.errors import run_cli  # noqa: E402
from rhmnet.guards import StagedOutput, check_output, safe_name  # noqa: E402
from rhmnet.ranges import AT_LEAST_0, AT_LEAST_1, Range, option  # noqa: E402

COCO_JSON = "COCO_scribbles.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (output is deterministic given it)")
    parser.add_argument(
        "--radius",
        type=option(int, AT_LEAST_0),
        nargs=2,
        default=(2, 4),
        metavar=("MIN", "MAX"),
        help="stroke half-thickness range in pixels",
    )
    parser.add_argument("--min-area", type=option(int, AT_LEAST_0), default=64,
                        help="skip objects with fewer mask pixels")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--overwrite", action="store_true", help="replace existing scribble files")
    sub = parser.add_subparsers(dest="layout", required=True)
    davis = sub.add_parser("davis", help="DAVIS-2017 layout (Annotations/480p)")
    davis.add_argument("--root", required=True, type=Path)
    davis.add_argument("--out", type=Path, default=None, help="output root (default: --root)")
    davis.add_argument("--sequences", nargs="*", default=None, help="default: every ImageSets/2017 list")
    davis.add_argument("--groups", type=option(int, Range(0, 5)), default=5,
                       help="number of valid_scribbles{g} sets (0-5)")
    ytb = sub.add_parser("youtube", help="YouTube-VOS 2018/2019 layout")
    ytb.add_argument("--root", required=True, type=Path)
    ytb.add_argument("--out", type=Path, default=None, help="output root (default: --root)")
    ytb.add_argument("--splits", nargs="+", default=["train", "valid"])
    coco = sub.add_parser("coco", help="COCO instance annotations (pycocotools)")
    coco.add_argument("--instances", required=True, type=Path, help="instances_*.json")
    coco.add_argument(
        "--out", required=True, type=Path, help="writes <out>/scribbles and <out>/COCO_scribbles.json"
    )
    coco.add_argument("--limit", type=option(int, AT_LEAST_1), default=None,
                      help="only the first N images (by id)")
    args = parser.parse_args(argv)
    low, high = args.radius
    if not low <= high:
        parser.error(f"--radius MIN MAX needs MIN <= MAX, got {low} {high}")
    root = getattr(args, "root", None)
    if root is not None and not root.is_dir():
        parser.error(f"--root {root}: no such folder")
    for name in getattr(args, "sequences", None) or ():
        try:
            safe_name(name, "--sequences", "sequence name")
        except ValueError as exc:
            parser.error(str(exc))
    return args


def planned_outputs(args: argparse.Namespace) -> list[str]:
    """The files and folders the run writes under its output root (relative paths)."""
    if args.layout == "davis":
        names = args.sequences if args.sequences is not None else davis_sequences(args.root)
        if not names:
            raise DatasetError(f"DAVIS: no sequences found under {args.root} (no ImageSets/2017/*.txt, no annotations)")
        return davis_outputs(names, args.groups)
    if args.layout == "youtube":
        return youtube_outputs(args.root, args.splits)
    return ["scribbles", COCO_JSON]


def synthesize(args: argparse.Namespace, out: Path) -> SynthesisReport:
    """Run the layout's synthesis, writing under ``out``."""
    style = ScribbleStyle(radius=(args.radius[0], args.radius[1]), min_area=args.min_area)
    progress = not args.quiet
    if args.layout == "davis":
        return synthesize_davis(args.root, out, seed=args.seed, style=style, sequences=args.sequences,
                                groups=args.groups, progress=progress)
    if args.layout == "youtube":
        return synthesize_youtube(args.root, out, seed=args.seed, style=style, splits=args.splits, progress=progress)
    return synthesize_coco(args.instances, out, seed=args.seed, style=style, limit=args.limit, progress=progress,
                           json_name=COCO_JSON)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out if args.out is not None else args.root
    items = planned_outputs(args)
    check_output(out, args.overwrite, items, "output root")  # before any work: never rewrite scribbles silently
    with StagedOutput(out, items) as stage:
        report = synthesize(args, stage)
    print(report.summary())
    return 0


def cli(argv: list[str] | None = None) -> int:
    """:func:`main` with bad input reported in one line (exit 2) and a failed write as exit 1."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
