"""Scribble synthesis from dense masks, for users without the authors' scribble files.

The strokes are drawn by :mod:`rhmnet.data.strokes` (random walks along the medial axis of each region;
its names are re-exported here). Everything is deterministic given the seed: each file gets its own
generator derived from the seed and the file's name.

Files are written in the authors' format (value n = object n, N+1 = background, 0 = unlabeled):
DAVIS ``train_scribbles/<seq>/<frame>.bmp`` and ``valid_scribbles{g}/<seq>.bmp``, YouTube-VOS
``train_scribbles/<video>/<frame>.bmp`` and ``valid_scribbles/<video>/<frame>.bmp``, COCO
``scribbles/<image>.bmp`` plus ``COCO_scribbles.json``.

The command ``rhmnet-synthesize-scribbles`` (:func:`cli`; also ``python scripts/synthesize_scribbles.py``)
runs it on a dataset root: see :data:`COMMAND_HELP`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rhmnet.cli_args import ArgumentParser
from rhmnet.data.io import (
    DatasetError,
    list_files,
    read_image_set,
    read_json,
    read_palette_png,
    write_json,
    write_scribble,
)
from rhmnet.data.strokes import (  # noqa: F401 (re-exported: the stroke drawing lives in the data layer)
    VOID,
    ScribbleStyle,
    border_distance,
    principal_angle,
    region_stroke,
    scribble_from_labels,
)
from rhmnet.data.youtube import parse_meta
from rhmnet.errors import run_cli
from rhmnet.guards import StagedOutput, check_output, safe_name
from rhmnet.labels import MAX_OBJECTS
from rhmnet.ranges import AT_LEAST_0, AT_LEAST_1, Range, option

COCO_JSON = "COCO_scribbles.json"


@dataclass
class SynthesisReport:
    """What a synthesis run wrote and which objects it had to skip."""

    written: int = 0
    skipped_objects: list[str] = field(default_factory=list)  # "<item>: object k (area a)"
    skipped_items: list[str] = field(default_factory=list)  # files not written, with the reason
    no_background: list[str] = field(default_factory=list)  # files without a background stroke

    def merge(self, other: SynthesisReport) -> None:
        self.written += other.written
        self.skipped_objects += other.skipped_objects
        self.skipped_items += other.skipped_items
        self.no_background += other.no_background

    def summary(self) -> str:
        lines = [f"wrote {self.written} scribble files"]
        for title, items in (
            ("objects too small to scribble (skipped)", self.skipped_objects),
            ("items skipped", self.skipped_items),
            ("files without a background stroke", self.no_background),
        ):
            if items:
                shown = "; ".join(items[:10]) + ("; ..." if len(items) > 10 else "")
                lines.append(f"{len(items)} {title}: {shown}")
        return "\n".join(lines)


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator that depends only on the seed and the item's name (order-independent)."""
    key = zlib.crc32("/".join(str(p) for p in parts).encode())
    return np.random.default_rng([int(seed), key])


def _object_ids(labels: np.ndarray) -> list[int]:
    return [int(v) for v in np.unique(labels) if 0 < v < VOID]


def _scribble_file(
    labels: np.ndarray,
    num_objects: int,
    out_path: Path,
    rng: np.random.Generator,
    style: ScribbleStyle,
    item: str,
    report: SynthesisReport,
) -> None:
    """Synthesise and write one video scribble file (objects keep their ids, background N+1)."""
    if num_objects > MAX_OBJECTS:
        raise DatasetError(
            f"{item}: {num_objects} objects; the scribble format supports at most {MAX_OBJECTS}"
        )
    scribble, skipped, has_background = scribble_from_labels(
        labels, _object_ids(labels), num_objects + 1, rng, style
    )
    report.skipped_objects += [f"{item}: object {obj} (area {area})" for obj, area in skipped]
    if not has_background:
        report.no_background.append(item)
    write_scribble(out_path, scribble)
    report.written += 1


def _max_object_id(label_files: Iterable[Path]) -> int:
    return max((max(_object_ids(read_palette_png(p)), default=0) for p in label_files), default=0)


