"""Composing a video with the objects of other videos: each donor's objects are cut out with their masks,
scaled, and moved by one constant offset for the whole clip (so their own motion is kept), then pasted in
front of everything already there. The composed labels are exact: a pasted object owns every pixel of its
moved mask, and pixels it covers lose their earlier label (occlusion).

Used by the training datasets (``DATASETS.PASTE_OBJECTS_PROBABILITY``: clips with several real objects)
and by ``scripts/make_multiobject_videos.py`` (multi-object validation videos). Label maps are dense:
0 background, 1..10 objects, 255 void.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from rhmnet.data.strokes import VOID
from rhmnet.labels import MAX_OBJECTS

Frames = list[np.ndarray]  # uint8 [H, W, 3] each
Labels = list[np.ndarray]  # uint8 [H, W] each (dense: 0 background, 1..10 objects, 255 void)


@dataclass(frozen=True)
class PasteTransform:
    """Donor pixel (x, y) goes to (scale * x + dx, scale * y + dy) in the composed frame, in every frame."""

    scale: float
    dx: float
    dy: float

    def matrix(self) -> np.ndarray:
        """The 2x3 affine matrix of the transform."""
        return np.array([[self.scale, 0.0, self.dx], [0.0, self.scale, self.dy]], dtype=np.float64)


@dataclass(frozen=True)
class Paste:
    """One donor pasted into a clip: its object ids, the ids they got, and the transform."""

    donor: int  # index of the donor among those offered
    source_ids: tuple[int, ...]
    new_ids: tuple[int, ...]
    transform: PasteTransform


@dataclass
class CompositionOptions:
    """How donors are sized and placed."""

    size_range: tuple[float, float] = (0.25, 0.6)  # pasted objects' frame-0 extent / the frame's short side
    scale_range: tuple[float, float] = (0.2, 1.25)  # limits of the donor's scale factor
    min_area: int = 100  # pixels a pasted object must show on frame 0 (and a donor object to be taken)
    keep_fraction: float = 0.3  # share of its frame-0 area every earlier object must keep visible
    placement_tries: int = 10
    max_objects: int = MAX_OBJECTS  # objects in the composed clip, at most


@dataclass
class Composition:
    """A composed clip: frames, exact labels and what was pasted (in pasting order, back to front)."""

    frames: Frames
    labels: Labels
    pastes: list[Paste] = field(default_factory=list)


def object_ids(label: np.ndarray) -> list[int]:
    """Object ids present in a dense label map (not background, not void), ascending."""
    return [int(v) for v in np.unique(label) if 0 < v < VOID]


def largest_id(labels: Sequence[np.ndarray]) -> int:
    """The largest object id of a clip (0 when it has none)."""
    return max((max(object_ids(lab), default=0) for lab in labels), default=0)


def warp_donor_frame(
    frame: np.ndarray, label: np.ndarray, transform: PasteTransform, out_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """A donor frame (bilinear) and its labels (nearest) moved by ``transform`` onto an ``out_hw`` canvas;
    outside the donor is 0."""
    size = (int(out_hw[1]), int(out_hw[0]))
    matrix = transform.matrix()
    border = {"borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    return (
        cv2.warpAffine(frame, matrix, size, flags=cv2.INTER_LINEAR, **border),
        cv2.warpAffine(label, matrix, size, flags=cv2.INTER_NEAREST, **border),
    )


def paste_objects(
    frames: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    donor_frames: Sequence[np.ndarray],
    donor_labels: Sequence[np.ndarray],
    id_map: dict[int, int],
    transform: PasteTransform,
) -> tuple[Frames, Labels, Labels]:
    """Paste the donor objects ``id_map`` (donor id -> new id) into every frame, in front of what is there.

    Returns (frames, labels, pasted): ``pasted[t]`` holds the new ids where frame ``t`` shows a pasted
    object and 0 elsewhere; ``labels[t]`` equals ``pasted[t]`` there and the input labels elsewhere."""
    if not (len(frames) == len(labels) == len(donor_frames) == len(donor_labels)):
        raise ValueError("a clip and its donor need the same number of frames and label maps")
    lookup = np.zeros(256, dtype=np.uint8)
    for source, new in id_map.items():
        lookup[source] = new
    out_frames, out_labels, pasted = [], [], []
    for frame, label, donor_frame, donor_label in zip(frames, labels, donor_frames, donor_labels):
        moved_frame, moved_label = warp_donor_frame(donor_frame, donor_label, transform, label.shape)
        new = lookup[moved_label]
        mask = new > 0
        frame, label = frame.copy(), label.copy()
        frame[mask] = moved_frame[mask]
        label[mask] = new[mask]
        out_frames.append(frame)
        out_labels.append(label)
        pasted.append(new)
    return out_frames, out_labels, pasted


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of a mask's pixels (exclusive end), ``None`` when empty."""
    if not mask.any():
        return None
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return x, y, x + w, y + h


