"""Reading and writing the files of the scribble datasets: RGB frames, single-channel scribble ``.bmp``
files and palette PNG masks (DAVIS palette). Every failure raises :class:`DatasetError` naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from rhmnet.errors import RHMNetError
from rhmnet.guards import read_name_list
from rhmnet.labels import BACKGROUND, remap_davis_eval_scribble, remap_ytb_eval_scribble

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class DatasetError(RHMNetError, ValueError):
    """A dataset file or folder is missing, unreadable or inconsistent (the message names it)."""


def _make_davis_palette() -> np.ndarray:
    """The DAVIS / PASCAL-VOC colour map: 256 RGB triplets built from the bits of the index."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for index in range(256):
        code, rgb = index, [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((code >> channel) & 1) << (7 - bit)
            code >>= 3
        palette[index] = rgb
    return palette


DAVIS_PALETTE: np.ndarray = _make_davis_palette()


def _open(path: Path) -> Image.Image:
    """Open an image file fully (decoding it now) or raise a DatasetError naming it."""
    if path.is_dir():
        raise DatasetError(f"{path} is a folder, not an image file")
    if not path.is_file():
        raise DatasetError(f"missing file: {path}")
    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DatasetError(f"cannot read {path}: corrupt or not an image ({exc})") from None
    return image


def jpeg_is_complete(data: bytes) -> bool:
    """Whether JPEG bytes end their last scan with an end-of-image marker (FFD9).

    Inside entropy-coded data every 0xFF byte is followed by 0x00 or a restart marker, so neither the
    start-of-scan (FFDA) nor the end-of-image marker can occur there by chance: a file cut anywhere after
    its last scan started lacks FFD9 after that scan's FFDA. (libjpeg only warns about such files and fills
    the missing rows with grey.)"""
    last_scan = data.rfind(b"\xff\xda")
    return last_scan >= 0 and data.find(b"\xff\xd9", last_scan) >= 0


def read_image(path: str | Path) -> np.ndarray:
    """An RGB frame as uint8 [H, W, 3], pixels as stored: an EXIF orientation tag is ignored, as by
    ``PIL.Image.open(path).convert('RGB')`` (the authors' reader), so frames stay aligned with their
    scribble files. A truncated JPEG is a DatasetError, not a half-grey frame."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing image: {path}")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    if raw[:2] == b"\xff\xd8" and not jpeg_is_complete(raw):
        raise DatasetError(f"{path}: truncated JPEG (no end-of-image marker after the last scan)")
    data = cv2.imdecode(np.frombuffer(raw, dtype=np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if data is None:  # OpenCV could not decode it; let PIL try (and name the problem)
        return np.asarray(_open(path).convert("RGB"))
    return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)


def read_frame_like(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    """:func:`read_image` of a video frame that must have the first frame's ``shape`` (an error naming the
    file otherwise, instead of the model's unnamed size mismatch)."""
    image = read_image(path)
    if image.shape != tuple(shape):
        raise DatasetError(
            f"{path}: frame size {image.shape[1]}x{image.shape[0]} differs from the first frame's "
            f"{shape[1]}x{shape[0]}"
        )
    return image


LOSSY_FORMATS = ("JPEG", "MPO")  # compression noise would turn into label values (phantom objects)


def read_label_map(path: str | Path) -> np.ndarray:
    """A single-channel label file (scribble ``.bmp`` or palette/grey PNG) as uint8 [H, W] of raw values.
    A JPEG is refused whatever its name: its compression noise would become labels (e.g. a phantom object)."""
    path = Path(path)
    image = _open(path)
    if image.format in LOSSY_FORMATS:
        raise DatasetError(
            f"{path}: a JPEG label image; lossy compression changes label values (noise would become objects). "
            "Save scribbles and masks losslessly (PNG or BMP)"
        )
    if image.mode not in ("P", "L"):
        raise DatasetError(
            f"{path}: expected a single-channel (palette or grey) label image, got mode {image.mode}"
        )
    return np.array(image, dtype=np.uint8)


def read_scribble(path: str | Path, max_value: int | None = BACKGROUND) -> np.ndarray:
    """A raw scribble file (values 0 = unlabeled, 1..N objects, N+1 background) as uint8 [H, W].

    Values above ``max_value`` (11 by default: at most 10 objects plus background) are an error; pass
    ``None`` to allow any value (COCO files, whose values >= 11 are dropped on load).
    """
    scribble = read_label_map(path)
    if max_value is not None and scribble.size and int(scribble.max()) > max_value:
        raise DatasetError(
            f"{path}: scribble value {int(scribble.max())} above {max_value} "
            f"(at most {max_value - 1} objects plus background are supported)"
        )
    return scribble


def write_scribble(path: str | Path, scribble: np.ndarray) -> None:
    """Write a uint8 [H, W] scribble as a single-channel (grey) ``.bmp``, creating folders as needed."""
    _check_label_array(scribble, path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scribble.astype(np.uint8), mode="L").save(path)


def read_palette_png(path: str | Path) -> np.ndarray:
    """A palette (or grey) PNG mask as uint8 [H, W] of palette indices (object ids)."""
    return read_label_map(path)


def write_palette_png(path: str | Path, mask: np.ndarray, palette: np.ndarray = DAVIS_PALETTE) -> None:
    """Write a uint8 [H, W] id map as a palette PNG with the DAVIS palette, creating folders as needed."""
    _check_label_array(mask, path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(mask.astype(np.uint8), mode="P")
    image.putpalette(np.asarray(palette, dtype=np.uint8).reshape(-1).tolist())
    image.save(path)


def write_image(path: str | Path, image: np.ndarray, quality: int = 95) -> None:
    """Write an RGB uint8 [H, W, 3] frame (JPEG or PNG by suffix), creating folders as needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.uint8), cv2.COLOR_RGB2BGR)
    params = [int(cv2.IMWRITE_JPEG_QUALITY), quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), bgr, params):
        raise DatasetError(f"cannot write image {path}")


def _check_label_array(array: np.ndarray, path: str | Path) -> None:
    if array.ndim != 2:
        raise DatasetError(f"label map for {path} must be 2-D [H, W], got shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise DatasetError(f"label map for {path} has values outside 0..255")


def read_json(path: str | Path) -> Any:
    """Parse a JSON file, raising DatasetError naming it when missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing file: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, creating folders as needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def list_files(folder: str | Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of ``folder`` whose suffix is in ``suffixes`` (case-insensitive), sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def read_image_set(path: str | Path) -> list[str]:
    """Names listed one per line in an image-set file (DAVIS ``ImageSets/2017/train.txt``); each must be a
    plain name (``guards.safe_name``: an error naming the file and the line otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"missing image-set file: {path}")
    names = read_name_list(path)
    if not names:
        raise DatasetError(f"empty image set: {path}")
    return names


def read_davis_eval_scribble(
    path: str | Path, with_bg: bool = False, num_objects: int | None = None
) -> np.ndarray:
    """A DAVIS evaluation scribble (``valid_scribbles{g}/{video}.bmp``) as a label map, uint8 [H, W].

    The background scribble becomes 11 with ``with_bg``, else 0 (the default). It is the largest value
    (the authors' rule) unless ``num_objects`` is given (then ``num_objects + 1``; use it for files that
    may lack background strokes, such as converted DAVIS interactive scribbles).
    """
    return remap_davis_eval_scribble(read_scribble(path), with_bg=with_bg, num_objects=num_objects)


def read_ytb_eval_scribble(path: str | Path, num_objects: int, with_bg: bool = False) -> np.ndarray:
    """A YouTube-VOS evaluation scribble (``valid_scribbles/{video}/{frame}.bmp``) as a label map.

    ``num_objects`` is the highest object id of the video; value ``num_objects + 1`` (background) becomes
    0, or 11 with ``with_bg``. Object values keep their ids.
    """
    return remap_ytb_eval_scribble(read_scribble(path), num_objects=num_objects, with_bg=with_bg)
