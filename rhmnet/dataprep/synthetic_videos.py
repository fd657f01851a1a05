"""A small synthetic scribble-VOS dataset: textured shapes (ellipses, polygons) moving over textured,
slowly panning backgrounds, with 1-3 objects per video, occlusions (one object's path crosses
another's) and, in the YouTube-VOS layout, objects that enter late. Written in the DAVIS, YouTube-VOS
and COCO layouts with dense masks and synthesised scribbles in the authors' format. Deterministic given
the seed; a default set takes a few seconds."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from rhmnet.data.io import write_image, write_json, write_palette_png
from rhmnet.data.strokes import style_for_short_side
from rhmnet.dataprep.scribble_synthesis import (
    ScribbleStyle,
    rng_for,
    synthesize_coco,
    synthesize_davis,
    synthesize_youtube,
)
from rhmnet.ranges import Range, option

LAYOUTS = ("davis", "youtube", "coco")
LAYOUT_DIRS = {"davis": "DAVIS", "youtube": "Youtube-VOS", "coco": "COCO"}
CATEGORIES = ("ellipse", "polygon")


TEXTURE_SPREAD = 40.0  # std of the second texture colour around the first (per channel, 0-255 scale)


TEXTURE_SPREAD_RANGE = Range(0, 255)


def parse_texture_spread(text: str) -> float | None:
    """Command-line value of a texture spread: a number in [0, 255], or 'none' for independent colours."""
    if text.strip().lower() == "none":
        return None
    return option(float, TEXTURE_SPREAD_RANGE)(text)


def add_texture_spread_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--texture-spread`` option of the scripts that generate the synthetic dataset."""
    parser.add_argument(
        "--texture-spread",
        type=parse_texture_spread,
        default=TEXTURE_SPREAD,
        help="contrast inside the synthetic textures (std of the second colour around the first, 0-255 "
        "scale); 'none': two independent colours",
    )


