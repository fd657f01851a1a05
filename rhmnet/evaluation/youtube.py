"""``rhmnet-eval-ytb`` (``eval_ytb.py``): YouTube-VOS 2018/2019 inference with scribbles, result PNGs, submission zip.

Layout read (``--set val``; ``--set test`` reads ``test/`` and ``test_init_scr/`` the same way)::

    ROOT/valid/JPEGImages/<video>/<frame>.jpg
    ROOT/valid/meta.json          {"videos": {<video>: {"objects": {"<id>": {"frames": [<frame>, ...]}}}}}
    ROOT/valid_scribbles/<video>/<frame>.bmp   scribble on each object's first frame (value N+1 = background)

Per video: the listed frames are the union of the objects' frames; the video starts on its first listed
frame with the objects whose first frame it is, and every other object joins (``add_objects``) with its
own scribble on its first frame. ``frame_num`` counts listed frames. With ``--size S`` a frame at least S
wide is resized to width S, height int(S*h/w) (image bilinear, scribble nearest); predictions go back to
the original size with nearest-neighbour. Written under ``--save-path``::

    <config>_<epoch>_<size>/Annotations/<video>/<frame>.png   palette PNG for every listed frame
    <config>_<epoch>_<size>/submission.zip                     Annotations/<video>/<frame>.png
    <config>_<epoch>_<size>/speed.csv                          FPS / peak memory per video
"""

from __future__ import annotations

import argparse
import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from rhmnet.cli_args import ArgumentParser
from rhmnet.config import Config
from rhmnet.data.io import read_json, read_ytb_eval_scribble
from rhmnet.data.youtube import YtbVideo, parse_meta
from rhmnet.errors import run_cli
from rhmnet.evaluation.common import (
    add_model_arguments,
    available_checkpoints,
    check_model_arguments,
    config_from_args,
    config_label,
)
from rhmnet.evaluation.davis_scoring import EvaluationError
from rhmnet.guards import StagedOutput, check_output
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.driver import ObjectStart, VideoRun, segment_video
from rhmnet.inference.frame_io import FrameSource, VideoFrame, target_size
from rhmnet.inference.mask_io import PaletteWriter
from rhmnet.inference.timing import SpeedMeter, end_to_end_line
from rhmnet.runtime import apply_threads, load_checkpoint_model, make_segmenter, select_device

__all__ = ["YtbDataset", "YtbVideo", "parse_meta", "target_size", "segment_ytb_video", "run_checkpoint"]

SPLITS = {"val": ("valid", "valid_scribbles"), "test": ("test", "test_init_scr")}




class YtbDataset:
    """Paths and scribbles of one YouTube-VOS split."""

    def __init__(self, root: str | Path, subset: str = "val", scribbles: str | Path | None = None) -> None:
        if subset not in SPLITS:
            raise EvaluationError(f"--set must be one of {sorted(SPLITS)}, got {subset!r}")
        folder, scribble_folder = SPLITS[subset]
        self.root = Path(root)
        self.image_dir = self.root / folder / "JPEGImages"
        self.scribble_dir = Path(scribbles) if scribbles else self.root / scribble_folder
        self.meta_path = self.root / folder / "meta.json"
        if not self.meta_path.is_file():
            raise EvaluationError(f"missing meta file: {self.meta_path}")
        self.videos = parse_meta(read_json(self.meta_path), self.meta_path)

    def frame_path(self, video: YtbVideo, frame: str) -> Path:
        path = self.image_dir / video.name / f"{frame}.jpg"
        if not path.is_file():
            raise EvaluationError(f"missing frame of video {video.name!r}: {path}")
        return path

    def scribble(
        self, video: YtbVideo, frame: str, size_hw: tuple[int, int], new_hw: tuple[int, int]
    ) -> np.ndarray:
        """The label map of an object's first frame, checked against the frame size, resized (nearest)."""
        path = self.scribble_dir / video.name / f"{frame}.bmp"
        if not path.is_file():
            raise EvaluationError(f"missing scribble for video {video.name!r}: {path}")
        labels = read_ytb_eval_scribble(path, num_objects=video.num_objects)
        if labels.shape != size_hw:
            raise EvaluationError(
                f"{path}: scribble is {labels.shape[1]}x{labels.shape[0]} but the frame is "
                f"{size_hw[1]}x{size_hw[0]}"
            )
        missing = [i for i in video.starts[frame] if not (labels == i).any()]
        if missing:
            raise EvaluationError(f"{path}: no scribble for object(s) {missing} that start on this frame")
        if new_hw != size_hw:
            labels = cv2.resize(labels, (new_hw[1], new_hw[0]), interpolation=cv2.INTER_NEAREST)
        return labels