def davis_sequences(root: Path, resolution: str = "480p") -> list[str]:
    """Sequences of every ``ImageSets/2017/*.txt`` list, or every annotation folder when there is none."""
    lists = sorted((root / "ImageSets" / "2017").glob("*.txt"))
    if lists:
        names = [name for path in lists for name in read_image_set(path)]
        return list(dict.fromkeys(names))
    folder = root / "Annotations" / resolution
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def synthesize_davis(
    root: str | Path,
    out_root: str | Path | None = None,
    seed: int = 0,
    style: ScribbleStyle | None = None,
    sequences: Sequence[str] | None = None,
    groups: int = 5,
    resolution: str = "480p",
    progress: bool = True,
) -> SynthesisReport:
    """DAVIS: ``train_scribbles/<seq>/<frame>.bmp`` for every annotated frame and
    ``valid_scribbles{g}/<seq>.bmp`` (frame 0, g = 0..groups-1, different strokes per g), written under
    ``out_root`` (default: ``root``). N = the sequence's highest object id."""
    root = Path(root)
    out_root = Path(out_root) if out_root is not None else root
    style = style or ScribbleStyle()
    names = ([safe_name(n, "--sequences", "sequence name") for n in sequences] if sequences is not None
             else davis_sequences(root, resolution))
    if not names:
        raise DatasetError(
            f"DAVIS: no sequences found under {root} (no ImageSets/2017/*.txt, no annotations)"
        )
    report = SynthesisReport()
    for name in tqdm(names, desc="DAVIS scribbles", disable=not progress):
        files = list_files(root / "Annotations" / resolution / name, (".png",))
        if not files:
            raise DatasetError(
                f"DAVIS: no annotations for {name!r} in {root / 'Annotations' / resolution / name}"
            )
        labels = [read_palette_png(p) for p in files]
        num_objects = max((max(_object_ids(lab), default=0) for lab in labels), default=0)
        for path, label in zip(files, labels):
            _scribble_file(
                label,
                num_objects,
                out_root / "train_scribbles" / name / f"{path.stem}.bmp",
                rng_for(seed, "davis-train", name, path.stem),
                style,
                f"{name}/{path.stem}",
                report,
            )
        for group in range(groups):
            _scribble_file(
                labels[0],
                num_objects,
                out_root / f"valid_scribbles{group}" / f"{name}.bmp",
                rng_for(seed, "davis-valid", group, name),
                style,
                f"valid{group}/{name}",
                report,
            )
    return report


def youtube_videos(root: Path, split: str) -> list[str]:
    """The videos of a YouTube-VOS split: the folders of ``<split>/Annotations``, sorted."""
    folder = Path(root) / split / "Annotations"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def davis_outputs(names: Sequence[str], groups: int) -> list[str]:
    """What :func:`synthesize_davis` writes under its output root for ``names``, as relative paths."""
    return [*(f"train_scribbles/{n}" for n in names),
            *(f"valid_scribbles{g}/{n}.bmp" for g in range(groups) for n in names)]


def youtube_outputs(root: Path, splits: Sequence[str]) -> list[str]:
    """What :func:`synthesize_youtube` writes under its output root, as relative paths."""
    return [f"{split}_scribbles/{video}" for split in splits for video in youtube_videos(root, split)]


def synthesize_youtube(
    root: str | Path,
    out_root: str | Path | None = None,
    seed: int = 0,
    style: ScribbleStyle | None = None,
    splits: Sequence[str] = ("train", "valid"),
    progress: bool = True,
) -> SynthesisReport:
    """YouTube-VOS: ``<split>_scribbles/<video>/<frame>.bmp`` for every annotation PNG of
    ``<split>/Annotations/<video>/`` (train: every frame; valid: each object's first frame). N = the
    video's highest object id (from ``<split>/meta.json`` when present), background N+1."""
    root = Path(root)
    out_root = Path(out_root) if out_root is not None else root
    style = style or ScribbleStyle()
    report = SynthesisReport()
    for split in splits:
        anno_root = root / split / "Annotations"
        if not anno_root.is_dir():
            raise DatasetError(f"YouTube-VOS: missing annotation folder {anno_root}")
        meta_path = root / split / "meta.json"
        listed = parse_meta(read_json(meta_path), meta_path) if meta_path.is_file() else []
        objects = {video.name: video.num_objects for video in listed}
        for video in tqdm(youtube_videos(root, split), desc=f"YouTube-VOS {split} scribbles", disable=not progress):
            files = list_files(anno_root / video, (".png",))
            num_objects = objects.get(video) or _max_object_id(files)
            for path in files:
                _scribble_file(
                    read_palette_png(path),
                    num_objects,
                    out_root / f"{split}_scribbles" / video / f"{path.stem}.bmp",
                    rng_for(seed, f"ytb-{split}", video, path.stem),
                    style,
                    f"{video}/{path.stem}",
                    report,
                )
    return report


