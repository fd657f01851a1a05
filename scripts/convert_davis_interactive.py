#!/usr/bin/env python
"""Render official DAVIS interactive scribble files (JSON) into evaluation scribbles
valid_scribbles{g}/{sequence}.bmp (+ a sidecar {sequence}.json recording the frame index).

  python scripts/convert_davis_interactive.py --davis-root /datasets/DAVIS --out /datasets/DAVIS \
      Scribbles/bear/001.json Scribbles/bear/002.json      # files: group = file number - 1
  python scripts/convert_davis_interactive.py --davis-root /datasets/DAVIS --out /datasets/DAVIS Scribbles/

By default the first frame that carries strokes is rendered (a note is printed when it is not frame 0);
its index and the object count are in the sidecar, from which eval_davis.py initialises on that frame and
propagates forwards and backwards; --frame picks the frame to render (an error when it has no strokes).
Background strokes (object_id 0) get the value N+1.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from rhmnet.data.io import DatasetError  # noqa: E402
from rhmnet.dataprep.davis_interactive import convert_interactive_file  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
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
        type=int,
        nargs=2,
        default=None,
        metavar=("HEIGHT", "WIDTH"),
        help="frame size when no --davis-root is given",
    )
    parser.add_argument("--group", type=int, default=None, help="scribble set g (default: file number - 1)")
    parser.add_argument("--frame", type=int, default=None, help="frame whose strokes to render")
    parser.add_argument("--num-objects", type=int, default=None, help="N (default: from the annotations)")
    parser.add_argument("--thickness", type=int, default=3, help="stroke thickness in pixels")
    return parser.parse_args(argv)


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """JSON files given directly or found (recursively) under given folders, sorted."""
    files: list[Path] = []
    for item in inputs:
        files += sorted(item.rglob("*.json")) if item.is_dir() else [item]
    return files


def group_of(path: Path, explicit: int | None) -> int:
    """The scribble set of a file: --group, else its number minus one (001.json -> 0)."""
    if explicit is not None:
        return explicit
    if not path.stem.isdigit():
        raise DatasetError(f"{path}: cannot infer the scribble set from the name; pass --group")
    return int(path.stem) - 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    files = expand_inputs(args.inputs)
    if not files:
        print("error: no scribble JSON files found", file=sys.stderr)
        return 1
    try:
        for path in tqdm(files, desc="interactive scribbles", disable=len(files) < 10):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = convert_interactive_file(
                    path,
                    args.out,
                    group_of(path, args.group),
                    davis_root=args.davis_root,
                    size=tuple(args.size) if args.size else None,
                    frame=args.frame,
                    num_objects=args.num_objects,
                    thickness=args.thickness,
                )
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
            print(f"{path} -> {result.bmp_path} (frame {result.frame}, {result.num_objects} objects)")
    except (DatasetError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