def segment_ytb_video(
    segmenter: VideoSegmenter,
    data: YtbDataset,
    video: YtbVideo,
    out_dir: Path,
    size: int | None,
    meter: SpeedMeter,
) -> VideoRun:
    """Run one video, objects joining on their first frame, and write every listed frame's PNG at the
    frame's original size (decoding, resizing and writing overlap with the model)."""

    def objects_starting(frame: VideoFrame) -> ObjectStart | None:
        if frame.name not in video.starts:
            return None
        labels = data.scribble(video, frame.name, frame.original_hw, frame.image.shape[:2])
        return ObjectStart(labels, video.starts[frame.name])

    paths = [data.frame_path(video, name) for name in video.frames]
    return segment_video(
        segmenter,
        FrameSource.from_paths(paths, names=video.frames, resize_width=size),
        num_objects=video.num_objects,
        new_objects=objects_starting,
        sink=PaletteWriter(out_dir, resize=True),
        meter=meter,
        record_name=video.name,
    )


def write_submission(annotations: Path, zip_path: Path) -> Path:
    """Zip ``Annotations/<video>/<frame>.png`` (stored, PNGs are already compressed)."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(annotations.rglob("*.png")):
            archive.write(path, Path("Annotations") / path.relative_to(annotations))
    return zip_path


@dataclass
class YtbRunOptions:
    """Plain options of a YouTube-VOS inference run (``eval_ytb.py`` builds them from its arguments)."""

    save_path: Path
    config_name: str = "model"  # first part of the output folder name
    size: int | None = None  # resize frames at least this wide to this width
    write_zip: bool = True
    progress: bool = True
    overwrite: bool = False  # replace an earlier run's PNGs, zip and speed table
    precision: str = "fp32"  # fp32, bf16 or fp16 (autocast on the model step)
    compile: bool = False  # torch.compile the frame encoder

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> YtbRunOptions:
        return cls(Path(args.save_path), config_label(args), args.size, not args.no_zip, not args.no_progress,
                   args.overwrite, args.precision, args.compile)

    def output_folder(self, label: str) -> Path:
        """``<save_path>/<config>_<epoch>_<size>``."""
        return Path(self.save_path) / f"{self.config_name}_{label}_{self.size}"


def run_checkpoint(
    options: YtbRunOptions,
    label: str,
    model: torch.nn.Module,
    cfg: Config,
    data: YtbDataset,
    videos: list[YtbVideo],
) -> Path:
    """Segment the videos with one checkpoint; returns the output folder. The results are written into a
    hidden staging folder and replace an earlier run's folder (no stale PNG can end up in the submission)
    only when all succeeded."""
    final = options.output_folder(label)
    with StagedOutput(final.parent, [final.name]) as stage:
        _segment_and_report(options, label, model, cfg, data, videos, stage / final.name, final)
    return final


def _segment_and_report(options: YtbRunOptions, label: str, model: torch.nn.Module, cfg: Config, data: YtbDataset,
                        videos: list[YtbVideo], out: Path, final: Path) -> None:
    """:func:`run_checkpoint`'s work, writing into ``out`` (moved to ``final`` after success)."""
    meter = SpeedMeter(next(model.parameters()).device)
    segmenter = make_segmenter(model, cfg, options.precision, options.compile)
    runs = [
        segment_ytb_video(segmenter, data, video, out / "Annotations" / video.name, options.size, meter)
        for video in tqdm(videos, desc=f"checkpoint {label}", unit="video", disable=not options.progress)
    ]
    if options.write_zip:
        written = write_submission(out / "Annotations", out / "submission.zip")
        print(f"submission: {final / written.name}")
    print(meter.format())
    print(end_to_end_line(runs, meter))
    rows = meter.rows()
    with (out / "speed.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description="YouTube-VOS inference with scribbles (RHMNet)")
    parser.add_argument("--set", type=str, default="val", help="val or test")
    parser.add_argument("--dataset", type=str, default="Youtube-VOS", help="kept for the authors' command")
    parser.add_argument("--ytb-root", type=str, default=None, help="default: cfg.DATASETS.YTB.ROOT")
    parser.add_argument(
        "--scribbles", type=str, default=None, help="scribble folder (default ROOT/valid_scribbles)"
    )
    parser.add_argument(
        "--size", type=int, default=None, help="resize frames at least this wide to this width"
    )
    parser.add_argument("--no-zip", action="store_true", help="do not write submission.zip")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the PNGs, zip and speed table of an earlier run in the output folder")
    add_model_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_intermixed_args(argv)
    check_model_arguments(parser, args)
    if args.size is not None and args.size < 16:
        raise EvaluationError(f"--size must be at least 16, got {args.size}")
    cfg = config_from_args(args)
    data = YtbDataset(args.ytb_root or cfg.DATASETS.YTB.ROOT, args.set, args.scribbles)
    videos = data.videos
    if args.video_name:
        videos = [v for v in videos if v.name == args.video_name]
        if not videos:
            raise EvaluationError(f"video {args.video_name!r} is not listed in {data.meta_path}")
    apply_threads(args.threads)
    device = select_device(args.device, args.gpu, args.tf32)
    options = YtbRunOptions.from_args(args)
    checkpoints = list(available_checkpoints(args))
    for label, _ in checkpoints:  # before any work: never mix into an earlier run's results
        check_output(options.output_folder(label), options.overwrite, what="output folder")
    for label, path in checkpoints:
        print(f"checkpoint: {path}")
        run_checkpoint(options, label, load_checkpoint_model(path, cfg, device), cfg, data, videos)
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Entry point with user errors turned into one-line messages."""
    return run_cli(main, argv)
