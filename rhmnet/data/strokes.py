"""Synthetic scribble strokes drawn inside the regions of a dense label map (objects and background).

A stroke is a random walk along the medial axis of a region: it starts at a point far from the region's
border, heads along the region's principal axis (objects) or a random direction (background), and at
each step prefers the direction that stays farthest from the border, with a penalty on turning; it stops
before it would touch the border, so the drawn stroke (random thickness) lies inside the region. The file
writers live in :mod:`rhmnet.dataprep.scribble_synthesis`; training draws strokes on composed clips here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

VOID = 255  # DAVIS / YouTube-VOS "ignore" label in dense annotations


@dataclass
class ScribbleStyle:
    """Shape of the synthetic strokes."""

    radius: tuple[int, int] = (2, 4)  # stroke half-thickness range in pixels (thickness 2r+1)
    min_area: int = 64  # objects with fewer mask pixels are skipped (and reported)
    object_strokes: tuple[int, int] = (1, 2)  # strokes per object
    background_strokes: tuple[int, int] = (2, 4)  # background strokes per frame
    step: float = 2.0  # walk step in pixels
    turn_penalty: float = 1.0  # distance units lost per radian of turning
    stop_fraction: tuple[float, float] = (0.1, 0.35)  # a walk ends where the border distance falls below
    # this fraction (drawn per walk) of its value at the start
    length: tuple[float, float] = (
        0.5,
        1.0,
    )  # max walk length per direction, as a fraction of the region size
    background_margin: float = 0.0  # background strokes keep at least this many pixels from every object


REFERENCE_SHORT_SIDE = 480  # the frame size the default style is meant for (DAVIS 480p)


def style_for_short_side(short_side: int) -> ScribbleStyle:
    """Stroke style scaled to frames of ``short_side`` pixels (thinner strokes on smaller frames): the
    style the training scribbles of resized frames are drawn with."""
    scale = short_side / REFERENCE_SHORT_SIDE
    low = max(1, round(3 * scale))
    return ScribbleStyle(radius=(low, low + 1), min_area=max(16, int(64 * scale)))


def border_distance(region: np.ndarray) -> np.ndarray:
    """Euclidean distance of each region pixel to the nearest non-region pixel or the image border."""
    padded = np.pad(region.astype(np.uint8), 1)
    return cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]


def principal_angle(region: np.ndarray) -> float:
    """Orientation (radians) of the region's principal axis."""
    moments = cv2.moments(region.astype(np.uint8), binaryImage=True)
    return 0.5 * math.atan2(2 * moments["mu11"], moments["mu20"] - moments["mu02"])


