"""The demo's videos: its training data (synthetic videos, prepared DAVIS-layout roots) and its evaluation
sets (held-out synthetic videos, DAVIS validation sequences, each root's held-out split and the
multi-object videos built from it), each evaluation video with its first-frame scribble."""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
from tqdm import tqdm

from rhmnet.data.io import (
    DatasetError,
    list_files,
    read_davis_eval_scribble,
    read_image,
    read_image_set,
    read_palette_png,
    write_image,
    write_palette_png,
    write_scribble,
)
from rhmnet.dataprep.multiobject import MANIFEST, make_multiobject_videos
from rhmnet.dataprep.scribble_synthesis import ScribbleStyle, rng_for, scribble_from_labels, synthesize_davis
from rhmnet.dataprep.splits import davis_split, training_sequences
from rhmnet.dataprep.synthetic_videos import LAYOUT_DIRS, make_synthetic_dataset, synthetic_style
from rhmnet.inference.session import working_size
from rhmnet.labels import BACKGROUND

log = logging.getLogger(__name__)
SYNTHETIC_SET = "held-out synthetic"
PREPARED_DAVIS_DIR = "davis-train"  # the real DAVIS-layout videos prepared for training, under the data folder
DAVIS_SET = "DAVIS val"


# -- training data ---------------------------------------------------------------------------------------
def resize_to_short_side(image: np.ndarray, labels: np.ndarray, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    """A frame (area interpolation) and its mask (nearest) with the short side scaled to ``short_side``."""
    height, width = working_size(labels.shape[:2], short_side)
    if (height, width) == labels.shape[:2]:
        return image, labels
    return (
        cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA),
        cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST),
    )


