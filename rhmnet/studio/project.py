"""One studio project: a video, its strokes (saved as they are drawn), the propagated masks and the export.

Strokes are polylines in frame pixels: ``{"frame": i, "label": 1..10 object, 11 background, 0 eraser,
"size": width in pixels, "points": [[x, y], ...]}``; a frame's scribble is its strokes drawn in order
(:func:`rasterise`). Every change rewrites ``<out>/strokes.autosave.json`` atomically (temporary file, then
rename), so a reload or a restart of the server with the same ``--out`` continues where the work stopped.

``propagate`` segments the video in a background thread from every frame that has strokes
(:func:`rhmnet.inference.annotated.segment_annotated`), newest annotated frame first; masks are kept in
memory as PNG bytes and replace the previous propagation's frame by frame. Nothing is written to disk until
``export``, which builds its files in a temporary folder inside ``--out`` and renames them into place.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from rhmnet.data.io import DAVIS_PALETTE, write_palette_png
from rhmnet.errors import RHMNetError
from rhmnet.guards import StagedOutput, replace_file
from rhmnet.inference import FrameResult, VideoSegmenter
from rhmnet.inference.annotated import segment_annotated
from rhmnet.labels import BACKGROUND, MAX_OBJECTS
from rhmnet.overlay import overlay
from rhmnet.segment import OVERLAY_NAMES, OverlayWriter
from rhmnet.studio.frames import FrameStore

AUTOSAVE = "strokes.autosave.json"
EXPORTED_STROKES = "strokes.json"
STROKES_FORMAT = "rhmnet-studio-strokes"
MAX_STROKE_POINTS = 20000
MAX_STROKE_SIZE = 200


class StudioError(RHMNetError, ValueError):
    """Bad input to the studio (a stroke, a strokes file, an export request)."""


class Cancelled(Exception):
    """A propagation replaced by a newer one."""


def check_stroke(stroke: Any, num_frames: int, size: tuple[int, int]) -> dict[str, Any]:
    """A stroke as stored (ints and lists only), or a StudioError saying what is wrong."""
    if not isinstance(stroke, dict):
        raise StudioError("a stroke must be an object with frame, label, size and points")
    try:
        frame, label, width = int(stroke["frame"]), int(stroke["label"]), int(stroke["size"])
        points = [[float(x), float(y)] for x, y in stroke["points"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise StudioError(f"a stroke needs frame, label, size and points [[x, y], ...] ({exc})") from None
    if not 0 <= frame < num_frames:
        raise StudioError(f"stroke frame {frame} outside 0..{num_frames - 1}")
    if not 0 <= label <= BACKGROUND:
        raise StudioError(f"stroke label {label} outside 0..{BACKGROUND} (0 eraser, 11 background)")
    if not 1 <= width <= MAX_STROKE_SIZE:
        raise StudioError(f"stroke size {width} outside 1..{MAX_STROKE_SIZE}")
    if not 1 <= len(points) <= MAX_STROKE_POINTS:
        raise StudioError(f"a stroke needs 1..{MAX_STROKE_POINTS} points, got {len(points)}")
    h, w = size
    points = [[round(min(max(x, 0.0), w - 1), 1), round(min(max(y, 0.0), h - 1), 1)] for x, y in points]
    return {"frame": frame, "label": label, "size": width, "points": points}


def rasterise(strokes: list[dict[str, Any]], size: tuple[int, int]) -> np.ndarray:
    """The label map ``[H, W]`` (0 unlabeled, 1..10 objects, 11 background) of one frame's strokes, drawn
    in order with round caps (the eraser, label 0, clears)."""
    labels = np.zeros(size, np.uint8)
    for stroke in strokes:
        pts = np.round(np.asarray(stroke["points"], np.float64)).astype(np.int32)
        width = int(stroke["size"])
        if len(pts) == 1:
            cv2.circle(labels, tuple(int(v) for v in pts[0]), max(width // 2, 0), int(stroke["label"]), -1)
        else:
            cv2.polylines(labels, [pts.reshape(-1, 1, 2)], False, int(stroke["label"]), thickness=width)
            for end in (pts[0], pts[-1]):  # round caps, as the page draws them
                cv2.circle(labels, tuple(int(v) for v in end), max(width // 2, 0), int(stroke["label"]), -1)
    return labels


def label_png(labels: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", labels)
    if not ok:
        raise StudioError("cannot encode a mask")
    return data.tobytes()


def overlay_png(label_bytes: bytes) -> bytes:
    """The page's overlay: objects in their DAVIS colour, background transparent (RGBA PNG)."""
    labels = cv2.imdecode(np.frombuffer(label_bytes, np.uint8), cv2.IMREAD_UNCHANGED)
    objects = (labels > 0) & (labels <= MAX_OBJECTS)
    rgba = np.zeros((*labels.shape, 4), np.uint8)
    rgba[..., :3] = DAVIS_PALETTE[np.where(objects, labels, 0)][..., ::-1]  # OpenCV writes BGR(A)
    rgba[..., 3] = np.where(objects, 255, 0)
    ok, data = cv2.imencode(".png", rgba)
    return data.tobytes()


