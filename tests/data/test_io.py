"""File readers and writers: round trips, the DAVIS palette, errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rhmnet.data.io import (
    DAVIS_PALETTE,
    DatasetError,
    read_davis_eval_scribble,
    read_image,
    read_image_set,
    read_palette_png,
    read_scribble,
    read_ytb_eval_scribble,
    write_image,
    write_palette_png,
    write_scribble,
)


def test_davis_palette() -> None:
    assert DAVIS_PALETTE.shape == (256, 3)
    assert DAVIS_PALETTE[:4].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0]]
    assert DAVIS_PALETTE[255].tolist() == [224, 224, 192]


def test_palette_png_round_trip(tmp_path: Path) -> None:
    mask = np.random.default_rng(0).integers(0, 4, size=(9, 13)).astype(np.uint8)
    path = tmp_path / "a" / "00000.png"
    write_palette_png(path, mask)
    image = Image.open(path)
    assert image.mode == "P" and image.getpalette()[3:6] == [128, 0, 0]
    assert np.array_equal(read_palette_png(path), mask)


def test_scribble_round_trip_and_eval_readers(tmp_path: Path) -> None:
    scribble = np.array([[0, 1, 2, 3, 3]], dtype=np.uint8)
    path = tmp_path / "s.bmp"
    write_scribble(path, scribble)
    assert Image.open(path).mode == "L"
    assert np.array_equal(read_scribble(path), scribble)
    assert read_davis_eval_scribble(path).tolist() == [[0, 1, 2, 0, 0]]
    assert read_davis_eval_scribble(path, with_bg=True).tolist() == [[0, 1, 2, 11, 11]]
    assert read_ytb_eval_scribble(path, num_objects=2).tolist() == [[0, 1, 2, 0, 0]]


def test_image_round_trip(tmp_path: Path) -> None:
    image = np.zeros((8, 10, 3), dtype=np.uint8)
    image[..., 0] = 200  # red
    write_image(tmp_path / "f.png", image)
    assert np.array_equal(read_image(tmp_path / "f.png"), image)


def test_missing_and_corrupt_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="missing.*nothing.jpg"):
        read_image(tmp_path / "nothing.jpg")
    with pytest.raises(DatasetError, match="missing.*nothing.bmp"):
        read_scribble(tmp_path / "nothing.bmp")
    corrupt = tmp_path / "corrupt.bmp"
    corrupt.write_bytes(b"BM this is not a bitmap")
    with pytest.raises(DatasetError, match="corrupt.bmp"):
        read_scribble(corrupt)
    corrupt_jpg = tmp_path / "corrupt.jpg"
    corrupt_jpg.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DatasetError, match="corrupt.jpg"):
        read_image(corrupt_jpg)


def test_scribble_value_above_11_and_colour_scribble(tmp_path: Path) -> None:
    path = tmp_path / "high.bmp"
    write_scribble(path, np.array([[0, 12]], dtype=np.uint8))
    with pytest.raises(DatasetError, match="high.bmp.*value 12"):
        read_scribble(path)
    assert read_scribble(path, max_value=None).max() == 12
    colour = tmp_path / "rgb.bmp"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(colour)
    with pytest.raises(DatasetError, match="rgb.bmp.*single-channel"):
        read_scribble(colour)


def test_empty_image_set(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match="empty image set.*train.txt"):
        read_image_set(tmp_path / "train.txt")
    with pytest.raises(DatasetError, match="missing image-set"):
        read_image_set(tmp_path / "val.txt")


def test_truncated_jpeg_is_an_error_and_valid_jpegs_read_as_before(tmp_path: Path) -> None:
    """A JPEG cut to a third decodes with grey rows in libjpeg (a warning only): it must be an error naming
    the file. Complete JPEGs (progressive too) decode exactly as OpenCV's reader does."""
    import cv2

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), (5, 5), 0)
    for name, params in [("base.jpg", []), ("prog.jpg", [int(cv2.IMWRITE_JPEG_PROGRESSIVE), 1])]:
        path = tmp_path / name
        assert cv2.imwrite(str(path), image, params)
        expected = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert np.array_equal(read_image(path), expected)
        cut = tmp_path / f"cut_{name}"
        data = path.read_bytes()
        cut.write_bytes(data[: len(data) // 3])
        with pytest.raises(DatasetError, match=f"{cut.name}: truncated JPEG"):
            read_image(cut)
        padded = tmp_path / f"padded_{name}"  # bytes after the end-of-image marker are harmless
        padded.write_bytes(data + b"\0" * 16)
        assert np.array_equal(read_image(padded), expected)
