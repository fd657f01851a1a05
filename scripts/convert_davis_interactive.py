#!/usr/bin/env python
"""Render official DAVIS interactive scribble files (JSON) into evaluation scribbles
valid_scribbles{g}/{sequence}.bmp (+ a sidecar {sequence}.json recording the frame index).

  python scripts/convert_davis_interactive.py --davis-root /datasets/DAVIS --out /datasets/DAVIS \
      Scribbles/bear/001.json Scribbles/bear/002.json      # files: group = file number - 1
  python scripts/convert_davis_interactive.py --davis-root /datasets/DAVIS --out /datasets/DAVIS Scribbles/

By default the first frame that carries strokes is rendered (a note is printed when it is not frame 0);
its index and the object count are in the sidecar, from which eval_davis.py initialises on that frame and
propagates forwards and backwards; --frame picks the frame to render (an error when it has no strokes).
Background strokes (object_id 0) get the value N+1. Existing scribbles are replaced only with --overwrite,
and only after every file has been converted (into a hidden folder under --out, then moved into place).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from tqdm import tqdm

from rhmnet.cli_args import ArgumentParser
from rhmnet.data.io import DatasetError
from rhmnet.dataprep.davis_interactive import convert_interactive_file
from rhmnet.errors import run_cli
from rhmnet.guards import StagedOutput, check_output
from rhmnet.labels import MAX_OBJECTS
from rhmnet.ranges import AT_LEAST_0, AT_LEAST_1, Range, option


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "inputs", nargs="+", type=Path, help="scribble JSON files or folders of <seq>/<nnn>.json"
    )
    parser.add_argument("--out", required=True, type=Path, help="root receiving valid_scribbles{g}/")
    parser.add_argument(
        "--davis-root",
        type=Path,
        default=None,
        help="DAVIS root: frame size from JPEGImages/480p, N from Annotations/480p",
    )
    parser.add_argument(
        "--size",
        type=option(int, AT_LEAST_1),
        nargs=2,
        default=None,
        metavar=("HEIGHT", "WIDTH"),
        help="frame size when no --davis-root is given",
    )
    parser.add_argument("--group", type=option(int, AT_LEAST_0), default=None,
                        help="scribble set g (default: file number - 1)")
    parser.add_argument("--frame", type=option(int, AT_LEAST_0), default=None, help="frame whose strokes to render")
    parser.add_argument("--num-objects", type=option(int, Range(1, MAX_OBJECTS)), default=None,
                        help="N (default: from the annotations)")
    parser.add_argument("--thickness", type=option(int, Range(1, 100)), default=3,
                        help="stroke thickness in pixels (1-100)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing scribbles and sidecars")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.davis_root is None and args.size is None:
        parser.error("give --davis-root (frame sizes and object counts from the dataset) or --size HEIGHT WIDTH")
    return args


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """JSON files given directly or found (recursively) under given folders, sorted."""
    files: list[Path] = []
    for item in inputs:
        if not item.exists():
            raise DatasetError(f"{item}: no such file or folder")
        files += sorted(item.rglob("*.json")) if item.is_dir() else [item]
    return files


def group_of(path: Path, explicit: int | None) -> int:
    """The scribble set of a file: --group, else its number minus one (001.json -> 0)."""
    if explicit is not None:
        return explicit
    if not path.stem.isdigit() or int(path.stem) < 1:
        raise DatasetError(f"{path}: cannot infer the scribble set from the name (001.json is set 0); pass --group")
    return int(path.stem) - 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    files = expand_inputs(args.inputs)
    if not files:
        raise DatasetError(f"no scribble JSON files found in {', '.join(map(str, args.inputs))}")
    check_output(args.out, True, what="--out")  # a folder (or absent)
    staged = StagedOutput(args.out, [])
    with staged as stage:
        for path in tqdm(files, desc="interactive scribbles", disable=len(files) < 10):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = convert_interactive_file(
                    path,
                    stage,
                    group_of(path, args.group),
                    davis_root=args.davis_root,
                    size=tuple(args.size) if args.size else None,
                    frame=args.frame,
                    num_objects=args.num_objects,
                    thickness=args.thickness,
                )
            for warning in caught:
                print(f"warning: {str(warning.message).replace(str(stage), str(args.out))}", file=sys.stderr)
            bmp, sidecar = (str(p.relative_to(stage)) for p in (result.bmp_path, result.sidecar_path))
            staged.items += [bmp, sidecar]
            print(f"{path} -> {args.out / bmp} (frame {result.frame}, {result.num_objects} objects)")
        check_output(args.out, args.overwrite, staged.items, "--out")  # before anything is replaced
    return 0


def cli(argv: list[str] | None = None) -> int:
    """:func:`main` with bad input reported in one line (exit 2) and a failed write as exit 1."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