def texture(height: int, width: int, rng: np.random.Generator, spread: float | None = TEXTURE_SPREAD) -> np.ndarray:
    """uint8 [H, W, 3] texture: a random colour and a second one near it (per-channel std ``spread``) mixed
    by smooth noise and stripes, plus grain. Like natural images, edges inside a texture are weaker than
    the edges between two textures (what edge-aware smoothness relies on); ``spread=None`` draws two
    independent colours (busy, high-contrast textures)."""
    first = rng.uniform(0, 255, size=3)
    second = rng.uniform(0, 255, size=3) if spread is None else first + rng.normal(0, spread, size=3)
    colours = np.stack([first, np.clip(second, 0, 255)])
    coarse = rng.random((height // 8 + 2, width // 8 + 2)).astype(np.float32)
    noise = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    theta, period = rng.uniform(0, math.pi), rng.uniform(4, 16)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    stripes = (np.sin(2 * math.pi * (xs * math.cos(theta) + ys * math.sin(theta)) / period) > 0).astype(
        np.float32
    )
    mix = np.clip(0.6 * noise + 0.4 * stripes, 0, 1)[..., None]
    image = colours[0] * (1 - mix) + colours[1] * mix + rng.normal(0, 6, size=(height, width, 1))
    return np.clip(image, 0, 255).astype(np.uint8)


def _reflect(value: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold positions back into [low, high] (bouncing motion)."""
    span = high - low
    phase = np.mod(value - low, 2 * span)
    return low + np.where(phase > span, 2 * span - phase, phase)


@dataclass
class MovingShape:
    """One object: outline, texture and per-frame pose; invisible before ``appear``."""

    category: str
    outline: np.ndarray  # unit outline points [P, 2] (radius ~1)
    radius: float
    centers: np.ndarray  # [T, 2] (x, y)
    angles: np.ndarray  # [T]
    texture: np.ndarray  # [H, W, 3], shifted with the object
    appear: int = 0

    def mask(self, t: int, height: int, width: int) -> np.ndarray:
        """Binary mask of the shape at frame ``t`` (empty before it appears)."""
        canvas = np.zeros((height, width), dtype=np.uint8)
        if t < self.appear:
            return canvas
        cos, sin = math.cos(self.angles[t]), math.sin(self.angles[t])
        rotated = self.outline @ np.array([[cos, sin], [-sin, cos]]) * self.radius
        points = np.round(rotated + self.centers[t]).astype(np.int32)
        cv2.fillPoly(canvas, [points], 1)
        return canvas

    def pixels(self, t: int) -> np.ndarray:
        """The object's texture moved along with it to frame ``t``."""
        shift = np.round(self.centers[t] - self.centers[0]).astype(int)
        return np.roll(self.texture, (int(shift[1]), int(shift[0])), axis=(0, 1))


def _outline(category: str, rng: np.random.Generator) -> np.ndarray:
    """Unit outline of an ellipse (random aspect) or a star-convex polygon (5-8 vertices)."""
    if category == "ellipse":
        t = np.linspace(0, 2 * math.pi, 48, endpoint=False)
        return np.stack([np.cos(t), rng.uniform(0.45, 0.9) * np.sin(t)], axis=1)
    count = int(rng.integers(5, 9))
    t = np.sort(rng.uniform(0, 2 * math.pi, size=count))
    radii = rng.uniform(0.6, 1.0, size=count)
    return np.stack([radii * np.cos(t), radii * np.sin(t)], axis=1)


def _random_shape(
    height: int,
    width: int,
    frames: int,
    rng: np.random.Generator,
    crossing: np.ndarray | None,
    appear: int,
    spread: float | None = TEXTURE_SPREAD,
) -> MovingShape:
    """A shape with bouncing linear motion; with ``crossing`` (x, y) its path passes that point mid-clip."""
    size = min(height, width)
    category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
    radius = rng.uniform(0.15, 0.27) * size
    speed = rng.uniform(0.01, 0.03) * size
    direction = rng.uniform(0, 2 * math.pi)
    velocity = speed * np.array([math.cos(direction), math.sin(direction)])
    times = np.arange(frames, dtype=np.float64)[:, None]
    low, high = (
        np.array([radius * 0.5, radius * 0.5]),
        np.array([width - radius * 0.5, height - radius * 0.5]),
    )
    if crossing is not None:
        start = crossing - velocity * (frames // 2)
    else:
        start = rng.uniform(low, high)
    centers = _reflect(start + velocity * times, low, high)
    if appear > 0:  # enter from the nearest border at the frame of appearance
        border = centers[appear].copy()
        axis = int(np.argmin(np.minimum(border, [width, height] - border)))
        border[axis] = 0.0 if border[axis] < ([width, height][axis] / 2) else [width, height][axis]
        inward = np.array([width / 2, height / 2]) - border
        drift = inward / (np.linalg.norm(inward) + 1e-8) * speed * 1.5
        centers[appear:] = border + drift * (times[appear:] - appear + radius / (speed * 1.5))
        centers = np.minimum(np.maximum(centers, low), high)
    angles = rng.uniform(0, 2 * math.pi) + rng.uniform(-0.06, 0.06) * times[:, 0]
    return MovingShape(
        category, _outline(category, rng), radius, centers, angles, texture(height, width, rng, spread), appear
    )


def render_video(
    height: int,
    width: int,
    frames: int,
    rng: np.random.Generator,
    late_entries: bool,
    max_objects: int = 3,
    min_objects: int = 1,
    min_visible: float = 0.01,
    texture_spread: float | None = TEXTURE_SPREAD,
) -> tuple[list[np.ndarray], list[np.ndarray], list[MovingShape]]:
    """Frames (uint8 [H, W, 3]), id maps (uint8 [H, W]) and the shapes of one synthetic video.

    ``min_objects`` to ``max_objects`` objects (uniformly). Every object is visible (>= ``min_visible`` of
    the frame) on its first frame; with ``late_entries`` some objects (never object 1) appear after frame 0.
    ``texture_spread``: see :func:`texture`."""
    if not 1 <= min_objects <= max_objects:
        raise ValueError(f"need 1 <= min_objects <= max_objects, got {min_objects} and {max_objects}")
    for _ in range(20):
        count = int(rng.integers(min_objects, max_objects + 1))
        shapes: list[MovingShape] = []
        for index in range(count):
            appear = (
                int(rng.integers(1, max(2, frames // 2)))
                if late_entries and index and rng.random() < 0.5
                else 0
            )
            crossing = shapes[0].centers[frames // 2] if index == 1 and appear == 0 else None
            shapes.append(_random_shape(height, width, frames, rng, crossing, appear, texture_spread))
        depth = rng.permutation(count)
        margin = 8
        backdrop = texture(height + 2 * margin, width + 2 * margin, rng, texture_spread)
        pan = rng.uniform(-0.5, 0.5, size=2)
        images, labels = [], []
        for t in range(frames):
            dx, dy = (np.clip(np.round(pan * t), -margin, margin) + margin).astype(int)
            image = backdrop[dy : dy + height, dx : dx + width].copy()
            label = np.zeros((height, width), dtype=np.uint8)
            for index in depth:  # back to front: later shapes occlude earlier ones
                mask = shapes[index].mask(t, height, width).astype(bool)
                image[mask] = shapes[index].pixels(t)[mask]
                label[mask] = index + 1
            images.append(image)
            labels.append(label)
        visible = all((labels[s.appear] == i + 1).mean() >= min_visible for i, s in enumerate(shapes))
        if visible:
            return images, labels, shapes
    raise RuntimeError("could not render a synthetic video with visible objects (frame too small?)")


def _write_frames(
    image_dir: Path,
    anno_dir: Path,
    names: list[str],
    images: list[np.ndarray],
    labels: list[np.ndarray],
    annotate: list[int] | None = None,
) -> None:
    """JPEG frames and palette-PNG annotations (only the frames in ``annotate`` when given)."""
    for t, name in enumerate(names):
        write_image(image_dir / f"{name}.jpg", images[t])
        if annotate is None or t in annotate:
            write_palette_png(anno_dir / f"{name}.png", labels[t])


def write_davis_layout(
    root: Path,
    num_train: int,
    num_val: int,
    size: tuple[int, int],
    frames: int,
    seed: int,
    texture_spread: float | None = TEXTURE_SPREAD,
) -> None:
    """Videos ``synth-NNN`` as DAVIS-2017 (``JPEGImages/480p``, ``Annotations/480p``, ``ImageSets``)."""
    names = [f"synth-{i:03d}" for i in range(num_train + num_val)]
    for index, name in enumerate(names):
        images, labels, _ = render_video(
            *size, frames, rng_for(seed, "davis-video", index), late_entries=False, texture_spread=texture_spread
        )
        frame_names = [f"{t:05d}" for t in range(frames)]
        _write_frames(
            root / "JPEGImages" / "480p" / name,
            root / "Annotations" / "480p" / name,
            frame_names,
            images,
            labels,
        )
    for year in ("2016", "2017"):
        (root / "ImageSets" / year).mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / year / "train.txt").write_text("".join(f"{n}\n" for n in names[:num_train]))
        (root / "ImageSets" / year / "val.txt").write_text("".join(f"{n}\n" for n in names[num_train:]))


def write_youtube_layout(
    root: Path,
    num_train: int,
    num_val: int,
    size: tuple[int, int],
    frames: int,
    seed: int,
    texture_spread: float | None = TEXTURE_SPREAD,
    object_range: tuple[int, int] = (1, 3),
) -> None:
    """Videos as YouTube-VOS 2018/2019: ``train/`` with every frame annotated, ``valid/`` with each
    object's first frame annotated (only the objects appearing there); ``meta.json`` per split. Frame
    names step by 5 like the real dataset; ``object_range``: the (min, max) object count of a video."""
    frame_names = [f"{5 * t:05d}" for t in range(frames)]
    for split, count, offset in (("train", num_train, 0), ("valid", num_val, num_train)):
        meta: dict[str, dict] = {}
        for index in range(count):
            video = f"{index + offset:04d}synth"
            images, labels, shapes = render_video(
                *size,
                frames,
                rng_for(seed, "ytb-video", index + offset),
                late_entries=True,
                min_objects=object_range[0],
                max_objects=object_range[1],
                texture_spread=texture_spread,
            )
            objects, first_frames = {}, {}
            for obj, shape in enumerate(shapes, start=1):
                present = [t for t in range(frames) if (labels[t] == obj).any()]
                first_frames[obj] = present[0]
                listed = present if split == "train" else list(range(present[0], frames))
                objects[str(obj)] = {"category": shape.category, "frames": [frame_names[t] for t in listed]}
            meta[video] = {"objects": objects}
            image_dir, anno_dir = root / split / "JPEGImages" / video, root / split / "Annotations" / video
            if split == "train":
                _write_frames(image_dir, anno_dir, frame_names, images, labels)
                continue
            _write_frames(image_dir, anno_dir, frame_names, images, labels, annotate=[])
            for t in sorted(set(first_frames.values())):
                new = [obj for obj, first in first_frames.items() if first == t]
                write_palette_png(
                    anno_dir / f"{frame_names[t]}.png",
                    np.where(np.isin(labels[t], new), labels[t], 0).astype(np.uint8),
                )
        write_json(root / split / "meta.json", {"videos": meta})


def write_coco_layout(
    root: Path, num_images: int, size: tuple[int, int], seed: int, texture_spread: float | None = TEXTURE_SPREAD
) -> Path:
    """Images ``images/<id>.jpg`` with COCO instance annotations ``annotations/instances_train.json``
    (RLE masks); returns the instances path."""
    from pycocotools import mask as mask_utils

    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        frames, labels, shapes = render_video(
            *size,
            1,
            rng_for(seed, "coco-image", image_id),
            late_entries=False,
            max_objects=4,
            texture_spread=texture_spread,
        )
        file_name = f"{image_id:012d}.jpg"
        write_image(root / "images" / file_name, frames[0])
        images.append({"id": image_id, "file_name": file_name, "height": size[0], "width": size[1]})
        for obj, shape in enumerate(shapes, start=1):
            mask = np.asfortranarray((labels[0] == obj).astype(np.uint8))
            if not mask.any():
                continue
            rle = mask_utils.encode(mask)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORIES.index(shape.category) + 1,
                    "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                    "area": float(mask_utils.area(rle)),
                    "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                    "iscrowd": 0,
                }
            )
    instances = root / "annotations" / "instances_train.json"
    write_json(
        instances,
        {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i + 1, "name": c} for i, c in enumerate(CATEGORIES)],
        },
    )
    return instances


def synthetic_style(size: tuple[int, int]) -> ScribbleStyle:
    """Stroke style scaled to the frame size (thinner strokes on small frames)."""
    return style_for_short_side(min(size))


def make_synthetic_dataset(
    out: str | Path,
    seed: int = 0,
    num_train: int = 4,
    num_val: int = 2,
    size: tuple[int, int] = (128, 128),
    frames: int = 12,
    num_images: int | None = None,
    layouts: tuple[str, ...] = LAYOUTS,
    progress: bool = False,
    texture_spread: float | None = TEXTURE_SPREAD,
    youtube_objects: tuple[int, int] = (1, 3),
) -> dict[str, Path]:
    """Write the synthetic dataset under ``out`` and return the root of each layout
    (``out/DAVIS``, ``out/Youtube-VOS``, ``out/COCO``). ``size`` is (height, width); ``num_images`` COCO
    images (default: 2 * (num_train + num_val)); ``texture_spread``: see :func:`texture`;
    ``youtube_objects``: the (min, max) object count of the YouTube-VOS-layout videos (DAVIS layout: 1-3)."""
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        raise ValueError(f"unknown layouts {sorted(unknown)} (known: {', '.join(LAYOUTS)})")
    if frames < 2 or min(size) < 32:
        raise ValueError(f"need at least 2 frames of at least 32x32 pixels, got {frames} of {size}")
    out = Path(out)
    style = synthetic_style(size)
    roots = {layout: out / LAYOUT_DIRS[layout] for layout in layouts}
    for layout in tqdm(layouts, desc="synthetic layouts", disable=not progress):
        root = roots[layout]
        if layout == "davis":
            write_davis_layout(root, num_train, num_val, size, frames, seed, texture_spread)
            synthesize_davis(root, seed=seed, style=style, progress=False)
        elif layout == "youtube":
            write_youtube_layout(root, num_train, num_val, size, frames, seed, texture_spread, youtube_objects)
            synthesize_youtube(root, seed=seed, style=style, progress=False)
        else:
            count = num_images if num_images is not None else 2 * (num_train + num_val)
            instances = write_coco_layout(root, count, size, seed, texture_spread)
            synthesize_coco(instances, root, seed=seed, style=style, progress=False)
    return roots


def dataset_overrides(roots: dict[str, Path]) -> list[str]:
    """Config overrides pointing DAVIS, YouTube-VOS and COCO at the layouts of :func:`make_synthetic_dataset`."""
    coco = roots["coco"]
    return [
        f"DATASETS.DAVIS.PATH={roots['davis']}",
        f"DATASETS.YTB.ROOT={roots['youtube']}",
        f"DATASETS.COCOS.IMG_DIR={coco / 'images'}",
        f"DATASETS.COCOS.ANNO_DIR={coco / 'scribbles'}",
        f"DATASETS.COCOS.JSON_PATH={coco / 'COCO_scribbles.json'}",
    ]