def _instance_mask(coco: Any, ann: dict[str, Any]) -> np.ndarray:
    """Boolean mask of a COCO annotation (silencing pycocotools' numpy-2 deprecation notice)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return coco.annToMask(ann) > 0


def synthesize_coco(
    instances_json: str | Path,
    out_dir: str | Path,
    seed: int = 0,
    style: ScribbleStyle | None = None,
    scribble_dir: str = "scribbles",
    json_name: str = COCO_JSON,
    max_objects: int = MAX_OBJECTS,
    limit: int | None = None,
    progress: bool = True,
) -> SynthesisReport:
    """COCO: from instance masks (pycocotools), per-image ``<out_dir>/<scribble_dir>/<stem>.bmp`` and
    ``<out_dir>/<json_name>`` (``{"images": [{file_name, anno_name, num_objects, ...}]}``). The largest
    ``max_objects`` non-crowd instances are kept (larger ones painted first); objects that cannot be
    scribbled are dropped and the rest numbered 1..N; the background is N+1 and ``num_objects`` = N+1
    (the authors' convention). Images without any scribbled object are skipped and reported."""
    from pycocotools.coco import COCO  # imported here: only synthesis needs it

    if not Path(instances_json).is_file():
        raise DatasetError(f"missing COCO instances file: {instances_json}")
    style = style or ScribbleStyle()
    out_dir = Path(out_dir)
    with contextlib.redirect_stdout(io.StringIO()) if not progress else contextlib.nullcontext():
        coco = COCO(str(instances_json))  # pycocotools prints its loading progress
    image_ids = sorted(coco.getImgIds())[:limit]
    report, entries = SynthesisReport(), []
    for image_id in tqdm(image_ids, desc="COCO scribbles", disable=not progress):
        info = coco.loadImgs(image_id)[0]
        stem = Path(info["file_name"]).stem
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        labels = np.zeros((info["height"], info["width"]), dtype=np.uint8)
        instances = sorted((a for a in anns if not a.get("iscrowd", 0)), key=lambda a: -a["area"])[
            :max_objects
        ]
        for obj, ann in enumerate(instances, start=1):
            labels[_instance_mask(coco, ann)] = obj
        for ann in anns:
            if ann.get("iscrowd", 0):
                labels[_instance_mask(coco, ann) & (labels == 0)] = VOID
        scribble, skipped, has_background = scribble_from_labels(
            labels, range(1, len(instances) + 1), MAX_OBJECTS + 1, rng_for(seed, "coco", image_id), style
        )
        report.skipped_objects += [
            f"{info['file_name']}: object {obj} (area {area})" for obj, area in skipped
        ]
        kept = [obj for obj in range(1, len(instances) + 1) if (scribble == obj).any()]
        if not kept or not has_background:
            report.skipped_items.append(
                f"{info['file_name']} ({'no object' if not kept else 'no background'} scribble)"
            )
            continue
        lut = np.zeros(256, dtype=np.uint8)
        lut[kept] = np.arange(1, len(kept) + 1)
        lut[MAX_OBJECTS + 1] = len(kept) + 1
        write_scribble(out_dir / scribble_dir / f"{stem}.bmp", lut[scribble])
        report.written += 1
        entries.append(
            {
                "file_name": info["file_name"],
                "anno_name": f"{stem}.bmp",
                "num_objects": len(kept) + 1,
                "image_id": image_id,
                "height": info["height"],
                "width": info["width"],
            }
        )
    write_json(out_dir / json_name, {"images": entries})
    return report


COMMAND_HELP = """Synthesise training/evaluation scribbles in the authors' format from dense annotations.

  rhmnet-synthesize-scribbles davis --root /datasets/DAVIS [--out DIR] [--seed 0]
  rhmnet-synthesize-scribbles youtube --root /datasets/Youtube-VOS [--splits train valid]
  rhmnet-synthesize-scribbles coco --instances instances_train2017.json --out /datasets/COCO

DAVIS writes train_scribbles/<seq>/<frame>.bmp for every annotated frame and valid_scribbles{0..4}/<seq>.bmp
(frame 0); YouTube-VOS writes <split>_scribbles/<video>/<frame>.bmp; COCO writes scribbles/<image>.bmp and
COCO_scribbles.json. Objects too small to scribble are reported and skipped.

Existing scribbles are not replaced unless --overwrite is given; the new ones are written into a hidden
folder under the output root and moved into place once every file has been written. Sequence names (from
ImageSets, --sequences or meta.json) must be plain names.
"""


def build_parser() -> argparse.ArgumentParser:
    """Options of ``rhmnet-synthesize-scribbles``: shared ones, then one sub-command per layout."""
    parser = ArgumentParser(description=COMMAND_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's options, with the checks that involve the file system or two options (usage errors)."""
    parser = build_parser()
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
    """``rhmnet-synthesize-scribbles``: :func:`main` with bad input reported in one line (exit 2) and a failed
    write as exit 1."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
