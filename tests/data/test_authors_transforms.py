"""Image reading and geometric transforms match the authors' libraries: imgaug 0.4.0's shear, PIL's
NEAREST label resizing and PIL's reader (EXIF orientation ignored). Hand-made inputs."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from rhmnet.data.augment import (
    _about_center,
    imgaug_shear_matrix,
    random_affine_matrix,
    resize_label_nearest,
    resize_pair,
    warp_affine_pair,
)
from rhmnet.data.io import read_image


def test_imgaug_shear_matrix_15_degrees() -> None:
    # imgaug 0.4.0, Affine(shear=(-15, 15)), sampled s = 15: skimage x-shear [[1, -sin s], [0, cos s]] after
    # the y-shear R(+90) [[1, -sin s], [0, cos s]] R(-90) = [[cos s, 0], [sin s, 1]]
    c, s = math.cos(math.radians(15)), math.sin(math.radians(15))
    expected = np.array([[c - s * s, -s, 0], [s * c, c, 0], [0, 0, 1]])
    assert np.allclose(expected[:2, :2], [[0.898938, -0.258819], [0.25, 0.965926]], atol=1e-6)
    matrix = imgaug_shear_matrix(15.0)
    assert np.allclose(matrix, expected, atol=1e-6)  # imgaug rotates by 3.141592 / 2, not pi / 2
    assert np.linalg.det(matrix[:2, :2]) == pytest.approx(c * c, abs=1e-6)
    assert np.allclose(imgaug_shear_matrix(0.0), np.eye(3), atol=1e-6)


def _centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.mean()), float(ys.mean())


def test_shear_warps_a_test_pattern_like_imgaug() -> None:
    """Two 3x3 dots 6 px right of and 6 px below the centre of a 21x21 label map move as imgaug's shear
    moves them (a pure x-shear would leave the right dot's row and shift the lower one by +1.6 px)."""
    label = np.zeros((21, 21), np.uint8)
    label[9:12, 15:18] = 1  # centre (16, 10): offset (6, 0) from the image centre (10, 10)
    label[15:18, 9:12] = 2  # centre (10, 16): offset (0, 6)
    image = np.dstack([label * 100] * 3).astype(np.uint8)
    matrix = _about_center(imgaug_shear_matrix(15.0), 10.0, 10.0)[:2]
    warped_image, warped = warp_affine_pair(image, label, matrix)
    c, s = math.cos(math.radians(15)), math.sin(math.radians(15))
    right = _centroid(warped == 1)
    below = _centroid(warped == 2)
    assert right == pytest.approx((10 + 6 * (c - s * s), 10 + 6 * s * c), abs=0.35)  # (15.39, 11.50)
    assert below == pytest.approx((10 - 6 * s, 10 + 6 * c), abs=0.35)  # (8.45, 15.80)
    assert warped_image.shape == image.shape and warped_image[..., 0].max() > 0


def test_random_affine_shear_branch_is_imgaugs() -> None:
    """With the other transforms neutral, the drawn matrix has imgaug's shear structure for some s."""
    rng = np.random.default_rng(3)
    for _ in range(5):
        matrix = random_affine_matrix(9, 13, rng, p=1.0, rotate=0.0, translate=0, scale=(1.0, 1.0))
        linear = matrix[:, :2]
        cos_s, sin_s = linear[1, 1], -linear[0, 1]
        assert cos_s**2 + sin_s**2 == pytest.approx(1.0, abs=1e-6)
        assert abs(math.degrees(math.atan2(sin_s, cos_s))) <= 15.0 + 1e-6
        assert np.allclose(linear, imgaug_shear_matrix(math.degrees(math.atan2(sin_s, cos_s)))[:2, :2], atol=1e-6)
        centre = np.array([6.0, 4.0, 1.0])  # ((W-1)/2, (H-1)/2) stays fixed
        assert np.allclose(matrix @ centre, centre[:2])


def _label_map() -> np.ndarray:
    """13x17 map with thin strokes (1 px lines), a blob and the background value."""
    label = np.zeros((13, 17), np.uint8)
    label[2, 1:15] = 1
    label[3:12, 8] = 2
    label[9:12, 11:16] = 11
    label[6, 2] = 3
    label[::4, 16] = 5
    return label


@pytest.mark.parametrize("factor", [0.5, 0.8, 0.93, 1.1, 1.37, 2.0, 3.3])
def test_label_resize_is_pils_nearest(factor: float) -> None:
    label = _label_map()
    size = (int(label.shape[1] * factor), int(label.shape[0] * factor))
    expected = np.asarray(Image.fromarray(label).resize(size, resample=Image.NEAREST))
    assert np.array_equal(resize_label_nearest(label, size), expected)
    image = np.zeros((*label.shape, 3), np.uint8)
    assert np.array_equal(resize_pair(image, label, size)[1], expected)


def test_label_resize_differs_from_opencv_somewhere() -> None:
    """The case the change is about: OpenCV's INTER_NEAREST picks other source pixels at some scales."""
    label = _label_map()
    differs = [f for f in (0.8, 0.9, 1.1, 1.3) if not np.array_equal(
        resize_label_nearest(label, (int(17 * f), int(13 * f))),
        cv2.resize(label, (int(17 * f), int(13 * f)), interpolation=cv2.INTER_NEAREST))]
    assert differs


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_ignored_as_by_pil(tmp_path: Path, orientation: int) -> None:
    pixels = np.zeros((8, 16, 3), np.uint8)  # H 8, W 16: left half white, right half black
    pixels[:, :8] = 255
    pixels[:4, :, 0] = 200  # top half differs in red, so a 180 deg turn shows too
    path = tmp_path / f"o{orientation}.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif, quality=100)
    assert Image.open(path).getexif()[0x0112] == orientation
    ours = read_image(path)
    pil = np.asarray(Image.open(path).convert("RGB"))
    assert ours.shape == pil.shape == (8, 16, 3)
    assert np.abs(ours.astype(int) - pil.astype(int)).max() <= 8  # two JPEG decoders
    assert ours[:, :4].mean() > 200 and ours[:, 12:].mean() < 60  # not turned
    assert ours[:2, 12:, 0].mean() > ours[6:, 12:, 0].mean() + 100  # not turned upside down
    assert cv2.imread(str(path)).shape[:2] == ((16, 8) if orientation in (6, 8) else (8, 16))
