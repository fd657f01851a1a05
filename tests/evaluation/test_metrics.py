"""J, F and statistics: hand-computed cases and regression against the official algorithm on real masks."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from PIL import Image

from rhmnet.evaluation.metrics import (
    boundary_f,
    boundary_radius,
    db_statistics,
    disk_kernel,
    jaccard,
    object_scores,
    seg2bmap,
)


def test_jaccard_hand_computed() -> None:
    gt = np.zeros((4, 4), bool)
    gt[0:2, 0:2] = True  # 4 pixels
    pred = np.zeros((4, 4), bool)
    pred[1:3, 1:3] = True  # 4 pixels, 1 shared
    assert jaccard(gt, pred) == pytest.approx(1 / 7)
    assert jaccard(gt, gt) == 1.0
    empty = np.zeros((4, 4), bool)
    assert jaccard(empty, empty) == 1.0  # both empty counts as perfect
    assert jaccard(gt, empty) == 0.0
    void = np.zeros((4, 4), bool)
    void[0, :] = True  # removes 2 gt pixels, the shared pixel stays
    assert jaccard(gt, pred, void) == pytest.approx(1 / 5)


def test_seg2bmap_hand_computed(official: ModuleType) -> None:
    seg = np.zeros((5, 6), bool)
    seg[1:3, 1:4] = True
    expected = np.zeros((5, 6), bool)
    # pixels whose 2x2 window (self, east, south, south-east) is mixed
    expected[0, 0:4] = True
    expected[1:3, 0] = True
    expected[1:3, 3] = True
    expected[2, 1:4] = True
    assert np.array_equal(seg2bmap(seg), expected)
    # last row / last column / corner rules
    edge = np.zeros((3, 3), bool)
    edge[2, 1] = True
    edge[1, 2] = True
    got = seg2bmap(edge)
    assert got[2, 0] and got[2, 1] and not got[2, 2]  # last row: compares with east only
    assert got[0, 2] and got[1, 2]  # last column: compares with south only
    assert np.array_equal(got, official.seg2bmap(edge))


def test_disk_and_radius() -> None:
    assert boundary_radius((480, 854)) == 8.0  # ceil(0.008 * 979.6)
    kernel = disk_kernel(2)
    assert kernel.tolist() == [
        [0, 0, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [1, 1, 1, 1, 1],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 0, 0],
    ]


def test_boundary_f_edge_cases() -> None:
    gt = np.zeros((50, 60), bool)
    gt[10:30, 10:40] = True
    empty = np.zeros_like(gt)
    assert boundary_f(gt, gt)[0] == 1.0
    assert boundary_f(gt, empty)[0] == 0.0  # precision 1, recall 0
    assert boundary_f(empty, gt)[0] == 0.0  # precision 0, recall 1
    assert boundary_f(empty, empty)[0] == 1.0
    far = np.zeros_like(gt)
    far[40:45, 50:55] = True
    assert boundary_f(gt, far)[0] == 0.0


def test_db_statistics_hand_computed(official: ModuleType) -> None:
    values = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    mean, recall, decay = db_statistics(values)
    assert mean == pytest.approx(0.65)
    assert recall == pytest.approx(5 / 8)  # strictly above 0.5
    # edges round(linspace(1, 8, 5)) - 1 = [0, 2, 4, 5, 7]: bins [0:3], [2:5], [4:6], [5:8]
    assert decay == pytest.approx(np.mean([1.0, 0.9, 0.8]) - np.mean([0.5, 0.4, 0.3]))
    for n in (1, 2, 3, 5, 17, 100):
        series = np.random.default_rng(n).random(n)
        assert np.allclose(db_statistics(series), official.db_statistics(series), atol=1e-12, equal_nan=True)


def _sample_stack(root: Path, seq: str) -> np.ndarray:
    paths = sorted((root / "Annotations" / "480p" / seq).glob("*.png"))
    return np.stack([np.array(Image.open(p)) for p in paths])


def _predictions(gt: np.ndarray) -> np.ndarray:
    """Eroded / dilated / shifted ground truth per frame, one empty frame and one far-off blob."""
    pred = np.zeros_like(gt)
    kernel = np.ones((7, 7), np.uint8)
    for t in range(len(gt)):
        mode = t % 3
        if mode == 0:
            pred[t] = cv2.erode(gt[t], kernel)
        elif mode == 1:
            pred[t] = cv2.dilate(gt[t], kernel)
        else:
            pred[t] = np.roll(gt[t], (t % 11) - 5, axis=(0, 1))
    pred[3] = 0
    pred[4] = 0
    pred[4, 5:15, 5:15] = 1
    return pred


@pytest.mark.parametrize("seq", ["blackswan", "car-shadow"])
def test_regression_on_real_masks(davis_sample: Path, seq: str, official: ModuleType) -> None:
    gt = _sample_stack(davis_sample, seq)
    # a second object: the right half of the foreground
    gt[:, :, gt.shape[2] // 2 :][gt[:, :, gt.shape[2] // 2 :] == 1] = 2
    pred = _predictions(gt)
    j, f = object_scores(gt, pred, 2)
    for obj in (1, 2):
        j_ref = official.db_eval_iou(gt == obj, pred == obj)
        f_ref = official.db_eval_boundary(gt == obj, pred == obj)
        np.testing.assert_allclose(j[obj - 1], j_ref, rtol=0, atol=1e-6)
        np.testing.assert_allclose(f[obj - 1], f_ref, rtol=0, atol=1e-6)
        np.testing.assert_allclose(db_statistics(j[obj - 1]), official.db_statistics(j_ref), atol=1e-6)
        np.testing.assert_allclose(db_statistics(f[obj - 1]), official.db_statistics(f_ref), atol=1e-6)
    assert 0.3 < j.mean() < 1.0 and 0.3 < f.mean() < 1.0  # a meaningful, non-trivial case


def test_regression_with_void(davis_sample: Path, official: ModuleType) -> None:
    gt = _sample_stack(davis_sample, "blackswan")[:12]
    pred = _predictions(gt)
    void = np.zeros(gt.shape, bool)
    void[:, 200:260, :] = True
    j, f = object_scores(gt, pred, 1, void)
    np.testing.assert_allclose(j[0], official.db_eval_iou(gt == 1, pred == 1, void), atol=1e-6)
    np.testing.assert_allclose(f[0], official.db_eval_boundary(gt == 1, pred == 1, void), atol=1e-6)
    np.testing.assert_allclose(jaccard(gt == 1, pred == 1, void), j[0], atol=1e-12)
    np.testing.assert_allclose(boundary_f(gt == 1, pred == 1, void), f[0], atol=1e-12)
