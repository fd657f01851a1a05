"""Segment your own video from a scribble on its first frame.

    python -m rhmnet.segment --frames DIR_OR_VIDEO --scribble PNG --checkpoint CKPT --out DIR

``--frames`` is a folder of images (sorted by name) or a video file; ``--scribble`` is a single-channel
label image of the first frame (0 unlabeled, 1..10 objects, 11 background; ``--bg_value V`` marks another
value as the background scribble, e.g. N+1 in DAVIS-style files). Writes ``DIR/masks/<frame>.png``
(DAVIS palette) and an overlay video ``DIR/overlay.mp4`` (or ``overlay.gif``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from rhmnet.config import load_config
from rhmnet.data.io import (
    DAVIS_PALETTE,
    IMAGE_SUFFIXES,
    list_files,
    read_image,
    read_label_map,
    write_palette_png,
)
from rhmnet.data.labels import BACKGROUND
from rhmnet.evaluation.common import add_speed_arguments, apply_threads, make_segmenter, run_cli, select_device
from rhmnet.evaluation.davis import EvaluationError
from rhmnet.evaluation.speed import SpeedMeter


def iter_frames(source: Path, max_frames: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    """(name, RGB uint8 frame) from an image folder or a video file."""
    if source.is_dir():
        files = list_files(source, IMAGE_SUFFIXES)
        if not files:
            raise EvaluationError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {source}")
        for path in files[:max_frames]:
            yield path.stem, read_image(path)
        return
    if not source.is_file():
        raise EvaluationError(f"frames not found: {source}")
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise EvaluationError(f"cannot open video {source}")
    try:
        index = 0
        while max_frames is None or index < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            yield f"{index:05d}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            index += 1
        if index == 0:
            raise EvaluationError(f"no frame could be decoded from {source}")
    finally:
        capture.release()


def load_scribble(
    path: Path, frame_shape: tuple[int, int], first_frame: str, bg_value: int | None
) -> np.ndarray:
    """The first-frame label map, checked against the frame size (an error naming both files otherwise)."""
    labels = read_label_map(path)
    if labels.shape != frame_shape:
        raise EvaluationError(
            f"scribble {path} is {labels.shape[1]}x{labels.shape[0]} but the first frame ({first_frame}) is "
            f"{frame_shape[1]}x{frame_shape[0]}"
        )
    if bg_value is not None:
        labels = np.where(labels == bg_value, BACKGROUND, labels).astype(np.uint8)
    if int(labels.max()) > BACKGROUND:
        raise EvaluationError(f"{path}: values above {BACKGROUND} (use --bg_value for the background value)")
    return labels


def overlay(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Frame with each object tinted by its DAVIS palette colour and outlined."""
    colours = DAVIS_PALETTE[labels]
    mask = labels > 0
    out = frame.copy()
    out[mask] = (frame[mask] * (1 - alpha) + colours[mask] * alpha).astype(np.uint8)
    edges = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
    out[edges] = colours[edges]
    return out


class OverlayWriter:
    """MP4 via OpenCV, falling back to an animated GIF (PIL) when no MP4 encoder is available."""

    def __init__(self, out_dir: Path, kind: str, fps: float) -> None:
        self.out_dir, self.kind, self.fps = out_dir, kind, fps
        self.video: cv2.VideoWriter | None = None
        self.gif: list[Image.Image] = []
        self.path: Path | None = None

    def add(self, image: np.ndarray) -> None:
        if self.kind == "none":
            return
        if self.kind == "mp4" and self.video is None and self.path is None:
            path = self.out_dir / "overlay.mp4"
            size = (image.shape[1], image.shape[0])
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, size)
            if writer.isOpened():
                self.video, self.path = writer, path
            else:
                print("warning: no MP4 encoder available, writing an animated GIF instead", file=sys.stderr)
                self.kind = "gif"
        if self.video is not None:
            self.video.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        else:
            self.gif.append(Image.fromarray(image))

    def close(self) -> Path | None:
        if self.video is not None:
            self.video.release()
        elif self.gif:
            self.path = self.out_dir / "overlay.gif"
            duration = max(int(1000 / self.fps), 20)
            self.gif[0].save(self.path, save_all=True, append_images=self.gif[1:], duration=duration, loop=0)
        return self.path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Segment a video from a first-frame scribble (RHMNet)")
    parser.add_argument("--frames", required=True, help="folder of frames or a video file")
    parser.add_argument("--scribble", required=True, help="label image of the first frame")
    parser.add_argument("--checkpoint", required=True, help="checkpoint (ours or the authors' format)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--config", default=None, help="config name/path (default: from the checkpoint)")
    parser.add_argument("--bg_value", type=int, default=None, help="scribble value of the background")
    parser.add_argument("--overlay", choices=("mp4", "gif", "none"), default="mp4", help="overlay output")
    parser.add_argument("--fps", type=float, default=12.0, help="frame rate of the overlay")
    parser.add_argument("--max_frames", type=int, default=None, help="stop after this many frames")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    add_speed_arguments(parser)
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    return parser


def main(argv: list[str] | None = None) -> int:
    from rhmnet import load_model

    args = build_parser().parse_intermixed_args(argv)
    out = Path(args.out)
    frames = iter_frames(Path(args.frames), args.max_frames)
    first_name, first = next(frames)
    labels = load_scribble(
        Path(args.scribble), first.shape[:2], f"{args.frames}: {first_name}", args.bg_value
    )
    apply_threads(args.threads)
    device = select_device(args.device)
    config = load_config(args.config, args.overrides) if args.config or args.overrides else None
    model = load_model(args.checkpoint, config=config, device=device)
    segmenter = make_segmenter(model, model.cfg, args.precision, args.compile)
    segmenter.initialize(first, labels)
    meter = SpeedMeter(device)
    writer = OverlayWriter(out, args.overlay, args.fps)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), meter.video(Path(args.frames).name) as record:
        for index, (name, frame) in enumerate(chain([(first_name, first)], frames)):
            result = meter.step(record, lambda f=frame, n=index: segmenter.step(f, frame_num=n))
            write_palette_png(out / "masks" / f"{name}.png", result.labels)
            writer.add(overlay(frame, result.labels))
    path = writer.close()
    print(meter.format())
    print(f"masks: {out / 'masks'}" + (f"; overlay: {path}" if path else ""))
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Entry point with user errors turned into one-line messages."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
