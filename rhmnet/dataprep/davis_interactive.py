"""Render the official DAVIS interactive-track scribble files into evaluation scribbles.

Input: ``{"sequence": str, "scribbles": [per frame: [{"path": [[x, y], ...] (normalised to [0, 1]),
"object_id": int, ...}, ...]]}``; ``object_id`` 0 is a background stroke. Output: the authors' format
``valid_scribbles{g}/{sequence}.bmp`` (object n = n, background = N+1, 0 = unlabeled) for one annotated
frame, plus a sidecar ``valid_scribbles{g}/{sequence}.json`` recording which frame it is.

The human strokes of a DAVIS file often sit on a frame other than 0 (frame 39 in ``bear/001.json``): by
default the first frame with strokes is rendered and the sidecar records its index; ``eval_davis.py``
then initialises on that frame and propagates forwards and backwards from it (``frame=0`` demands strokes
on frame 0 instead).

Human DAVIS files may hold no background stroke (``bear/001.json`` has none). The authors' evaluation
reader takes the largest value as background, which would then erase the highest object: ``eval_davis.py``
reads such files with the sidecar's object count (``read_davis_eval_scribble(path, num_objects=N)``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from rhmnet.data.io import DatasetError, read_image, read_json, read_palette_png, write_json, write_scribble
from rhmnet.guards import safe_name
from rhmnet.labels import MAX_OBJECTS


class ScribbleFrameWarning(UserWarning):
    """The rendered scribble does not belong to frame 0, or has no background stroke (informational:
    ``eval_davis.py`` handles both through the sidecar)."""


@dataclass(frozen=True)
class ConvertedScribble:
    """Where a converted scribble was written and what it holds."""

    sequence: str
    frame: int
    num_objects: int
    bmp_path: Path
    sidecar_path: Path


def load_interactive_scribbles(path: str | Path) -> dict[str, Any]:
    """Parse and check a DAVIS interactive scribble file."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("scribbles"), list):
        raise DatasetError(f"{path}: not a DAVIS interactive scribble file (expected a 'scribbles' list)")
    for frame, strokes in enumerate(data["scribbles"]):
        for stroke in strokes:
            if not isinstance(stroke, dict) or "path" not in stroke or "object_id" not in stroke:
                raise DatasetError(f"{path}: frame {frame} has a stroke without 'path' / 'object_id'")
    return data


def annotated_frames(data: dict[str, Any]) -> list[int]:
    """Indices of the frames that carry at least one stroke with points."""
    return [i for i, strokes in enumerate(data["scribbles"]) if any(len(s["path"]) for s in strokes)]