class Project:
    """Strokes, masks and export of one video; thread-safe (requests and the propagation thread)."""

    def __init__(self, frames: FrameStore, segmenter: VideoSegmenter, out: Path,
                 strokes_file: Optional[Path] = None) -> None:
        self.frames = frames
        self.segmenter = segmenter
        self.out = out
        self._lock = threading.RLock()
        self._starting = threading.Lock()
        self.strokes: list[dict[str, Any]] = []
        self.redo_stack: list[dict[str, Any]] = []
        self.masks: list[Optional[bytes]] = [None] * len(frames)
        self.revisions = [0] * len(frames)
        self.state = "idle"  # idle | working | done | error
        self.message = ""
        self.job = 0
        self.done = 0
        self.total = 0
        self.seconds = 0.0
        self._cancel = threading.Event()
        self._thread: Optional[threading.Thread] = None
        for leftover in out.glob(".partial-*"):  # an export cut short (killed server): never half-used
            shutil.rmtree(leftover, ignore_errors=True)
        source = strokes_file if strokes_file is not None else out / AUTOSAVE
        if source.is_file():
            self._load_strokes(source)
            if strokes_file is not None:
                self._autosave()

    # -- strokes -------------------------------------------------------------------------------------
    def _load_strokes(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StudioError(f"{path}: not a readable strokes file ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != STROKES_FORMAT:
            raise StudioError(f"{path}: not a strokes file of rhmnet-studio (no format {STROKES_FORMAT!r})")
        if data.get("frames") != len(self.frames) or data.get("size") != list(self.frames.size):
            raise StudioError(
                f"{path}: strokes for {data.get('frames')} frames of size {data.get('size')}, but the video has "
                f"{len(self.frames)} frames of size {list(self.frames.size)}"
            )
        try:
            self.strokes = [check_stroke(s, len(self.frames), self.frames.size) for s in data.get("strokes", [])]
            self.redo_stack = [check_stroke(s, len(self.frames), self.frames.size) for s in data.get("redo", [])]
        except StudioError as exc:
            raise StudioError(f"{path}: {exc}") from None

    def _document(self, with_redo: bool = True) -> bytes:
        data = {"format": STROKES_FORMAT, "version": 1, "frames": len(self.frames), "size": list(self.frames.size),
                "names": self.frames.names, "strokes": self.strokes}
        if with_redo:
            data["redo"] = self.redo_stack
        return json.dumps(data).encode()

    def _autosave(self) -> None:
        document = self._document()
        replace_file(self.out / AUTOSAVE, lambda temporary: temporary.write_bytes(document))

    def stroke_state(self) -> dict[str, Any]:
        with self._lock:
            return {"strokes": self.strokes, "can_undo": bool(self.strokes), "can_redo": bool(self.redo_stack)}

    def add_stroke(self, stroke: Any) -> dict[str, Any]:
        checked = check_stroke(stroke, len(self.frames), self.frames.size)
        with self._lock:
            self.strokes.append(checked)
            self.redo_stack.clear()
            self._autosave()
            return self.stroke_state()

    def undo(self) -> dict[str, Any]:
        return self._move_last(self.strokes, self.redo_stack)

    def redo(self) -> dict[str, Any]:
        return self._move_last(self.redo_stack, self.strokes)

    def _move_last(self, source: list[dict[str, Any]], target: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            if source:
                target.append(source.pop())
                self._autosave()
            return self.stroke_state()

    def scribbles(self) -> tuple[dict[int, np.ndarray], list[int]]:
        """Label maps of the frames with strokes (that leave any label), and those frames, newest first."""
        with self._lock:
            strokes = list(self.strokes)
        by_frame: dict[int, list[dict[str, Any]]] = {}
        for stroke in strokes:
            by_frame.setdefault(stroke["frame"], []).append(stroke)
        maps = {f: rasterise(s, self.frames.size) for f, s in by_frame.items()}
        maps = {f: m for f, m in maps.items() if m.any()}
        newest = [s["frame"] for s in reversed(strokes)]
        return maps, [f for f in dict.fromkeys(newest) if f in maps]

    # -- propagation ---------------------------------------------------------------------------------
    def propagate(self) -> int:
        """Start segmenting the whole video from the current strokes (a running propagation stops first);
        returns the job number."""
        scribbles, newest = self.scribbles()
        if not any(int(m[(m >= 1) & (m <= MAX_OBJECTS)].size) for m in scribbles.values()):
            raise StudioError("draw a stroke with an object brush (1-10) first")
        with self._starting:  # two Propagate requests at once: one worker after the other, never two
            self._stop_running()
            with self._lock:
                self.job += 1
                self.state, self.message, self.done, self.total = "working", "", 0, len(self.frames)
                job = self.job
                self._cancel = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(job, scribbles, newest, self._cancel),
                                            name="rhmnet-studio-propagate", daemon=True)
            self._thread.start()
        return job

    def _stop_running(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._cancel.set()
            self._thread.join()

    def _run(self, job: int, scribbles: dict[int, np.ndarray], newest: list[int], cancel: threading.Event) -> None:
        start = time.perf_counter()

        def store(index: int, result: FrameResult) -> None:
            if cancel.is_set():
                raise Cancelled
            data = label_png(result.labels)
            with self._lock:
                self.masks[index] = data
                self.revisions[index] += 1
                self.done += 1

        try:
            segment_annotated(self.segmenter, self.frames.image, len(self.frames), scribbles, store, first=newest)
        except Cancelled:
            return
        except Exception as exc:  # noqa: BLE001 - shown on the page; the server keeps running
            with self._lock:
                if self.job == job:
                    self.state, self.message = "error", f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            if self.job == job:
                self.state, self.seconds = "done", time.perf_counter() - start

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"state": self.state, "message": self.message, "job": self.job, "done": self.done,
                    "total": self.total, "seconds": round(self.seconds, 2), "revisions": self.revisions}

    def mask(self, index: int) -> Optional[bytes]:
        with self._lock:
            return self.masks[index]

    def close(self) -> None:
        with self._starting:
            self._stop_running()

    # -- export --------------------------------------------------------------------------------------
    def existing_results(self) -> list[str]:
        """Results of an earlier export in ``--out`` that an export would replace."""
        names = [n for n in (*OVERLAY_NAMES, EXPORTED_STROKES) if (self.out / n).exists()]
        masks = self.out / "masks"
        if masks.is_dir() and any(masks.iterdir()):
            names.insert(0, "masks/")
        return names

    def export(self, overwrite: bool, fps: float) -> dict[str, str]:
        """Write ``masks/<frame>.png``, the overlay video and ``strokes.json`` into ``--out`` through
        :class:`~rhmnet.guards.StagedOutput` (an interrupted export leaves the earlier results whole; links
        are refused). Earlier results are replaced only with ``overwrite``."""
        with self._lock:
            if self.state == "working":
                raise StudioError("propagation is still running; export when it is done")
            if any(m is None for m in self.masks):
                raise StudioError("not every frame has a mask yet: propagate first")
            masks = list(self.masks)
            document = self._document(with_redo=False)
        existing = self.existing_results()
        if existing and not overwrite:
            raise ExportExists(f"{self.out} already holds {', '.join(existing)}; confirm to replace them")
        with StagedOutput(self.out, ["masks", *OVERLAY_NAMES, EXPORTED_STROKES]) as work:
            writer = OverlayWriter(work, "mp4", fps)
            for index, data in enumerate(masks):
                labels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
                write_palette_png(work / "masks" / f"{self.frames.names[index]}.png", labels)
                writer.add(overlay(self.frames.image(index), labels))
            overlay_path = writer.close()  # an overlay of the other kind is removed as stale
            (work / EXPORTED_STROKES).write_bytes(document)
        written = {"masks": str(self.out / "masks"), "strokes": str(self.out / EXPORTED_STROKES)}
        if overlay_path is not None:
            written["overlay"] = str(self.out / overlay_path.name)
        return written


class ExportExists(StudioError):
    """An export would replace earlier results and was not confirmed."""
