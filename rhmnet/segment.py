"""Segment your own video from a scribble on its first frame.

    python -m rhmnet.segment --frames DIR_OR_VIDEO --scribble PNG --checkpoint CKPT --out DIR

``--frames`` is a folder of images (sorted by name) or a video file; ``--scribble`` is a single-channel
label image of the first frame (0 unlabeled, 1..10 objects, 11 background; ``--bg-value V`` marks another
value as the background scribble, e.g. N+1 in DAVIS-style files). Writes ``DIR/masks/<frame>.png``
(DAVIS palette) and an overlay video ``DIR/overlay.mp4`` (or ``overlay.gif``).

Safe by default: every argument is checked before the model loads; two frames with the same name (e.g.
``00002.jpg`` and ``00002.png``) are an error, and so is a video that decodes fewer frames than its header
says; ``--out`` must not be or contain the frames folder; a non-empty ``--out`` is an error unless
``--overwrite``. Results are written into a hidden folder inside ``--out`` and replace the earlier masks
and overlay only when the run has succeeded (a missing or broken checkpoint, a full disk: the earlier
results stay); ``DIR/masks`` or an overlay that is a symbolic link is an error, never followed. The
overlay is read back after writing. A scribble must be lossless (PNG, BMP): a JPEG is refused, its
compression noise would become phantom objects.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from rhmnet.cli_args import ArgumentParser
from rhmnet.config import load_config
from rhmnet.data.io import (
    read_label_map,
)
from rhmnet.errors import run_cli
from rhmnet.guards import OutputExistsError, OutputWriteError, StagedOutput, check_device, check_output, is_inside
from rhmnet.inference import InferenceError
from rhmnet.inference.driver import segment_video
from rhmnet.inference.frame_io import FrameSource, VideoIOError
from rhmnet.inference.mask_io import PaletteWriter
from rhmnet.inference.timing import SpeedMeter
from rhmnet.labels import BACKGROUND
from rhmnet.overlay import overlay
from rhmnet.ranges import AT_LEAST_1, Range, option
from rhmnet.runtime import add_speed_arguments, apply_threads, make_segmenter, select_device

OVERLAY_NAMES = ("overlay.mp4", "overlay.gif")
OUTPUT_ITEMS = ("masks", *OVERLAY_NAMES)  # what a run writes into --out (and replaces with --overwrite)
FPS_RANGE = Range(0.01, 1000)  # overlay frame rates the writers handle (OpenCV spins on inf, PIL on tiny ones)


def load_scribble(
    path: Path, frame_shape: tuple[int, int], first_frame: str, bg_value: int | None
) -> np.ndarray:
    """The first-frame label map, checked against the frame size (an error naming both files otherwise)."""
    labels = read_label_map(path)
    if labels.shape != frame_shape:
        raise InferenceError(
            f"scribble {path} is {labels.shape[1]}x{labels.shape[0]} but the first frame ({first_frame}) is "
            f"{frame_shape[1]}x{frame_shape[0]}"
        )
    if bg_value is not None:
        labels = np.where(labels == bg_value, BACKGROUND, labels).astype(np.uint8)
    if int(labels.max()) > BACKGROUND:
        raise InferenceError(f"{path}: values above {BACKGROUND} (use --bg-value for the background value)")
    return labels


class OverlayWriter:
    """MP4 via OpenCV, falling back to an animated GIF (PIL) when no MP4 encoder is available. The file is
    read back on :meth:`close`: one that does not hold every frame (e.g. a full disk) is an
    :class:`OutputWriteError`."""

    def __init__(self, out_dir: Path, kind: str, fps: float) -> None:
        problem = FPS_RANGE.problem(fps)
        if problem is not None:
            raise ValueError(f"overlay frame rate {problem}")
        self.out_dir, self.kind, self.fps = out_dir, kind, fps
        self.video: cv2.VideoWriter | None = None
        self.gif: list[Image.Image] = []
        self.path: Path | None = None
        self.frames = 0

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
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and read it back; its path (None when no overlay was written)."""
        if self.video is not None:
            self.video.release()
        elif self.gif:
            self.path = self.out_dir / "overlay.gif"
            duration = max(int(1000 / self.fps), 20)
            self.gif[0].save(self.path, save_all=True, append_images=self.gif[1:], duration=duration, loop=0)
        if self.path is not None:
            readable = readable_frames(self.path)
            if readable != self.frames:
                raise OutputWriteError(
                    f"overlay {self.path.name}: {self.frames} frames written but {readable} could be read back "
                    "(is the disk full?); earlier results were left as they were"
                )
        return self.path


