"""``rhmnet-eval-davis`` (``eval_davis.py``): DAVIS 2016/2017 inference with the five scribble sets, J&F and speed.

Layout read (DAVIS 2017 trainval release plus scribbles)::

    ROOT/JPEGImages/480p/<seq>/<frame>.jpg      ROOT/Annotations/480p/<seq>/<frame>.png
    ROOT/ImageSets/<2016|2017>/<set>.txt        ROOT/valid_scribbles{g}/<seq>.bmp   (g = 0..4)

A scribble converted from the DAVIS interactive files (``scripts/convert_davis_interactive.py``) has a
sidecar ``<seq>.json`` beside it giving its object count and the frame its strokes are drawn on. Such a
scribble is read with that object count (it may have no background stroke) and, when it is not on frame 0,
the sequence is segmented from that frame forwards to the end and, with a fresh memory, backwards to frame
0 (the DAVIS interactive protocol); the annotated frame's result comes from the forward pass. Without a
sidecar (the authors' files) the scribble belongs to frame 0 and its largest value is the background.

Written, per checkpoint and scribble set, under ``--save-path``::

    <config>_<epoch>_davis<YY>_<set>_<scribbles>/<seq>/<frame>.png      palette PNG predictions
    <config>_<epoch>_davis<YY>_<set>_<scribbles>/global_results-<set>.csv, per-sequence_results-<set>.csv
    <config>_<epoch>_davis<YY>_<set>_summary.csv                          per set, mean and std
    <config>_<epoch>_davis<YY>_<set>_speed.csv                            FPS / peak memory per video
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rhmnet.cli_args import ArgumentParser
from rhmnet.config import Config
from rhmnet.data.io import DatasetError, list_files, read_davis_eval_scribble, read_json
from rhmnet.errors import run_cli
from rhmnet.evaluation.common import (
    add_model_arguments,
    available_checkpoints,
    check_model_arguments,
    config_from_args,
    config_label,
    summary_stats,
)
from rhmnet.evaluation.davis_scoring import (
    GLOBAL_COLUMNS,
    VOID_LABEL,
    EvaluationError,
    annotation_files,
    evaluate_results,
    first_frame_objects,
    format_tables,
    read_labels,
    read_sequence_list,
    write_csvs,
)
from rhmnet.guards import StagedOutput, check_output
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.driver import VideoRun, segment_video
from rhmnet.inference.frame_io import FrameSource
from rhmnet.inference.mask_io import PaletteWriter
from rhmnet.inference.timing import SpeedMeter, end_to_end_line
from rhmnet.labels import BACKGROUND
from rhmnet.ranges import AT_LEAST_1, option
from rhmnet.runtime import apply_threads, load_checkpoint_model, make_segmenter, select_device

NUM_SCRIBBLE_SETS = 5


@dataclass
class DavisSequence:
    """Frames, first annotation and object count of one sequence."""

    name: str
    frames: list[Path]
    annotations: list[Path]
    num_objects: int

    @property
    def has_ground_truth(self) -> bool:
        """Every frame annotated (val/train); test-dev ships only the first annotation."""
        return len(self.annotations) == len(self.frames) and len(self.frames) >= 3


def load_sequence(root: Path, name: str, single_object: bool) -> DavisSequence:
    """Find the frames and annotations of a sequence (an error naming the folder when absent)."""
    frame_dir = root / "JPEGImages" / "480p" / name
    frames = list_files(frame_dir, (".jpg", ".jpeg"))
    if not frames:
        raise EvaluationError(f"missing sequence {name!r}: no frames in {frame_dir}")
    annotations = annotation_files(root, name)
    if len(annotations) > 1:  # annotated throughout (val, train; test-dev has the first frame only)
        have = {p.stem for p in annotations}
        missing = [frame.stem for frame in frames if frame.stem not in have]
        if missing:
            folder = annotations[0].parent
            raise EvaluationError(
                f"missing annotation {folder / (missing[0] + '.png')} ({len(missing)} of the {len(frames)} frames "
                f"of {name!r} have none); the sequence would drop out of J&F"
            )
    num_objects = first_frame_objects(read_labels(annotations[0]), single_object)
    if num_objects < 1:
        raise EvaluationError(f"{annotations[0]}: the first annotation holds no object")
    return DavisSequence(name, frames, annotations, num_objects)


def scribble_sets(root: Path, scribbles: str | None) -> list[tuple[str, Path]]:
    """(name, folder) of each scribble set: ``valid_scribbles{g}`` folders, or one folder of ``<seq>.bmp``."""
    base = Path(scribbles) if scribbles else root
    if scribbles and not base.is_dir():
        raise EvaluationError(f"scribble folder not found: {base}")
    found = [(f"g{g}", base / f"valid_scribbles{g}") for g in range(NUM_SCRIBBLE_SETS)]
    found = [(n, p) for n, p in found if p.is_dir()]
    if found:
        return found
    if scribbles and any(base.glob("*.bmp")):
        return [(base.name, base)]
    raise EvaluationError(
        f"no scribble sets: expected {base / 'valid_scribbles0'} .. valid_scribbles4"
        + (f" or <sequence>.bmp files in {base}" if scribbles else "")
    )


@dataclass
class InitialScribble:
    """The label map the segmentation starts from and the index of the frame it belongs to."""

    labels: np.ndarray
    frame: int = 0


def read_sidecar(scribble_path: Path, num_frames: int) -> tuple[int, int] | None:
    """(annotated frame, object count) from the sidecar ``<seq>.json`` of a converted interactive scribble,
    or None when there is none (the authors' scribble files)."""
    sidecar = scribble_path.with_suffix(".json")
    if not sidecar.is_file():
        return None
    try:
        data = read_json(sidecar)
    except DatasetError as exc:
        raise EvaluationError(str(exc)) from None
    frame, objects = (data.get(key) if isinstance(data, dict) else None for key in ("frame", "num_objects"))
    if not isinstance(frame, int) or not isinstance(objects, int) or objects < 1:
        raise EvaluationError(f"{sidecar}: expected integer 'frame' and 'num_objects' (>= 1) entries")
    if not 0 <= frame < num_frames:
        raise EvaluationError(f"{sidecar}: frame {frame} outside the sequence's {num_frames} frames")
    return frame, objects


def prepare_scribble(raw: np.ndarray, num_objects: int, single_object: bool) -> np.ndarray:
    """Keep object ids 1..num_objects (1 for DAVIS-2016) and the background 11; everything else unlabeled."""
    top = 1 if single_object else num_objects
    keep = ((raw >= 1) & (raw <= top)) | (raw == BACKGROUND)
    return np.where(keep, raw, 0).astype(np.uint8)


def initial_labels(
    seq: DavisSequence, scribble_dir: Path | None, with_bg: bool, single_object: bool
) -> InitialScribble:
    """The starting label map: the scribble ``<dir>/<seq>.bmp`` (on frame 0, or on the frame its sidecar
    names), or the first annotation (``--mask-init``)."""
    frame = 0
    if scribble_dir is None:
        raw = read_labels(seq.annotations[0])
        raw = np.where(raw == VOID_LABEL, 0, raw)
        source = seq.annotations[0]
    else:
        source = scribble_dir / f"{seq.name}.bmp"
        if not source.is_file():
            raise EvaluationError(f"missing scribble for sequence {seq.name!r}: {source}")
        sidecar = read_sidecar(source, len(seq.frames))
        frame, objects = sidecar if sidecar is not None else (0, None)
        raw = read_davis_eval_scribble(source, with_bg=with_bg, num_objects=objects)
    with Image.open(seq.frames[frame]) as image:
        width, height = image.size
    if raw.shape != (height, width):
        which = "the first frame" if frame == 0 else f"the annotated frame {frame}"
        raise EvaluationError(
            f"{source}: scribble is {raw.shape[1]}x{raw.shape[0]} but {which} "
            f"{seq.frames[frame]} is {width}x{height}"
        )
    labels = prepare_scribble(raw, seq.num_objects, single_object)
    if not ((labels >= 1) & (labels <= seq.num_objects)).any():
        raise EvaluationError(f"{source}: no object scribble (values 1..{seq.num_objects}) for {seq.name!r}")
    return InitialScribble(labels, frame)


def segment_sequence(
    segmenter: VideoSegmenter,
    seq: DavisSequence,
    start: InitialScribble,
    out_dir: Path,
    meter: SpeedMeter,
    record_name: str | None = None,
    frame_order: Sequence[int] | None = None,
    write_first: bool = True,
) -> VideoRun:
    """Initialise on the first frame of ``frame_order`` (default: the annotated frame, then every later
    frame in order) with the start labels, step each of those frames and write their palette PNGs
    (decoding and writing overlap with the model); ``write_first=False`` leaves the first frame's PNG to
    another pass."""
    order = list(range(start.frame, len(seq.frames))) if frame_order is None else list(frame_order)
    return segment_video(
        segmenter,
        FrameSource.from_paths([seq.frames[t] for t in order]),
        start.labels,
        num_objects=seq.num_objects,
        sink=PaletteWriter(out_dir, skip=() if write_first else (seq.frames[order[0]].stem,)),
        meter=meter,
        record_name=record_name or seq.name,
    )


def segment_from_annotated_frame(
    segmenter: VideoSegmenter,
    seq: DavisSequence,
    start: InitialScribble,
    out_dir: Path,
    meter: SpeedMeter,
    record_name: str | None = None,
) -> list[VideoRun]:
    """The DAVIS interactive protocol: from the annotated frame forward to the end and, when it is not
    frame 0, with a fresh memory backward to frame 0; the annotated frame keeps its forward result."""
    name = record_name or seq.name
    runs = [segment_sequence(segmenter, seq, start, out_dir, meter, name)]
    if start.frame > 0:
        backward = list(range(start.frame, -1, -1))
        runs.append(segment_sequence(segmenter, seq, start, out_dir, meter, f"{name} (backward)",
                                     frame_order=backward, write_first=False))
    return runs


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description="DAVIS evaluation with scribble initialisation (RHMNet)")
    parser.add_argument("--set", type=str, default="val", help="image set (val, train, test-dev)")
    parser.add_argument("--year", type=int, default=17, help="16 (object 1 only) or 17")
    parser.add_argument(
        "--dataset", type=str, default="DAVIS", help="only DAVIS (kept for the authors' command)"
    )
    parser.add_argument("--davis-root", type=str, default=None, help="default: cfg.DATASETS.DAVIS.PATH")
    parser.add_argument(
        "--scribbles",
        type=str,
        default=None,
        help="folder with valid_scribbles{g}/<seq>.bmp or <seq>.bmp (default: the DAVIS root)",
    )
    parser.add_argument("--with-bg", action="store_true", help="use the background scribble")
    parser.add_argument("--mask-init", action="store_true", help="initialise from the first-frame annotation")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="only evaluate --results-path (no model)"
    )
    parser.add_argument("--results-path", type=str, default=None, help="results folder for --evaluate-only")
    parser.add_argument(
        "--exclude-void",
        action="store_true",
        help="remove void (255) pixels from both masks (the toolkit counts them as background)",
    )
    parser.add_argument("--workers", type=option(int, AT_LEAST_1), default=None,
                        help="evaluation threads (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an earlier run of the same checkpoints in --save-path (once "
                        "this run has succeeded)")
    add_model_arguments(parser)
    return parser