def choose_transform(
    target_first: np.ndarray, donor_mask: np.ndarray, options: CompositionOptions, rng: np.random.Generator
) -> PasteTransform:
    """A scale that gives the donor's frame-0 objects an extent in ``options.size_range`` of the frame's
    short side, and an offset that puts their centre near the clip's objects on frame 0 (uniform in those
    objects' box grown by half the pasted size; anywhere when there are none), kept inside the frame."""
    height, width = target_first.shape
    x0, y0, x1, y1 = _box(donor_mask)  # the caller passes a non-empty mask
    extent = max(x1 - x0, y1 - y0)
    wanted = rng.uniform(*options.size_range) * min(height, width)
    scale = float(np.clip(wanted / extent, *options.scale_range))
    half_w, half_h = scale * (x1 - x0) / 2, scale * (y1 - y0) / 2
    objects = _box((target_first > 0) & (target_first != VOID))
    if objects is None:
        low_x, low_y, high_x, high_y = 0.0, 0.0, float(width), float(height)
    else:
        low_x, low_y = objects[0] - half_w, objects[1] - half_h
        high_x, high_y = objects[2] + half_w, objects[3] + half_h
    cx = float(np.clip(rng.uniform(low_x, high_x), min(half_w, width / 2), max(width - half_w, width / 2)))
    cy = float(np.clip(rng.uniform(low_y, high_y), min(half_h, height / 2), max(height - half_h, height / 2)))
    return PasteTransform(scale, cx - scale * (x0 + x1) / 2, cy - scale * (y0 + y1) / 2)


def visible_enough(before: np.ndarray, after: np.ndarray, new_ids: Sequence[int], options: CompositionOptions) -> bool:
    """On frame 0: every pasted object shows ``min_area`` pixels, and every earlier object keeps
    ``keep_fraction`` of its area."""
    counts_before = np.bincount(before.ravel(), minlength=256)
    counts_after = np.bincount(after.ravel(), minlength=256)
    if any(counts_after[i] < options.min_area for i in new_ids):
        return False
    earlier = [i for i in object_ids(before)]
    return all(counts_after[i] >= options.keep_fraction * counts_before[i] for i in earlier)


def compose_clip(
    frames: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    donors: Sequence[tuple[Sequence[np.ndarray], Sequence[np.ndarray]]],
    rng: np.random.Generator,
    max_pasted: int,
    options: CompositionOptions | None = None,
) -> Composition:
    """Paste objects of ``donors`` ((frames, labels) clips as long as this one) into the clip, donor after
    donor (later ones in front), until ``max_pasted`` objects are pasted or the clip holds
    ``options.max_objects`` objects. Each donor gives a random subset of the objects it shows on frame 0
    with at least ``min_area`` pixels, one transform for all of them (:func:`choose_transform`); a
    placement that hides too much (:func:`visible_enough`) is drawn again, up to ``placement_tries``
    times, and the donor is skipped after that. New objects are numbered after the clip's largest id."""
    options = options or CompositionOptions()
    composition = Composition(list(frames), list(labels))
    pasted = 0
    for index, (donor_frames, donor_labels) in enumerate(donors):
        next_id = largest_id(composition.labels) + 1
        room = min(max_pasted - pasted, options.max_objects + 1 - next_id)
        if room <= 0:
            break
        first = donor_labels[0]
        counts = np.bincount(first.ravel(), minlength=256)
        candidates = [i for i in object_ids(first) if counts[i] >= options.min_area]
        if not candidates:
            continue
        take = int(rng.integers(1, min(room, len(candidates)) + 1))
        chosen = sorted(int(i) for i in rng.choice(candidates, size=take, replace=False))
        id_map = {source: next_id + k for k, source in enumerate(chosen)}
        donor_mask = np.isin(first, chosen)
        for _ in range(options.placement_tries):
            transform = choose_transform(composition.labels[0], donor_mask, options, rng)
            new_frames, new_labels, _ = paste_objects(
                composition.frames[:1], composition.labels[:1], donor_frames[:1], donor_labels[:1], id_map, transform
            )
            if visible_enough(composition.labels[0], new_labels[0], list(id_map.values()), options):
                break
        else:
            continue
        new_frames, new_labels, _ = paste_objects(
            composition.frames, composition.labels, donor_frames, donor_labels, id_map, transform
        )
        composition = Composition(
            new_frames,
            new_labels,
            [*composition.pastes, Paste(index, tuple(chosen), tuple(id_map.values()), transform)],
        )
        pasted += len(chosen)
    return composition
