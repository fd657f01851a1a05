"""A fixed validation split of a DAVIS-layout training set (e.g. ``davis16-train``): settings are chosen on
sequences the model never trained on.

The rule: every sequence gets the key ``sha256("rhmnet-validation-split/<name>")`` (hex); the
``round(fraction * n)`` sequences with the smallest keys (ties impossible: names are unique) are the
validation part, the rest the training part, both listed in sorted order. The rule depends on the names
only, not on their order or on the machine (no hand-picking, no random generator).
For the 30 sequences of ``davis16-train`` and the default fraction 0.2 it gives 24 training and 6
validation sequences (``docs/generalisation.md`` lists them).

``python -m rhmnet.dataprep.splits --root ROOT --out OUT`` writes the split as a DAVIS root:
``OUT/ImageSets/{2016,2017}/{train,val}.txt`` and links to ROOT's frame and mask folders.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rhmnet.cli_args import ArgumentParser
from rhmnet.data.io import DatasetError, read_image_set
from rhmnet.errors import run_cli
from rhmnet.guards import prepare_output_dir

SPLIT_SALT = "rhmnet-validation-split"
VAL_FRACTION = 0.2
RESOLUTION = "480p"
SPLIT_OUTPUTS = ("ImageSets", "JPEGImages", "Annotations")  # what write_split writes (and --overwrite replaces)


@dataclass(frozen=True)
class Split:
    """Training and validation sequence names, each sorted."""

    train: tuple[str, ...]
    val: tuple[str, ...]


def split_key(name: str) -> str:
    """The sequence's position in the split order: a fixed hash of its name."""
    return hashlib.sha256(f"{SPLIT_SALT}/{name}".encode()).hexdigest()


def validation_split(names: Iterable[str], fraction: float = VAL_FRACTION) -> Split:
    """Split ``names`` by the module's rule: the ``round(fraction * n)`` names with the smallest
    :func:`split_key` (at least one, and at least one left for training) are validation."""
    unique = sorted(set(names))
    if len(unique) < 2:
        raise DatasetError(f"a validation split needs at least two sequences, got {len(unique)}")
    if not 0 < fraction < 1:
        raise DatasetError(f"the validation fraction must be in (0, 1), got {fraction}")
    count = min(max(1, round(fraction * len(unique))), len(unique) - 1)
    val = set(sorted(unique, key=split_key)[:count])
    return Split(tuple(n for n in unique if n not in val), tuple(n for n in unique if n in val))


def training_sequences(root: Path) -> list[str]:
    """The training sequences of a DAVIS-layout root: ``ImageSets/2017/train.txt`` (or ``2016``), else every
    folder of ``Annotations/480p``; each checked to be a plain name."""
    for year in ("2017", "2016"):
        image_set = root / "ImageSets" / year / "train.txt"
        if image_set.is_file():
            return read_image_set(image_set)  # plain names, checked by the reader
    folder = root / "Annotations" / RESOLUTION
    if not folder.is_dir():
        raise DatasetError(f"{root}: not a DAVIS-layout root (no ImageSets/2017/train.txt, no {folder})")
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def davis_split(root: str | Path, fraction: float = VAL_FRACTION) -> Split:
    """The split of a DAVIS-layout root's training sequences (:func:`training_sequences`)."""
    return validation_split(training_sequences(Path(root)), fraction)


def write_image_sets(out: Path, split: Split) -> None:
    """``out/ImageSets/{2016,2017}/{train,val}.txt``, one name a line."""
    for year in ("2016", "2017"):
        folder = out / "ImageSets" / year
        folder.mkdir(parents=True, exist_ok=True)
        for part, names in (("train", split.train), ("val", split.val)):
            (folder / f"{part}.txt").write_text("".join(f"{n}\n" for n in names))


def remove_outputs(out: Path, names: Sequence[str]) -> None:
    """Delete the entries ``names`` of ``out`` that an earlier run wrote (links are removed, not followed)."""
    for name in names:
        path = out / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)


def write_split(
    root: str | Path, out: str | Path, fraction: float = VAL_FRACTION, links: bool = True, overwrite: bool = False
) -> Split:
    """Write the split of ``root`` under ``out`` (which must be empty unless ``overwrite``): the image sets
    and, with ``links``, ``JPEGImages/480p/<seq>`` and ``Annotations/480p/<seq>`` linked to ``root``'s, so
    that ``out`` is a DAVIS root to train or evaluate on (``eval_davis.py --davis-root OUT --set val``)."""
    root, out = Path(root).resolve(), Path(out)
    split = davis_split(root, fraction)
    if links:
        for seq in (*split.train, *split.val):
            for kind in ("JPEGImages", "Annotations"):
                if not (root / kind / RESOLUTION / seq).is_dir():
                    raise DatasetError(f"{root}: sequence {seq!r} has no folder {root / kind / RESOLUTION / seq}")
    prepare_output_dir(out, overwrite, "--out")
    if overwrite:
        remove_outputs(out, SPLIT_OUTPUTS)
    write_image_sets(out, split)
    if links:
        for kind in ("JPEGImages", "Annotations"):
            folder = out / kind / RESOLUTION
            folder.mkdir(parents=True, exist_ok=True)
            for seq in (*split.train, *split.val):
                os.symlink(root / kind / RESOLUTION / seq, folder / seq, target_is_directory=True)
    return split


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, required=True, help="DAVIS-layout root to split")
    parser.add_argument("--out", type=Path, required=True, help="folder to write (must be empty)")
    parser.add_argument("--fraction", type=float, default=VAL_FRACTION, help="share of validation sequences")
    parser.add_argument("--no-links", action="store_true", help="write only the ImageSets files")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier split in --out")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    split = write_split(args.root, args.out, args.fraction, links=not args.no_links, overwrite=args.overwrite)
    print(f"train ({len(split.train)}): {' '.join(split.train)}")
    print(f"val ({len(split.val)}): {' '.join(split.val)}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