def _year(value: int) -> int:
    year = value % 100
    if year not in (16, 17):
        raise EvaluationError(f"--year must be 16 or 17 (or 2016/2017), got {value}")
    return year


def evaluate_only(args: argparse.Namespace) -> int:
    """``--evaluate-only``: evaluate a results folder and write the two CSV files into it."""
    if not args.results_path or not args.davis_root:
        raise EvaluationError("--evaluate-only needs --results-path and --davis-root")
    sequences = [args.video_name] if args.video_name else None
    result = evaluate_results(
        args.results_path,
        args.davis_root,
        _year(args.year),
        args.set,
        sequences,
        args.workers,
        args.exclude_void,
        progress=not args.no_progress,
    )
    paths = write_csvs(result, args.results_path, args.set)
    print(format_tables(result, args.set))
    print(f"\nwritten: {paths[0]}, {paths[1]}")
    return 0


def _write_rows(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _format_set_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    lines = [f"{'scribbles':<12}" + "".join(f"{k:>10}" for k in GLOBAL_COLUMNS)]
    lines += [f"{name:<12}" + "".join(f"{m[k]:>10.3f}" for k in GLOBAL_COLUMNS) for name, m in rows]
    return "\n".join(lines)


@dataclass
class DavisRunOptions:
    """Plain options of a DAVIS inference run (``eval_davis.py`` builds them from its arguments)."""

    save_path: Path
    config_name: str = "model"  # first part of the output folder names
    year: int = 17  # 16 (object 1 only) or 17
    image_set: str = "val"
    with_bg: bool = False  # use the background scribble
    workers: int | None = None  # evaluation threads
    exclude_void: bool = False
    progress: bool = True
    precision: str = "fp32"  # fp32, bf16 or fp16 (autocast on the model step)
    compile: bool = False  # torch.compile the frame encoder

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> DavisRunOptions:
        return cls(
            save_path=Path(args.save_path),
            config_name=config_label(args),
            year=_year(args.year),
            image_set=args.set,
            with_bg=args.with_bg,
            workers=args.workers,
            exclude_void=args.exclude_void,
            progress=not args.no_progress,
            precision=args.precision,
            compile=args.compile,
        )


def output_prefix(options: DavisRunOptions, label: str) -> str:
    """``<config>_<epoch>_davis<YY>_<set>``: the start of every name a checkpoint's run writes."""
    return f"{options.config_name}_{label}_davis{_year(options.year)}_{options.image_set}"


def output_items(options: DavisRunOptions, label: str, sets: list[tuple[str, Path | None]]) -> list[str]:
    """What one checkpoint's run writes into ``--save-path``: a folder per scribble set and two tables."""
    prefix = output_prefix(options, label)
    return [*(f"{prefix}_{name}" for name, _ in sets), f"{prefix}_summary.csv", f"{prefix}_speed.csv"]


def run_checkpoint(
    options: DavisRunOptions,
    label: str,
    model: torch.nn.Module,
    cfg: Config,
    root: Path,
    sequences: list[DavisSequence],
    sets: list[tuple[str, Path | None]],
) -> None:
    """Segment every sequence with every scribble set, evaluate, and write/print the reports. Everything is
    written into a hidden staging folder and replaces an earlier run's results only when all succeeded."""
    save = Path(options.save_path)
    with StagedOutput(save, output_items(options, label, sets)) as stage:
        _segment_and_report(options, label, model, cfg, root, sequences, sets, stage)


def _segment_and_report(options: DavisRunOptions, label: str, model: torch.nn.Module, cfg: Config, root: Path,
                        sequences: list[DavisSequence], sets: list[tuple[str, Path | None]], stage: Path) -> None:
    """:func:`run_checkpoint`'s work, writing into ``stage``."""
    year, image_set = _year(options.year), options.image_set
    prefix = output_prefix(options, label)
    meter = SpeedMeter(next(model.parameters()).device)
    runs: list[VideoRun] = []
    per_set: list[tuple[str, dict[str, float]]] = []
    evaluable = [s.name for s in sequences if s.has_ground_truth]
    from tqdm import tqdm

    for set_name, folder in sets:
        out_root = stage / f"{prefix}_{set_name}"
        segmenter = make_segmenter(model, cfg, options.precision, options.compile)
        for seq in tqdm(sequences, desc=f"{label} {set_name}", unit="video", disable=not options.progress):
            start = initial_labels(seq, folder, options.with_bg, year == 16)
            runs += segment_from_annotated_frame(segmenter, seq, start, out_root / seq.name, meter,
                                                 f"{set_name}/{seq.name}")
        if evaluable:
            result = evaluate_results(
                out_root, root, year, image_set, evaluable, options.workers, options.exclude_void, progress=False
            )
            write_csvs(result, out_root, image_set)
            per_set.append((set_name, result.global_metrics()))
            shown = Path(options.save_path) / out_root.name  # where it will be once the run succeeded
            print(f"\n[{label} {set_name}] {shown}\n" + format_tables(result, image_set))
    if per_set:
        mean, std = summary_stats([m for _, m in per_set], GLOBAL_COLUMNS)
        print(f"\n=== checkpoint {label}: DAVIS-20{year} {image_set}, {len(per_set)} scribble set(s) ===")
        print(_format_set_table([*per_set, ("mean", mean), ("std", std)]))
        print("mean ± std: " + ", ".join(f"{k} {mean[k]:.3f} ± {std[k]:.3f}" for k in GLOBAL_COLUMNS))
        _write_rows(
            stage / f"{prefix}_summary.csv",
            ["Scribbles", *GLOBAL_COLUMNS],
            [
                [n, *(f"{m[k]:.3f}" for k in GLOBAL_COLUMNS)]
                for n, m in [*per_set, ("mean", mean), ("std", std)]
            ],
        )
    else:
        print(f"\n(no full ground truth for {image_set}: predictions written, J&F not computed)")
    print("\n" + meter.format())
    print(end_to_end_line(runs, meter))
    rows = meter.rows()
    _write_rows(stage / f"{prefix}_speed.csv", list(rows[0]), [list(r.values()) for r in rows])


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    check_model_arguments(parser, args)
    if args.dataset != "DAVIS":
        raise EvaluationError(f"--dataset {args.dataset!r}: only DAVIS is supported by eval_davis.py")
    if args.evaluate_only:
        return evaluate_only(args)
    year = _year(args.year)
    cfg = config_from_args(args)
    root = Path(args.davis_root or cfg.DATASETS.DAVIS.PATH)
    names = read_sequence_list(root, year, args.set)
    if args.video_name:
        if args.video_name not in names:
            raise EvaluationError(f"video {args.video_name!r} is not in the {args.set} set of DAVIS-20{year}")
        names = [args.video_name]
    sequences = [load_sequence(root, n, year == 16) for n in names]
    sets: list[tuple[str, Path | None]] = (
        [("mask", None)] if args.mask_init else list(scribble_sets(root, args.scribbles))
    )
    for _, folder in sets:  # fail before any model work on a missing or mismatched scribble
        for seq in sequences:
            initial_labels(seq, folder, args.with_bg, year == 16)
    apply_threads(args.threads)
    device = select_device(args.device, args.gpu, args.tf32)
    options = DavisRunOptions.from_args(args)
    checkpoints = list(available_checkpoints(args))
    items = [item for label, _ in checkpoints for item in output_items(options, label, sets)]
    check_output(options.save_path, args.overwrite, items, "--save-path")  # before any work
    for label, path in checkpoints:
        print(f"checkpoint: {path}")
        run_checkpoint(options, label, load_checkpoint_model(path, cfg, device), cfg, root, sequences, sets)
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Entry point with user errors turned into one-line messages."""
    return run_cli(main, argv)
