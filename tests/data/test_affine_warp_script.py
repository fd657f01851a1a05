"""The affine augmentation is its random steps combined, and scripts/measure_affine_warp.py compares that
one warp with a warp per step."""

from __future__ import annotations

import numpy as np

from rhmnet.data.augment import random_affine_matrix, random_affine_steps
from tests.conftest import load_script

warps = load_script("measure_affine_warp")


def test_the_matrix_is_the_product_of_the_steps():
    for seed in range(20):
        steps = random_affine_steps(90, 160, np.random.default_rng(seed))
        product = np.eye(3)
        for step in steps:
            product = step @ product
        np.testing.assert_array_equal(product[:2], random_affine_matrix(90, 160, np.random.default_rng(seed)))


def about_centre(linear: np.ndarray, cx: float, cy: float) -> np.ndarray:
    shift, back = np.eye(3), np.eye(3)
    shift[:2, 2], back[:2, 2] = (-cx, -cy), (cx, cy)
    return back @ linear @ shift


def test_one_step_is_one_warp_and_two_steps_differ():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    label = np.zeros((64, 96), np.uint8)
    label[16:48, 24:72] = 1
    rotate = about_centre(np.array([[0.8, -0.6, 0], [0.6, 0.8, 0], [0, 0, 1.0]]), 47.5, 31.5)
    shrink = about_centre(np.diag([0.7, 0.7, 1.0]), 47.5, 31.5)
    combined, sequential = warps.combined_and_sequential(image, label, [rotate])
    assert all(np.array_equal(a, b) for a, b in zip(combined, sequential))
    combined, sequential = warps.combined_and_sequential(image, label, [rotate, shrink])
    assert not np.array_equal(combined[0], sequential[0])
