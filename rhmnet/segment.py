"""Segment your own video from a scribble on its first frame.

    python -m rhmnet.segment --frames DIR_OR_VIDEO --scribble PNG --checkpoint CKPT --out DIR

``--frames`` is a folder of images (sorted by name) or a video file; ``--scribble`` is a single-channel
label image of the first frame (0 unlabeled, 1..10 objects, 11 background; ``--bg_value V`` marks another
value as the background scribble, e.g. N+1 in DAVIS-style files). Writes ``DIR/masks/<frame>.png``
(DAVIS palette) and an overlay video ``DIR/overlay.mp4`` (or ``overlay.gif``).

Safe by default: every argument is checked before the model loads; two frames with the same name (e.g.
``00002.jpg`` and ``00002.png``) are an error; ``--out`` must not be or contain the frames folder; a
non-empty ``--out`` is an error unless ``--overwrite``, which first deletes the earlier masks and overlays.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rhmnet.config import load_config
from rhmnet.data.io import (
    list_files,
    read_label_map,
)
from rhmnet.errors import run_cli
from rhmnet.evaluation.common import add_speed_arguments, apply_threads, make_segmenter, select_device
from rhmnet.evaluation.davis import EvaluationError
from rhmnet.evaluation.speed import SpeedMeter
from rhmnet.guards import OutputExistsError, check_device, is_inside, prepare_output_dir
from rhmnet.inference.driver import FrameSource, PaletteWriter, segment_video
from rhmnet.labels import BACKGROUND
from rhmnet.overlay import overlay

OVERLAY_NAMES = ("overlay.mp4", "overlay.gif")


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
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the masks and overlay of an earlier run in --out")
    add_speed_arguments(parser)
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Everything that can be checked before a frame is read or the model loads."""
    if args.max_frames is not None and args.max_frames < 1:
        raise EvaluationError(f"--max_frames must be at least 1, got {args.max_frames}")
    if not args.fps > 0:
        raise EvaluationError(f"--fps must be positive, got {args.fps}")
    if args.device:
        check_device(args.device)
    frames, out = Path(args.frames), Path(args.out)
    if not frames.exists():
        raise EvaluationError(f"frames not found: {frames}")
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"--out {out} exists and is not a folder")
    source_dir = frames if frames.is_dir() else frames.parent
    if is_inside(source_dir, out) or is_inside(args.scribble, out):
        raise OutputExistsError(
            f"--out {out} holds the input frames or scribble ({frames}); masks and overlays would be written "
            "among them. Choose another output folder"
        )


def prepare_out(out: Path, overwrite: bool) -> None:
    """An empty output folder, or (``--overwrite``) one whose earlier masks and overlays are deleted, so
    that no stale mask of an earlier run stays beside the new ones."""
    prepare_output_dir(out, overwrite, "--out")
    if overwrite:
        for path in [*list_files(out / "masks", (".png",)), *(out / name for name in OVERLAY_NAMES)]:
            path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    from rhmnet import load_model

    args = build_parser().parse_intermixed_args(argv)
    check_arguments(args)
    out = Path(args.out)
    frames = FrameSource.open(args.frames, args.max_frames)
    first = frames.peek()
    labels = load_scribble(Path(args.scribble), first.image.shape[:2], f"{args.frames}: {first.name}", args.bg_value)
    apply_threads(args.threads)
    device = select_device(args.device)
    config = load_config(args.config, args.overrides) if args.config else None
    prepare_out(out, args.overwrite)
    model = load_model(args.checkpoint, config=config, device=device, overrides=args.overrides)
    segmenter = make_segmenter(model, model.cfg, args.precision, args.compile)
    meter = SpeedMeter(device)
    writer = OverlayWriter(out, args.overlay, args.fps)
    segment_video(segmenter, frames, labels, sink=PaletteWriter(out / "masks"), meter=meter,
                  record_name=Path(args.frames).name,
                  on_frame=lambda frame, result: writer.add(overlay(frame.image, result.labels)))
    path = writer.close()
    print(meter.format())
    print(f"masks: {out / 'masks'}" + (f"; overlay: {path}" if path else ""))
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Entry point with user errors turned into one-line messages."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
