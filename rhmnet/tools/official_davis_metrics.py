"""Reference re-implementation of the official DAVIS 2017 semi-supervised evaluation.

This follows the algorithm and the data flow of ``davisvideochallenge/davis2017-evaluation`` step by step
(float64 frame stacks, one-hot stacks built by broadcasting, per-frame boundary loop, disk dilation with
OpenCV), so that it serves two purposes:

* ground truth for the regression tests of :mod:`rhmnet.evaluation.metrics` (numbers must agree to 1e-6);
* the "official" side of ``scripts/benchmark_davis_eval.py`` (its speed is representative of the toolkit).

It is deliberately *not* optimised. The only deviation from the toolkit is that scikit-image's
``disk(r)`` is written out (``x^2 + y^2 <= r^2`` on the integer grid ``[-r, r]^2``, which is exactly what
``skimage.morphology.disk`` returns with its default ``strict_radius=True``) so that no extra dependency
is needed. Void pixels (255) are folded into the background, as the toolkit does for the
semi-supervised task.
"""

from __future__ import annotations

import os
import warnings
from glob import glob

import cv2
import numpy as np
from PIL import Image


def disk(radius: float) -> np.ndarray:
    """Same array as ``skimage.morphology.disk(radius)`` (uint8, strict radius)."""
    grid = np.arange(-radius, radius + 1)
    xx, yy = np.meshgrid(grid, grid)
    return np.array((xx**2 + yy**2) <= radius**2, dtype=np.uint8)