def readable_frames(path: Path) -> int:
    """How many frames of a written video (OpenCV) or GIF (PIL) decode."""
    if path.suffix == ".gif":
        try:
            with Image.open(path) as image:
                return int(getattr(image, "n_frames", 1))
        except (OSError, ValueError):
            return 0
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.isOpened() and capture.grab():
        count += 1
    capture.release()
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description="Segment a video from a first-frame scribble (RHMNet)")
    parser.add_argument("--frames", required=True, help="folder of frames or a video file")
    parser.add_argument("--scribble", required=True, help="label image of the first frame")
    parser.add_argument("--checkpoint", required=True, help="checkpoint (ours or the authors' format)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--config", default=None, help="config name/path (default: from the checkpoint)")
    parser.add_argument("--bg-value", type=option(int, Range(1, 255)), default=None,
                        help="scribble value of the background (1-255)")
    parser.add_argument("--overlay", choices=("mp4", "gif", "none"), default="mp4", help="overlay output")
    parser.add_argument("--fps", type=option(float, FPS_RANGE), default=12.0,
                        help=f"frame rate of the overlay ({FPS_RANGE.text()})")
    parser.add_argument("--max-frames", type=option(int, AT_LEAST_1), default=None,
                        help="stop after this many frames")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the masks and overlay of an earlier run in --out (once this run has succeeded)")
    add_speed_arguments(parser)
    parser.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Everything that can be checked before a frame is read or the model loads (the numbers' ranges are
    checked by the parser)."""
    if args.device:
        check_device(args.device)
    frames, out = Path(args.frames), Path(args.out)
    if not frames.exists():
        raise VideoIOError(f"frames not found: {frames}")
    check_output(out, True, OUTPUT_ITEMS, what="--out")  # a folder (or absent), no symbolic link among the outputs
    source_dir = frames if frames.is_dir() else frames.parent
    if is_inside(source_dir, out) or is_inside(args.scribble, out):
        raise OutputExistsError(
            f"--out {out} holds the input frames or scribble ({frames}); masks and overlays would be written "
            "among them. Choose another output folder"
        )


def main(argv: list[str] | None = None) -> int:
    from rhmnet import load_model

    args = build_parser().parse_intermixed_args(argv)
    check_arguments(args)
    out = Path(args.out)
    apply_threads(args.threads)
    device = select_device(args.device)
    config = load_config(args.config, args.overrides) if args.config else None
    with FrameSource.open(args.frames, args.max_frames) as frames:  # the decoding thread stops on any error
        first = frames.peek()
        labels = load_scribble(Path(args.scribble), first.image.shape[:2], f"{args.frames}: {first.name}",
                               args.bg_value)
        check_output(out, args.overwrite, what="--out")  # inputs first, then earlier results
        model = load_model(args.checkpoint, config=config, device=device, overrides=args.overrides)
        segmenter = make_segmenter(model, model.cfg, args.precision, args.compile)
        meter = SpeedMeter(device)
        with StagedOutput(out, OUTPUT_ITEMS) as stage:  # earlier results replaced only after success
            writer = OverlayWriter(stage, args.overlay, args.fps)
            segment_video(segmenter, frames, labels, sink=PaletteWriter(stage / "masks"), meter=meter,
                          record_name=Path(args.frames).name,
                          on_frame=lambda frame, result: writer.add(overlay(frame.image, result.labels)))
            written = writer.close()
    path = out / written.name if written is not None else None
    print(meter.format())
    print(f"masks: {out / 'masks'}" + (f"; overlay: {path}" if path else ""))
    return 0


def cli(argv: list[str] | None = None) -> int:
    """Entry point with user errors turned into one-line messages."""
    return run_cli(main, argv)


if __name__ == "__main__":
    sys.exit(cli())
