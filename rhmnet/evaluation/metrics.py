"""DAVIS region (J) and boundary (F) measures, vectorised over frames and objects.

The numbers are those of the official DAVIS 2017 toolkit (``davis2017-evaluation``):

* J: intersection over union of the binary masks; 1 when both are empty. Void pixels (if given) are
  removed from both sets.
* F: boundary F-measure. Boundaries come from ``seg2bmap`` (a pixel is on the boundary when it differs
  from its east, south or south-east neighbour, with the toolkit's special last row/column); a boundary
  pixel matches when the other boundary lies inside a disk of radius ``ceil(0.008 * diagonal)`` around it.
* statistics: mean, recall (fraction of frames > 0.5) and decay (mean of the first minus mean of the last
  of four quantile bins), including the toolkit's ``uint8`` bin indices.

The speed comes from computing the per-frame confusion counts of all objects with one ``bincount``,
building all boundary maps of an object with whole-stack array operations and running the disk dilation
only on the window that holds the boundaries of both masks (plus the radius), which gives exactly the
same counts as dilating the whole frame.
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np

BOUND_TH = 0.008


def disk_kernel(radius: float) -> np.ndarray:
    """Disk structuring element: ``x^2 + y^2 <= r^2`` on the grid ``[-r, r]^2`` (uint8)."""
    grid = np.arange(-radius, radius + 1)
    xx, yy = np.meshgrid(grid, grid)
    return ((xx**2 + yy**2) <= radius**2).astype(np.uint8)


def boundary_radius(shape: tuple[int, int], bound_th: float = BOUND_TH) -> float:
    """Tolerance of the boundary match in pixels for a frame of ``shape`` (H, W)."""
    return float(bound_th) if bound_th >= 1 else float(np.ceil(bound_th * np.linalg.norm(shape)))


def seg2bmap(masks: np.ndarray) -> np.ndarray:
    """One-pixel wide boundary maps of binary masks of shape (..., H, W) (bool output).

    A pixel is on the boundary when it differs from its east, south or south-east neighbour; the last row
    compares with the east neighbour only, the last column with the south neighbour only, and the
    bottom-right pixel is never a boundary (the toolkit's ``seg2bmap``).
    """
    seg = np.ascontiguousarray(masks, dtype=bool)
    flat = seg.view(np.uint8).reshape(-1, seg.shape[-1])
    # Sum of the 2x2 window anchored at the pixel: the four pixels differ when the sum is 1, 2 or 3
    # (sum & 3 is then non-zero; 0 and 4 give 0). Rows that reach into the next frame of the stack are the
    # last rows, which are recomputed below.
    window = cv2.boxFilter(
        flat, cv2.CV_8U, (2, 2), anchor=(0, 0), normalize=False, borderType=cv2.BORDER_REPLICATE
    )
    cv2.bitwise_and(window, 3, dst=window)
    cv2.min(window, 1, dst=window)
    bmap = window.reshape(seg.shape).view(bool)
    bmap[..., -1, :-1] = seg[..., -1, :-1] ^ seg[..., -1, 1:]
    bmap[..., :-1, -1] = seg[..., :-1, -1] ^ seg[..., 1:, -1]
    bmap[..., -1, -1] = False
    return bmap


def _as_stack(array: np.ndarray) -> np.ndarray:
    return array[None] if array.ndim == 2 else array


def jaccard(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> np.ndarray:
    """Per-frame IoU of binary masks (H, W) or (T, H, W); returns shape (T,) (or a scalar array for 2-D)."""
    if gt.shape != pred.shape or (void is not None and void.shape != gt.shape):
        raise ValueError(f"shape mismatch: gt {gt.shape}, prediction {pred.shape}")
    gt_b, pred_b = gt.astype(bool, copy=False), pred.astype(bool, copy=False)
    inter = gt_b & pred_b
    union = gt_b | pred_b
    if void is not None:
        keep = ~void.astype(bool, copy=False)
        inter &= keep
        union &= keep
    return _iou_from_counts(inter.sum(axis=(-2, -1)), union.sum(axis=(-2, -1)))


def _iou_from_counts(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    inter, union = np.asarray(inter), np.asarray(union)
    with np.errstate(divide="ignore", invalid="ignore"):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def _f_from_counts(n_fg: int, n_gt: int, fg_match: int, gt_match: int) -> float:
    """Boundary F from boundary pixel counts, with the toolkit's conventions for empty boundaries."""
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        precision = fg_match / float(n_fg)
        recall = gt_match / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _bounds(flags: np.ndarray) -> tuple[int, int]:
    """First and last index of a True value in a 1-D bool array (which has one)."""
    first = int(np.argmax(flags))
    last = len(flags) - 1 - int(np.argmax(flags[::-1]))
    return first, last


def boundary_f(
    gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None, bound_th: float = BOUND_TH
) -> np.ndarray:
    """Per-frame boundary F-measure of binary masks (H, W) or (T, H, W); returns shape (T,)."""
    if gt.shape != pred.shape or (void is not None and void.shape != gt.shape):
        raise ValueError(f"shape mismatch: gt {gt.shape}, prediction {pred.shape}")
    gt_s, pred_s = _as_stack(gt).astype(bool), _as_stack(pred).astype(bool)
    if void is not None:
        keep = ~_as_stack(void).astype(bool)
        gt_s &= keep
        pred_s &= keep
    return _boundary_f_stack(seg2bmap(gt_s), seg2bmap(pred_s), bound_th)


def _counts(stack: np.ndarray) -> np.ndarray:
    """Number of set pixels in each frame of a contiguous bool stack (T, H, W)."""
    u8 = stack.view(np.uint8)
    return np.array([cv2.countNonZero(frame) for frame in u8], dtype=np.int64)


def _boundary_f_stack(gt_b: np.ndarray, fg_b: np.ndarray, bound_th: float) -> np.ndarray:
    """F per frame from boundary stacks (T, H, W) of the ground truth and of the prediction."""
    num, height, width = gt_b.shape
    radius = boundary_radius((height, width), bound_th)
    kernel = disk_kernel(radius)
    pad = int(np.ceil(radius))
    n_gt, n_fg = _counts(gt_b), _counts(fg_b)
    out = np.empty(num, dtype=np.float64)
    for t in range(num):
        if n_gt[t] == 0 or n_fg[t] == 0:
            out[t] = _f_from_counts(int(n_fg[t]), int(n_gt[t]), 0, 0)
            continue
        # Dilating only the window holding both boundaries (grown by the radius) gives the same matches.
        both = gt_b[t] | fg_b[t]
        y0, y1 = _bounds(both.any(axis=1))
        x0, x1 = _bounds(both.any(axis=0))
        win = (
            slice(max(y0 - pad, 0), min(y1 + pad + 1, height)),
            slice(max(x0 - pad, 0), min(x1 + pad + 1, width)),
        )
        gt_w, fg_w = gt_b[t][win], fg_b[t][win]
        fg_match = int(np.count_nonzero(cv2.dilate(np.ascontiguousarray(gt_w, dtype=np.uint8), kernel)[fg_w]))
        gt_match = int(np.count_nonzero(cv2.dilate(np.ascontiguousarray(fg_w, dtype=np.uint8), kernel)[gt_w]))
        out[t] = _f_from_counts(int(n_fg[t]), int(n_gt[t]), fg_match, gt_match)
    return out


def db_statistics(per_frame_values: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall (fraction of values > 0.5) and decay over four quantile bins, as the DAVIS toolkit.

    The bin edges are cast to ``uint8`` exactly like the toolkit does (so they wrap for sequences with
    more than 256 evaluated frames, which never happens on DAVIS).
    """
    values = np.asarray(per_frame_values, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(values))
        recall = float(np.nanmean(values > 0.5))
        ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(np.uint8)
        bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, recall, decay


def object_scores(
    gt_labels: np.ndarray,
    pred_labels: np.ndarray,
    num_objects: int,
    void: np.ndarray | None = None,
    bound_th: float = BOUND_TH,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame J and F of label stacks (T, H, W) for objects 1..num_objects.

    Label values outside 1..num_objects count as background (the caller validates predictions).
    Returns two float64 arrays of shape (num_objects, T).
    """
    if gt_labels.shape != pred_labels.shape or (void is not None and void.shape != gt_labels.shape):
        raise ValueError(f"shape mismatch: gt {gt_labels.shape}, prediction {pred_labels.shape}")
    gt_s, pred_s = _as_stack(gt_labels), _as_stack(pred_labels)
    keep = None if void is None else ~_as_stack(void).astype(bool)
    num_frames = gt_s.shape[0]
    j_scores = np.empty((num_objects, num_frames), dtype=np.float64)
    f_scores = np.empty((num_objects, num_frames), dtype=np.float64)
    for obj in range(1, num_objects + 1):
        gt_o, pred_o = gt_s == obj, pred_s == obj
        if keep is not None:
            gt_o &= keep
            pred_o &= keep
        inter = _counts(gt_o & pred_o)
        j_scores[obj - 1] = _iou_from_counts(inter, _counts(gt_o) + _counts(pred_o) - inter)
        f_scores[obj - 1] = _boundary_f_stack(seg2bmap(gt_o), seg2bmap(pred_o), bound_th)
    return j_scores, f_scores
