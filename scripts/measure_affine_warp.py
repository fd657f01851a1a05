"""How much the one combined affine warp of the video augmentation differs from a sequence of warps.

    python scripts/measure_affine_warp.py [--davis ../shared/data/davis-sample] [--samples 400] [--seed 0]

The training augmentation (``rhmnet.data.augment.random_affine_matrix``) multiplies the active steps
(``random_affine_steps``: rotation, shear, translation, scaling; each active with probability 0.5, in
random order) into one matrix and warps once. imgaug, which the authors use, applies each active step as its
own warp with zero fill. This script draws the steps, applies them both ways with OpenCV (bilinear frames, nearest
labels, zero fill) to DAVIS frames and masks at short side 480, and prints how often the results differ
and by how much. imgaug itself is not run: the sequence is the same matrices, one warp each.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from rhmnet.cli_args import ArgumentParser
from rhmnet.data.augment import random_affine_steps, resize_short_side, warp_affine_pair
from rhmnet.data.io import list_files, read_image, read_palette_png
from rhmnet.dataprep import shared_dir


def combined_and_sequential(
    image: np.ndarray, label: np.ndarray, steps: list[np.ndarray]
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(frame, labels) warped once by the product of ``steps``, and warped by each step in turn."""
    matrix = np.eye(3)
    for step in steps:
        matrix = step @ matrix
    combined = warp_affine_pair(image, label, matrix[:2])
    sequential = (image, label)
    for step in steps:
        sequential = warp_affine_pair(*sequential, step[:2])
    return combined, sequential


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis", type=Path, default=shared_dir() / "data" / "davis-sample")
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(args.seed)
    masks = sorted((args.davis / "Annotations" / "480p").glob("*/*.png"))
    if not masks:
        raise SystemExit(f"--davis {args.davis}: no Annotations/480p/<seq>/*.png")
    rows: list[tuple[int, float, float, float, float]] = []
    for index in rng.choice(len(masks), size=args.samples):
        mask_path = masks[index]
        frame = list_files(args.davis / "JPEGImages" / "480p" / mask_path.parent.name, (".jpg",))[
            int(mask_path.stem)
        ]
        image, label = resize_short_side(read_image(frame), read_palette_png(mask_path), 480)
        steps = random_affine_steps(*label.shape, rng)
        (image_c, label_c), (image_s, label_s) = combined_and_sequential(image, label, steps)
        objects_c, objects_s = label_c > 0, label_s > 0
        union = np.count_nonzero(objects_c | objects_s)
        iou = np.count_nonzero(objects_c & objects_s) / union if union else 1.0
        filled_c = np.all(image_c == 0, axis=2)
        filled_s = np.all(image_s == 0, axis=2)
        both = ~filled_c & ~filled_s
        mad = float(np.abs(image_c.astype(np.float64) - image_s)[both].mean()) if both.any() else 0.0
        rows.append((len(steps), float(np.mean(label_c != label_s)), iou, float(np.mean(filled_s & ~filled_c)), mad))
    data = np.array(rows)
    print("| active steps | samples | label pixels differing | object IoU, combined vs sequence | "
          "extra zero fill in the sequence | mean abs. frame difference where both have content |")
    print("|---|---|---|---|---|---|")
    for count in range(5):
        group = data[data[:, 0] == count]
        if len(group):
            print(f"| {count} | {len(group)} | {group[:, 1].mean():.2%} (max {group[:, 1].max():.2%}) | "
                  f"{group[:, 2].mean():.4f} (min {group[:, 2].min():.4f}) | {group[:, 3].mean():.2%} | "
                  f"{group[:, 4].mean():.2f} / 255 |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