def render_strokes(
    strokes: list[dict[str, Any]], height: int, width: int, num_objects: int, thickness: int = 3
) -> np.ndarray:
    """uint8 [H, W] scribble of one frame's strokes: object n -> n, background (object_id 0) -> N+1.

    Normalised points are scaled by (W-1, H-1) and truncated, as the DAVIS interactive toolkit does, then
    joined by lines ``thickness`` pixels wide (the toolkit draws 1-pixel lines; thicker strokes survive
    the stride-16 block averaging of the initial memory better). Background strokes are drawn first,
    objects over them."""
    background_value = num_objects + 1
    scribble = np.zeros((height, width), dtype=np.uint8)
    scale = np.array([width - 1, height - 1], dtype=np.float64)
    ordered = sorted(strokes, key=lambda s: int(s["object_id"]) != 0)  # background first
    for stroke in ordered:
        points = np.asarray(stroke["path"], dtype=np.float64).reshape(-1, 2)
        if not len(points):
            continue
        obj = int(stroke["object_id"])
        if obj < 0 or obj > num_objects:
            raise ValueError(f"stroke object_id {obj} outside 0..{num_objects}")
        value = obj if obj else background_value
        outside = ~np.isfinite(points).all(1) | (points < 0.0).any(1) | (points > 1.0).any(1)
        if outside.any():
            index = int(np.argmax(outside))
            raise ValueError(
                f"stroke of object_id {obj}: point {index} {points[index].tolist()} is outside the normalised "
                f"range [0, 1] ({int(outside.sum())} of {len(points)} points)"
            )
        pixels = np.floor(points * scale).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(scribble, [pixels], isClosed=False, color=int(value), thickness=thickness)
        if len(points) == 1:
            cv2.circle(scribble, tuple(int(v) for v in pixels[0, 0]), max(1, thickness // 2), int(value), -1)
    return scribble


def _frame_size(davis_root: Path | None, sequence: str, size: tuple[int, int] | None) -> tuple[int, int]:
    """(height, width) from ``size`` or from the sequence's first 480p frame."""
    if size is not None:
        return size
    if davis_root is None:
        raise ValueError("give the frame size or the DAVIS root to read it from")
    frames = sorted((davis_root / "JPEGImages" / "480p" / sequence).glob("*.jpg"))
    if not frames:
        raise DatasetError(f"no frames for {sequence!r} in {davis_root / 'JPEGImages' / '480p' / sequence}")
    return read_image(frames[0]).shape[:2]


def _num_objects(davis_root: Path | None, sequence: str, data: dict[str, Any]) -> int:
    """N from the sequence's first annotation (as the evaluation does), else the largest object_id."""
    if davis_root is not None:
        annotations = sorted((davis_root / "Annotations" / "480p" / sequence).glob("*.png"))
        if annotations:
            ids = read_palette_png(annotations[0])
            return int(ids[ids < 255].max()) if (ids < 255).any() else 0
    return max((int(s["object_id"]) for strokes in data["scribbles"] for s in strokes), default=0)


def convert_interactive_file(
    json_path: str | Path,
    out_root: str | Path,
    group: int,
    davis_root: str | Path | None = None,
    size: tuple[int, int] | None = None,
    frame: int | None = None,
    num_objects: int | None = None,
    thickness: int = 3,
) -> ConvertedScribble:
    """Render one interactive file into ``<out_root>/valid_scribbles{group}/{sequence}.bmp`` (+ sidecar).

    ``frame``: which frame's strokes to render (default: the first annotated frame). ``num_objects``:
    N (default: max id of the first DAVIS annotation under ``davis_root``, else the largest object_id).
    """
    data = load_interactive_scribbles(json_path)
    sequence = safe_name(str(data.get("sequence") or Path(json_path).parent.name), json_path, "sequence name")
    frames = annotated_frames(data)
    if not frames:
        raise DatasetError(f"{json_path}: no frame carries a stroke")
    if frame is None:
        frame = frames[0]
    elif frame not in frames:
        raise DatasetError(f"{json_path}: frame {frame} has no strokes (annotated frames: {frames})")
    root = Path(davis_root) if davis_root is not None else None
    height, width = _frame_size(root, sequence, size)
    objects = num_objects if num_objects is not None else _num_objects(root, sequence, data)
    if not 1 <= objects <= MAX_OBJECTS:
        raise DatasetError(f"{json_path}: {objects} objects; expected 1..{MAX_OBJECTS}")
    try:
        scribble = render_strokes(data["scribbles"][frame], height, width, objects, thickness)
    except ValueError as exc:
        raise DatasetError(f"{json_path}: frame {frame}: {exc}") from None
    folder = Path(out_root) / f"valid_scribbles{group}"
    bmp_path, sidecar = folder / f"{sequence}.bmp", folder / f"{sequence}.json"
    write_scribble(bmp_path, scribble)
    write_json(
        sidecar,
        {
            "sequence": sequence,
            "frame": frame,
            "annotated_frames": frames,
            "num_objects": objects,
            "background_value": objects + 1,
            "source": Path(json_path).name,
            "thickness": thickness,
        },
    )
    if not (scribble == objects + 1).any():
        warnings.warn(
            f"{sequence}: {json_path} frame {frame} has no background stroke; eval_davis.py reads it with the "
            f"object count of {sidecar}; elsewhere use read_davis_eval_scribble(..., num_objects={objects})",
            ScribbleFrameWarning,
            stacklevel=2,
        )
    if frame != 0:
        warnings.warn(
            f"{sequence}: the scribble of {json_path} is on frame {frame}, not frame 0 (recorded in "
            f"{sidecar}; eval_davis.py propagates forwards and backwards from it)",
            ScribbleFrameWarning,
            stacklevel=2,
        )
    return ConvertedScribble(sequence, frame, objects, bmp_path, sidecar)