def prepare_davis_training(
    roots: Sequence[Path], out: Path, short_side: int, seed: int, holdout: bool = False
) -> Path:
    """One DAVIS-layout training root under ``out`` holding every annotated frame of every training sequence
    of ``roots`` (with ``holdout``: only the training part of each root's fixed split,
    :func:`rhmnet.dataprep.splits.davis_split`) at the training resolution, with scribbles synthesised from
    the masks (the scribble-supervised setting: the model never sees the dense masks). Sequences are named
    ``<root>-<sequence>``."""
    names = []
    for root in roots:
        sequences = list(davis_split(root).train) if holdout else training_sequences(root)
        for seq in tqdm(sequences, desc=f"preparing {root.name}", dynamic_ncols=True):
            masks = list_files(root / "Annotations" / "480p" / seq, (".png",))
            if not masks:
                raise DatasetError(f"--davis {root}: sequence {seq!r} has no masks in Annotations/480p/{seq}")
            name = f"{root.name}-{seq}"
            for mask_path in masks:
                frame_path = root / "JPEGImages" / "480p" / seq / f"{mask_path.stem}.jpg"
                if not frame_path.is_file():
                    raise DatasetError(f"--davis {root}: mask {mask_path} has no frame {frame_path}")
                image, labels = resize_to_short_side(read_image(frame_path), read_palette_png(mask_path), short_side)
                write_image(out / "JPEGImages" / "480p" / name / f"{mask_path.stem}.jpg", image, quality=90)
                write_palette_png(out / "Annotations" / "480p" / name / f"{mask_path.stem}.png", labels)
            names.append(name)
    (out / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (out / "ImageSets" / "2017" / "train.txt").write_text("".join(f"{n}\n" for n in names))
    report = synthesize_davis(out, seed=seed, style=synthetic_style((short_side, short_side)), groups=0)
    log.info("training scribbles: %s", report.summary().replace("\n", "; "))
    return out


@dataclass
class TrainingData:
    """The demo's training roots: the synthetic DAVIS layout (its val split is the held-out set), the
    synthetic YouTube-VOS layout, and the DAVIS-layout root that is trained on (the prepared real videos,
    else the synthetic DAVIS layout)."""

    synthetic_davis: Path
    youtube: Path
    train_davis: Path

    def overrides(self) -> list[str]:
        """The config overrides that point the datasets at these roots."""
        return [f"DATASETS.DAVIS.PATH={self.train_davis}", f"DATASETS.YTB.ROOT={self.youtube}"]

    @classmethod
    def existing(cls, folder: Path) -> TrainingData:
        """The roots of a folder written earlier by :func:`build_training_data` (checked, not rebuilt)."""
        synthetic, youtube, real = (folder / LAYOUT_DIRS["davis"], folder / LAYOUT_DIRS["youtube"],
                                    folder / PREPARED_DAVIS_DIR)
        for root in (synthetic, youtube):
            if not root.is_dir():
                raise DatasetError(f"{folder}: no {root.name}/ (not a folder of prepared demo training data)")
        return cls(synthetic, youtube, real if real.is_dir() else synthetic)


def build_training_data(
    folder: Path, args: argparse.Namespace, davis_roots: Sequence[Path], short_side: int
) -> TrainingData:
    """The synthetic layouts (``--num-train``, ``--num-val``, ``--train-objects``, ``--texture-spread``,
    ``--seed``) and the real DAVIS-layout roots prepared at ``short_side`` (``--holdout``: their training
    parts only), all under ``folder``."""
    data = make_synthetic_dataset(
        folder,
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        size=(128, 128),
        frames=16,
        layouts=("davis", "youtube"),
        progress=True,
        texture_spread=args.texture_spread,
        youtube_objects=tuple(args.train_objects),
    )
    train_davis = data["davis"]
    if davis_roots:
        train_davis = prepare_davis_training(davis_roots, folder / PREPARED_DAVIS_DIR, short_side, args.seed,
                                             holdout=args.holdout)
    return TrainingData(data["davis"], data["youtube"], train_davis)


def default_davis_roots(shared: Path) -> list[Path]:
    """``<shared>/data/davis16-train`` when it exists."""
    root = shared / "data" / "davis16-train"
    return [root] if root.is_dir() else []


def training_davis_roots(args: argparse.Namespace) -> list[Path]:
    """The real DAVIS-layout roots to train on: every ``--davis``, else :func:`default_davis_roots`; a
    ``--davis`` that is not a folder is a usage error."""
    roots = [p.resolve() for p in args.davis] if args.davis else default_davis_roots(args.shared)
    for root in roots:
        if not root.is_dir():
            raise DatasetError(f"--davis {root}: no such folder")
    return roots


# -- evaluation videos ------------------------------------------------------------------------------------
@dataclass
class EvalVideo:
    """One evaluation video: its frames and first-frame scribble."""

    name: str
    frames: list[Path]
    scribble: np.ndarray


def synthetic_videos(davis_root: Path) -> list[EvalVideo]:
    """The ``ImageSets/2017/val.txt`` videos of a DAVIS-layout root with their first-frame scribbles
    (``valid_scribbles0``): the held-out synthetic videos, or the multi-object ones."""
    videos = []
    for seq in read_image_set(davis_root / "ImageSets" / "2017" / "val.txt"):
        frames = list_files(davis_root / "JPEGImages" / "480p" / seq, (".jpg",))
        num_objects = int(read_palette_png(davis_root / "Annotations" / "480p" / seq / f"{frames[0].stem}.png").max())
        scribble = read_davis_eval_scribble(
            davis_root / "valid_scribbles0" / f"{seq}.bmp", with_bg=True, num_objects=num_objects
        )
        videos.append(EvalVideo(seq, frames, scribble))
    return videos


def davis_sample(shared: Path) -> Optional[Path]:
    """``<shared>/data/davis-sample``, the DAVIS root whose validation sequences the demo evaluates, when it
    lists them (``ImageSets/2017/val.txt``); else ``None``."""
    sample = shared / "data" / "davis-sample"
    return sample if (sample / "ImageSets" / "2017" / "val.txt").is_file() else None


def davis_val_videos(sample: Path, out: Path, seed: int, max_frames: Optional[int]) -> list[EvalVideo]:
    """The validation sequences of a DAVIS root (full resolution), scribbles synthesised from the first
    masks (written to ``out/davis-val/scribbles``)."""
    sequences = read_image_set(sample / "ImageSets" / "2017" / "val.txt")
    return davis_videos(sample, sequences, out / "davis-val" / "scribbles", seed, max_frames)


def davis_videos(
    root: Path, sequences: Sequence[str], scribble_dir: Path, seed: int, max_frames: Optional[int]
) -> list[EvalVideo]:
    """``sequences`` of a DAVIS root (full resolution, annotated frames), scribbles synthesised from the first
    masks (written to ``scribble_dir``)."""
    videos = []
    style = ScribbleStyle(radius=(3, 5))
    for seq in sequences:
        frames = list_files(root / "JPEGImages" / "480p" / seq, (".jpg",))[:max_frames]
        if not frames:
            raise DatasetError(f"{root}: sequence {seq!r} has no frames in JPEGImages/480p/{seq}")
        labels = read_palette_png(root / "Annotations" / "480p" / seq / f"{frames[0].stem}.png")
        ids = [int(v) for v in np.unique(labels) if 0 < v < 255]
        scribble, _, _ = scribble_from_labels(labels, ids, BACKGROUND, rng_for(seed, "demo", seq), style)
        write_scribble(scribble_dir / f"{seq}.bmp", scribble)
        videos.append(EvalVideo(seq, frames, scribble))
    return videos


@dataclass
class HeldOut:
    """The held-out part of a training root: its validation sequences and the multi-object videos built from
    them (``None`` with fewer than two sequences)."""

    root: Path
    sequences: list[str]
    multiobject: Optional[Path]

    def single_set(self) -> str:
        return f"held-out {self.root.name}"

    def multi_set(self) -> str:
        return f"held-out multi-object {self.root.name}"


def held_out_sets(roots: Sequence[Path], data_folder: Path, seed: int) -> list[HeldOut]:
    """The validation part of each root's fixed split, with its multi-object videos (built under
    ``data_folder/multiobject-<root>`` from ``seed``; kept when a folder of the same seed and sequences is
    there already)."""
    sets = []
    for root in roots:
        sequences = list(davis_split(root).val)
        if len(sequences) < 2:
            log.info("%s: one held-out sequence, no multi-object videos", root)
            sets.append(HeldOut(root, sequences, None))
            continue
        folder = data_folder / f"multiobject-{root.name}"
        manifest = folder / MANIFEST
        built = json.loads(manifest.read_text()) if manifest.is_file() else {}
        if built.get("seed") != seed or built.get("sequences") != sequences:
            make_multiobject_videos(root, folder, sequences, seed=seed, overwrite=True)
        sets.append(HeldOut(root, sequences, folder))
    return sets


def check_unseen(train_davis: Path, held_out: Sequence[HeldOut]) -> None:
    """A clear error when a prepared training root (``ImageSets/2017/train.txt`` of ``<root>-<sequence>``
    names) holds a held-out sequence: its scores would not be of unseen video."""
    listed = train_davis / "ImageSets" / "2017" / "train.txt"
    trained = set(read_image_set(listed)) if listed.is_file() else set()
    seen = [seq for held in held_out for seq in held.sequences if f"{held.root.name}-{seq}" in trained]
    if seen:
        raise DatasetError(
            f"{listed}: the training data holds held-out sequences ({', '.join(seen)}); prepare it with --holdout"
        )


def held_out_videos(held: HeldOut, out: Path, seed: int, max_frames: Optional[int]) -> tuple[list[EvalVideo], ...]:
    """The single-object held-out videos (scribbles under ``out/held-out/<root>``) and the multi-object ones
    (their ``valid_scribbles0``, cut to ``max_frames``)."""
    single = davis_videos(held.root, held.sequences, out / "held-out" / held.root.name, seed, max_frames)
    multi = synthetic_videos(held.multiobject) if held.multiobject is not None else []
    return single, [EvalVideo(v.name, v.frames[:max_frames], v.scribble) for v in multi]