def db_eval_iou(annotation: np.ndarray, segmentation: np.ndarray, void_pixels: np.ndarray | None = None):
    """Region similarity (Jaccard), per frame for 3-D input."""
    annotation = annotation.astype(bool)
    segmentation = segmentation.astype(bool)
    void_pixels = np.zeros_like(segmentation) if void_pixels is None else void_pixels.astype(bool)
    inters = np.sum((segmentation & annotation) & np.logical_not(void_pixels), axis=(-2, -1))
    union = np.sum((segmentation | annotation) & np.logical_not(void_pixels), axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inters / union
    if j.ndim == 0:
        j = 1 if np.isclose(union, 0) else j
    else:
        j[np.isclose(union, 0)] = 1
    return j


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel wide boundary map of a binary mask (boundaries offset half a pixel to the origin)."""
    seg = seg.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = 0
    return bmap


def f_measure(
    foreground_mask: np.ndarray,
    gt_mask: np.ndarray,
    void_pixels: np.ndarray | None = None,
    bound_th: float = 0.008,
) -> float:
    """Boundary F-measure of one frame."""
    void_pixels = (
        np.zeros_like(foreground_mask).astype(bool) if void_pixels is None else void_pixels.astype(bool)
    )
    bound_pix = bound_th if bound_th >= 1 else np.ceil(bound_th * np.linalg.norm(foreground_mask.shape))
    fg_boundary = seg2bmap(foreground_mask * np.logical_not(void_pixels))
    gt_boundary = seg2bmap(gt_mask * np.logical_not(void_pixels))
    kernel = disk(bound_pix)
    fg_dil = cv2.dilate(fg_boundary.astype(np.uint8), kernel)
    gt_dil = cv2.dilate(gt_boundary.astype(np.uint8), kernel)
    gt_match = gt_boundary * fg_dil
    fg_match = fg_boundary * gt_dil
    n_fg = np.sum(fg_boundary)
    n_gt = np.sum(gt_boundary)
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1, 0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0, 1
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1, 1
    else:
        precision = np.sum(fg_match) / float(n_fg)
        recall = np.sum(gt_match) / float(n_gt)
    if precision + recall == 0:
        return 0
    return 2 * precision * recall / (precision + recall)


def db_eval_boundary(
    annotation: np.ndarray,
    segmentation: np.ndarray,
    void_pixels: np.ndarray | None = None,
    bound_th: float = 0.008,
) -> np.ndarray:
    """Boundary F-measure per frame of a (T, H, W) stack."""
    f_res = np.zeros(annotation.shape[0])
    for t in range(annotation.shape[0]):
        void = None if void_pixels is None else void_pixels[t]
        f_res[t] = f_measure(segmentation[t], annotation[t], void, bound_th=bound_th)
    return f_res


def db_statistics(per_frame_values: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall (fraction > 0.5) and decay (first minus last of four quantile bins)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = np.nanmean(per_frame_values)
        recall = np.nanmean(per_frame_values > 0.5)
    n_bins = 4
    ids = np.round(np.linspace(1, len(per_frame_values), n_bins + 1) + 1e-10) - 1
    ids = ids.astype(np.uint8)
    bins = [per_frame_values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        decay = np.nanmean(bins[0]) - np.nanmean(bins[3])
    return mean, recall, decay


def _stack(paths: list[str]) -> np.ndarray:
    first = np.array(Image.open(paths[0]))
    out = np.zeros((len(paths), *first.shape))
    for i, path in enumerate(paths):
        out[i, ...] = np.array(Image.open(path))
    return out


def _one_hot(masks: np.ndarray, num_objects: int) -> np.ndarray:
    tmp = np.ones((num_objects, *masks.shape))
    tmp = tmp * np.arange(1, num_objects + 1)[:, None, None, None]
    return (tmp == masks[None, ...]) > 0


def evaluate_sequence(gt_dir: str, res_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame J and F of one sequence (first and last frames excluded)."""
    mask_paths = np.sort(glob(os.path.join(gt_dir, "*.png"))).tolist()
    masks = _stack(mask_paths)
    masks[masks == 255] = 0
    masks_id = ["".join(os.path.basename(p).split(".")[:-1]) for p in mask_paths]
    gt = _one_hot(masks, int(np.max(masks[0, ...])))
    gt, masks_id = gt[:, 1:-1], masks_id[1:-1]
    res_masks = _stack([os.path.join(res_dir, f"{m}.png") for m in masks_id])
    res = _one_hot(res_masks, int(np.max(res_masks)))
    if res.shape[0] > gt.shape[0]:
        raise ValueError(
            "In your PNG files there is an index higher than the number of objects in the sequence!"
        )
    if res.shape[0] < gt.shape[0]:
        res = np.concatenate([res, np.zeros((gt.shape[0] - res.shape[0], *res.shape[1:]))], axis=0)
    j_res, f_res = np.zeros(gt.shape[:2]), np.zeros(gt.shape[:2])
    for ii in range(gt.shape[0]):
        j_res[ii, :] = db_eval_iou(gt[ii], res[ii], None)
        f_res[ii, :] = db_eval_boundary(gt[ii], res[ii], None)
    return j_res, f_res


def evaluate(
    davis_root: str, results_path: str, subset: str = "val", year: str = "2017"
) -> dict[str, object]:
    """Global and per-object numbers in the layout of the toolkit's ``evaluation_method.py``."""
    with open(os.path.join(davis_root, "ImageSets", year, f"{subset}.txt")) as f:
        sequences = list(dict.fromkeys(x.strip() for x in f))
    stats: dict[str, dict[str, list[float]]] = {k: {"M": [], "R": [], "D": []} for k in "JF"}
    per_object: dict[str, tuple[float, float]] = {}
    for seq in sequences:
        j_res, f_res = evaluate_sequence(
            os.path.join(davis_root, "Annotations", "480p", seq), os.path.join(results_path, seq)
        )
        for ii in range(j_res.shape[0]):
            jm, jr, jd = db_statistics(j_res[ii])
            fm, fr, fd = db_statistics(f_res[ii])
            for key, (m, r, d) in (("J", (jm, jr, jd)), ("F", (fm, fr, fd))):
                stats[key]["M"].append(m)
                stats[key]["R"].append(r)
                stats[key]["D"].append(d)
            per_object[f"{seq}_{ii + 1}"] = (jm, fm)
    j, f = stats["J"], stats["F"]
    final_mean = (np.mean(j["M"]) + np.mean(f["M"])) / 2.0
    global_res = [
        final_mean,
        np.mean(j["M"]),
        np.mean(j["R"]),
        np.mean(j["D"]),
        np.mean(f["M"]),
        np.mean(f["R"]),
        np.mean(f["D"]),
    ]
    return {"global": global_res, "per_object": per_object}