def _walk(
    dist: np.ndarray,
    start: tuple[float, float],
    heading: float,
    limit: float,
    max_steps: int,
    style: ScribbleStyle,
    rng: np.random.Generator,
) -> list[tuple[float, float]]:
    """Points (x, y) of a walk from ``start`` along the ridge of ``dist`` (greedy: farthest from the
    border, minus a turning penalty). It stops before ``dist`` drops below ``limit`` or below a random
    fraction of its starting value, and never re-enters cells it already crossed."""
    height, width = dist.shape
    x, y = start
    points: list[tuple[float, float]] = []
    turns = [float(t) for t in np.radians([-40.0, -20.0, 0.0, 20.0, 40.0])]
    floor = max(limit, rng.uniform(*style.stop_fraction) * float(dist[int(round(y)), int(round(x))]))
    cell = max(2.0, 2.0 * style.step)
    visited = {(int(x // cell), int(y // cell))}
    for _ in range(max_steps):
        current = (int(x // cell), int(y // cell))
        candidates = []  # (score before noise, x, y, heading) of each admissible step, in turn order
        for turn in turns:
            angle = heading + turn
            nx, ny = x + style.step * math.cos(angle), y + style.step * math.sin(angle)
            col, row = int(round(nx)), int(round(ny))
            if not (0 <= row < height and 0 <= col < width):
                continue
            value = dist[row, col]
            if value < floor:
                continue
            target = (int(nx // cell), int(ny // cell))
            if target != current and target in visited:
                continue
            candidates.append((float(value) - style.turn_penalty * abs(turn), nx, ny, angle))
        if not candidates:
            break
        noise = rng.normal(0.0, 0.2, size=len(candidates))  # one draw per candidate, in order
        best, best_score = candidates[0][1:], -np.inf
        for (base, nx, ny, angle), jitter in zip(candidates, noise.tolist()):
            score = base + jitter
            if score > best_score:
                best, best_score = (nx, ny, angle), score
        x, y, heading = best
        visited.add((int(x // cell), int(y // cell)))
        points.append((x, y))
    return points


def region_stroke(
    region: np.ndarray,
    num_strokes: int,
    radius: int,
    rng: np.random.Generator,
    style: ScribbleStyle,
    heading: float | None = None,
) -> np.ndarray | None:
    """A stroke mask (bool [H, W]) of ``num_strokes`` walks inside ``region``; ``None`` when the region
    is too thin for a stroke of that radius even after thinning the stroke."""
    dist = border_distance(region)
    peak = float(dist.max()) if dist.size else 0.0
    radius = min(radius, int(peak) - 1)
    if radius < 0:
        return None
    limit = radius + 1.0
    rows, cols = np.nonzero(dist >= limit)
    weights = dist[rows, cols].astype(np.float64) ** 2
    weights /= weights.sum()
    x0, y0, w, h = cv2.boundingRect(region.astype(np.uint8))
    canvas = np.zeros(region.shape, dtype=np.uint8)
    for _ in range(num_strokes):
        pick = int(rng.choice(len(rows), p=weights))
        start = (float(cols[pick]), float(rows[pick]))
        angle = (heading if heading is not None else rng.uniform(0, math.pi)) + rng.normal(0.0, 0.3)
        max_steps = max(1, int(rng.uniform(*style.length) * max(w, h) / style.step))
        forward = _walk(dist, start, angle, limit, max_steps, style, rng)
        backward = _walk(dist, start, angle + math.pi, limit, max_steps, style, rng)
        points = np.array(backward[::-1] + [start] + forward, dtype=np.float64)
        polyline = np.round(points).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [polyline], isClosed=False, color=1, thickness=2 * radius + 1)
        if len(points) == 1:
            cv2.circle(canvas, (int(start[0]), int(start[1])), radius, 1, thickness=-1)
    stroke = (canvas > 0) & region
    return stroke if stroke.any() else None


def distance_to_objects(labels: np.ndarray, void_value: int | None = VOID) -> np.ndarray:
    """Euclidean distance (pixels, float32 [H, W]) of each pixel to the nearest object pixel (labels other
    than 0 and ``void_value``); large everywhere when there is no object."""
    objects = labels != 0
    if void_value is not None:
        objects &= labels != void_value
    if not objects.any():
        return np.full(labels.shape, np.float32(np.hypot(*labels.shape)), dtype=np.float32)
    return cv2.distanceTransform((~objects).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def scribble_from_labels(
    labels: np.ndarray,
    object_ids: Sequence[int],
    background_value: int,
    rng: np.random.Generator,
    style: ScribbleStyle | None = None,
    void_value: int | None = VOID,
) -> tuple[np.ndarray, list[tuple[int, int]], bool]:
    """Scribble map for a dense label map: strokes with value k inside each object k of ``object_ids``
    and value ``background_value`` in the background (label 0; ``void_value`` pixels excluded; with
    ``style.background_margin`` only background pixels at least that far from every object).

    Returns (uint8 scribble [H, W], skipped objects as (id, area), whether a background stroke exists).
    """
    style = style or ScribbleStyle()
    scribble = np.zeros(labels.shape, dtype=np.uint8)
    skipped: list[tuple[int, int]] = []
    for obj in object_ids:
        region = labels == obj
        area = int(region.sum())
        stroke = None
        if area >= style.min_area:
            radius = int(rng.integers(style.radius[0], style.radius[1] + 1))
            count = int(rng.integers(style.object_strokes[0], style.object_strokes[1] + 1))
            stroke = region_stroke(region, count, radius, rng, style, heading=principal_angle(region))
        if stroke is None:
            if area:
                skipped.append((int(obj), area))
            continue
        scribble[stroke] = obj
    background = labels == 0
    if void_value is not None:
        background &= labels != void_value
    if style.background_margin > 0:
        background &= distance_to_objects(labels, void_value) >= style.background_margin
    has_background = False
    if background.sum() >= style.min_area:
        radius = int(rng.integers(style.radius[0], style.radius[1] + 1))
        count = int(rng.integers(style.background_strokes[0], style.background_strokes[1] + 1))
        stroke = region_stroke(background, count, radius, rng, style)
        if stroke is not None:
            scribble[stroke] = background_value
            has_background = True
    return scribble, skipped, has_background


