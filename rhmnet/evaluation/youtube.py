"""``eval_ytb.py``: YouTube-VOS 2018/2019 inference with scribbles, result PNGs and a submission zip.

Layout read (``--set val``; ``--set test`` reads ``test/`` and ``test_init_scr/`` the same way)::

    ROOT/valid/JPEGImages/<video>/<frame>.jpg
    ROOT/valid/meta.json          {"videos": {<video>: {"objects": {"<id>": {"frames": [<frame>, ...]}}}}}
    ROOT/valid_scribbles/<video>/<frame>.bmp   scribble on each object's first frame (value N+1 = background)

Per video: the listed frames are the union of the objects' frames; the video starts on its first listed
frame with the objects whose first frame it is, and every other object joins (``add_objects``) with its
own scribble on its first frame. ``frame_num`` counts listed frames. With ``--size S`` a frame at least S
wide is resized to width S, height int(S*h/w) (image bilinear, scribble nearest); predictions go back to
the original size with nearest-neighbour. Written under ``--save_path``::

    <config>_<epoch>_<size>/Annotations/<video>/<frame>.png   palette PNG for every listed frame
    <config>_<epoch>_<size>/submission.zip                     Annotations/<video>/<frame>.png
    <config>_<epoch>_<size>/speed.csv                          FPS / peak memory per video
"""

from __future__ import annotations

import argparse
import csv
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from rhmnet.config import Config
from rhmnet.data.io import DAVIS_PALETTE, read_image, read_json, read_ytb_eval_scribble
from rhmnet.evaluation.common import (
    add_model_arguments,
    apply_threads,
    available_checkpoints,
    config_from_args,
    config_label,
    load_checkpoint_model,
    make_segmenter,
    run_cli,
    select_device,
)
from rhmnet.evaluation.davis import EvaluationError
from rhmnet.evaluation.speed import SpeedMeter
from rhmnet.inference import VideoSegmenter

SPLITS = {"val": ("valid", "valid_scribbles"), "test": ("test", "test_init_scr")}


@dataclass
class YtbVideo:
    """Listed frames of a video and, per frame, the objects whose first frame it is."""

    name: str
    frames: list[str]
    num_objects: int
    starts: dict[str, list[int]] = field(default_factory=dict)


def parse_meta(meta: dict, meta_path: Path) -> list[YtbVideo]:
    """Videos of a YouTube-VOS ``meta.json`` (in file order)."""
    videos = meta.get("videos") if isinstance(meta, dict) else None
    if not isinstance(videos, dict):
        raise EvaluationError(f"{meta_path}: expected {{'videos': {{...}}}}")
    out = []
    for name, info in videos.items():
        objects = info.get("objects", {}) if isinstance(info, dict) else {}
        starts: dict[str, list[int]] = defaultdict(list)
        frames: set[str] = set()
        for key, obj in objects.items():
            try:
                obj_id = int(key)
            except ValueError:
                raise EvaluationError(
                    f"{meta_path}: video {name!r} has a non-numeric object id {key!r}"
                ) from None
            listed = list(obj.get("frames", []))
            if not listed:
                raise EvaluationError(f"{meta_path}: object {key} of video {name!r} lists no frames")
            frames.update(listed)
            starts[min(listed)].append(obj_id)
        if not frames:
            raise EvaluationError(f"{meta_path}: video {name!r} lists no objects")
        ids = [i for group in starts.values() for i in group]
        out.append(YtbVideo(name, sorted(frames), max(ids), {k: sorted(v) for k, v in starts.items()}))
    return out


def target_size(height: int, width: int, size: int | None) -> tuple[int, int]:
    """(h, w) the network sees: width ``size``, height int(size*h/w) for frames at least that wide."""
    if size is None or width < size:
        return height, width
    return int(size * height / width), size


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


def save_palette(path: Path, labels: np.ndarray, size_hw: tuple[int, int]) -> None:
    """Palette PNG at the original size (nearest-neighbour, PIL's convention)."""
    image = Image.fromarray(labels, mode="P")
    if labels.shape != size_hw:
        image = image.resize((size_hw[1], size_hw[0]), Image.Resampling.NEAREST)
    image.putpalette(DAVIS_PALETTE.reshape(-1).tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def segment_video(
    segmenter: VideoSegmenter,
    data: YtbDataset,
    video: YtbVideo,
    out_dir: Path,
    size: int | None,
    meter: SpeedMeter,
) -> None:
    """Run one video, objects joining on their first frame, and write every listed frame's PNG."""
    with meter.video(video.name) as record:
        for index, frame_name in enumerate(video.frames):
            image = read_image(data.frame_path(video, frame_name))
            size_hw = image.shape[:2]
            new_hw = target_size(*size_hw, size)
            if new_hw != size_hw:
                image = cv2.resize(image, (new_hw[1], new_hw[0]), interpolation=cv2.INTER_LINEAR)
            if frame_name in video.starts:
                labels = data.scribble(video, frame_name, size_hw, new_hw)
                if index == 0:
                    segmenter.initialize(
                        image, labels, num_objects=video.num_objects, object_ids=video.starts[frame_name]
                    )
                else:
                    segmenter.add_objects(image, labels, video.starts[frame_name])
            result = meter.step(record, lambda f=image, n=index: segmenter.step(f, frame_num=n))
            save_palette(out_dir / f"{frame_name}.png", result.labels, size_hw)


def write_submission(annotations: Path, zip_path: Path) -> Path:
    """Zip ``Annotations/<video>/<frame>.png`` (stored, PNGs are already compressed)."""
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(annotations.rglob("*.png")):
            archive.write(path, Path("Annotations") / path.relative_to(annotations))
    return zip_path


def run_checkpoint(
    args: argparse.Namespace,
    label: str,
    model: torch.nn.Module,
    cfg: Config,
    data: YtbDataset,
    videos: list[YtbVideo],
) -> Path:
    """Segment the videos with one checkpoint; returns the output folder."""
    out = Path(args.save_path) / f"{config_label(args)}_{label}_{args.size}"
    meter = SpeedMeter(next(model.parameters()).device)
    segmenter = make_segmenter(model, cfg, args.precision, args.compile)
    for video in tqdm(videos, desc=f"checkpoint {label}", unit="video", disable=args.no_progress):
        segment_video(segmenter, data, video, out / "Annotations" / video.name, args.size, meter)
    if not args.no_zip:
        print(f"submission: {write_submission(out / 'Annotations', out / 'submission.zip')}")
    print(meter.format())
    rows = meter.rows()
    with (out / "speed.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="YouTube-VOS inference with scribbles (RHMNet)")
    parser.add_argument("--set", type=str, default="val", help="val or test")
    parser.add_argument("--dataset", type=str, default="Youtube-VOS", help="kept for the authors' command")
    parser.add_argument("--ytb_root", type=str, default=None, help="default: cfg.DATASETS.YTB.ROOT")
    parser.add_argument(
        "--scribbles", type=str, default=None, help="scribble folder (default ROOT/valid_scribbles)"
    )
    parser.add_argument(
        "--size", type=int, default=None, help="resize frames at least this wide to this width"
    )
    parser.add_argument("--no_zip", action="store_true", help="do not write submission.zip")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    add_model_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_intermixed_args(argv)
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
    for label, path in available_checkpoints(args):
        print(f"checkpoint: {path}")
        run_checkpoint(args, label, load_checkpoint_model(path, cfg, device), cfg, data, videos)
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Entry point with user errors turned into one-line messages."""
    return run_cli(main, argv)
