"""A demo that learns to segment real video on a CPU, with no downloads:

    python -m rhmnet.demo [--out outputs/demo] [--overwrite] [--davis PATH ...] [--iters N] [--threads N|auto]
        [--holdout]

A non-empty ``--out`` is an error unless ``--overwrite``: the earlier run is then set aside, removed when
this run succeeds and put back when it fails.

1. builds a synthetic scribble-VOS dataset (moving textured shapes; DAVIS and YouTube-VOS layouts) and
   prepares every DAVIS-layout training root given with ``--davis`` (default: ``../shared/data/davis16-train``
   when present): frames and masks resized to the config's training resolution, scribbles synthesised
   from the masks by :mod:`rhmnet.dataprep.scribble_synthesis`;
2. trains RHMNet-Lite (``configs/lite.yaml``: the ImageNet-pretrained EfficientNet-Lite0 backbone) on both,
   from scribbles only, with a progress bar;
3. evaluates J&F on held-out synthetic videos and on the DAVIS validation sequences it finds
   (``../shared/data/davis-sample``: blackswan, car-shadow), each initialised from a first-frame scribble
   synthesised from the first mask, beside two baselines on the same videos: the dilated first-frame
   scribble, and a training-free cosine k-nearest-neighbour propagation on the same pretrained backbone.
   With ``--holdout`` it trains on the training part of each ``--davis`` root's fixed split only and also
   evaluates the held-out sequences and multi-object videos built from them (docs/generalisation.md);
4. writes the model (``model.pth.tar``, loadable by ``rhmnet.load_model``, ``eval_davis.py --checkpoint``
   and ``python -m rhmnet.segment``), palette masks, overlay GIFs, ``results.md`` and ``results.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from rhmnet.config import Config, load_config
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
from rhmnet.dataprep.synthetic_videos import (
    LAYOUT_DIRS,
    add_texture_spread_argument,
    make_synthetic_dataset,
    synthetic_style,
)
from rhmnet.engine.cli import setup_logging
from rhmnet.engine.distributed import init_distributed
from rhmnet.engine.trainer import RunOptions, run_training
from rhmnet.errors import run_cli
from rhmnet.evaluation.common import add_threads_argument, apply_threads
from rhmnet.evaluation.davis import evaluate_results
from rhmnet.guards import check_output, replaced_on_success
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.driver import FrameSource, PaletteWriter
from rhmnet.inference.driver import segment_video as run_video
from rhmnet.inference.session import (
    normalise_frame,
    pad,
    pad_amounts,
    resize_scribble,
    scribble_to_onehot,
    working_size,
)
from rhmnet.labels import BACKGROUND
from rhmnet.model import RHMNet
from rhmnet.model.backbones import AnyBackbone, build_backbone
from rhmnet.model_io import load_model, save_model
from rhmnet.overlay import overlay
from rhmnet.ranges import AT_LEAST_1, option

log = logging.getLogger("rhmnet.demo")
REPO = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = Path(os.environ.get("RHMNET_SHARED", REPO.parent / "shared"))
MODEL_ROW = "RHMNet-Lite (trained)"
DILATED_ROW = "baseline: dilated first-frame scribble"
KNN_ROW = "baseline: training-free kNN (same backbone)"
SYNTHETIC_SET = "held-out synthetic"
PREPARED_DAVIS_DIR = "davis-train"  # the real DAVIS-layout videos prepared for training, under the data folder
DAVIS_SET = "DAVIS val"


@dataclass
class Scores:
    """J&F summary of one method on one evaluated set."""

    evaluated_on: str
    name: str
    jf: float
    j: float
    f: float
    videos: int

    def row(self) -> str:
        return f"| {self.evaluated_on} | {self.name} | {self.videos} | {self.jf:.3f} | {self.j:.3f} | {self.f:.3f} |"


class PhaseTimer:
    """Wall-clock seconds of each named phase of the demo."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        log.info("phase %s: %.0f s", name, self.seconds[name])


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


# -- inference --------------------------------------------------------------------------------------------
def segment_video(
    segmenter: VideoSegmenter, frames: list[Path], scribble: np.ndarray, out_dir: Path
) -> list[np.ndarray]:
    """Initialise on frame 0 with ``scribble``, step every frame, write palette PNGs; returns the masks."""
    run = run_video(segmenter, FrameSource.from_paths(frames), scribble, sink=PaletteWriter(out_dir), collect=True)
    return run.masks


def dilated_scribble_baseline(scribble: np.ndarray, frames: list[Path], out_dir: Path) -> None:
    """Every frame gets the first frame's object scribbles dilated by 1/32 of the frame's short side."""
    out_dir.mkdir(parents=True, exist_ok=True)
    radius = max(1, round(min(scribble.shape) / 32))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = np.zeros(scribble.shape, np.uint8)
    for obj in sorted(int(v) for v in np.unique(scribble) if 0 < v < BACKGROUND):
        mask[cv2.dilate((scribble == obj).astype(np.uint8), kernel) > 0] = obj
    for path in frames:
        write_palette_png(out_dir / f"{path.stem}.png", mask)


class KnnPropagation:
    """The training-free baseline: cosine k-nearest-neighbour label propagation on backbone features.

    Features: the stride-8 map and the upsampled stride-16 map, each L2-normalised, concatenated. Each
    frame's features vote (top ``k`` cosine similarities, softmax weights at ``temperature``) among the
    labels of the first frame's scribbled pixels and of the previous frame's confident predictions
    (probability >= ``confidence``). Frames are segmented at ``short_side`` like the model.
    """

    def __init__(
        self, backbone: AnyBackbone, short_side: int, k: int = 20, temperature: float = 0.05, confidence: float = 0.9
    ) -> None:
        self.backbone = backbone.eval()
        self.normalisation = backbone.normalisation
        self.short_side, self.k, self.temperature, self.confidence = short_side, k, temperature, confidence

    @torch.no_grad()
    def _features(self, frame: np.ndarray, size: tuple[int, int], padding: tuple[int, int, int, int]) -> torch.Tensor:
        x = normalise_frame(frame, self.normalisation, torch.device("cpu"))
        x = pad(F.interpolate(x, size=size, mode="bilinear", antialias=True), padding)
        _, f8, f16 = self.backbone(x)
        f16 = F.interpolate(f16, size=f8.shape[-2:], mode="bilinear", align_corners=False)
        feats = torch.cat([F.normalize(f8, dim=1), F.normalize(f16, dim=1)], 1)
        return F.normalize(feats, dim=1)[0]  # [C, h, w]

    @torch.no_grad()
    def segment(self, frames: list[Path], scribble: np.ndarray, out_dir: Path) -> list[np.ndarray]:
        """Masks of every frame (frame 0 too) from the first frame's scribble; palette PNGs into ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        first = read_image(frames[0])
        frame_size = first.shape[:2]
        size = working_size(frame_size, self.short_side)
        padding = pad_amounts(*size, 16)
        objects = sorted(int(v) for v in np.unique(scribble) if 0 < v < BACKGROUND)
        classes = [BACKGROUND, *objects]  # vote channel c -> scribble value
        feats = self._features(first, size, padding)
        grid = feats.shape[-2:]
        onehot = pad(resize_scribble(scribble_to_onehot(scribble.astype(np.int64), torch.device("cpu")), size), padding)
        cells = resize_scribble(onehot, tuple(grid))[0]  # thin strokes survive the stride-8 grid
        seed_labels = torch.stack([cells[c] for c in classes])  # [C, h, w]
        seed_mask = seed_labels.sum(0) > 0
        seed_keys, seed_values = feats[:, seed_mask].T, seed_labels[:, seed_mask].T
        keys, values = seed_keys, seed_values
        masks = []
        for index, path in enumerate(frames):
            if index:
                feats = self._features(read_image(path), size, padding)
            query = feats.flatten(1).T  # [hw, C]
            sims = query @ keys.T
            top, where = sims.topk(min(self.k, keys.shape[0]), dim=1)
            weights = torch.softmax(top / self.temperature, dim=1)
            probs = (weights.unsqueeze(-1) * values[where]).sum(1).T.reshape(len(classes), *grid)
            confident = probs.max(0).values >= self.confidence
            label_index = probs.argmax(0)
            keys = torch.cat([seed_keys, feats[:, confident].T])
            values = torch.cat([seed_values, F.one_hot(label_index[confident], len(classes)).float()])
            up = F.interpolate(probs[None], size=onehot.shape[-2:], mode="bilinear", align_corners=False)
            left, right, top_, bottom = padding
            up = up[..., top_ : up.shape[-2] - bottom, left : up.shape[-1] - right]
            up = F.interpolate(up, size=frame_size, mode="bilinear", align_corners=False)[0]
            lookup = torch.tensor([0, *objects], dtype=torch.uint8)
            mask = lookup[up.argmax(0)].numpy()
            write_palette_png(out_dir / f"{path.stem}.png", mask)
            masks.append(mask)
        return masks


def write_gif(frames: list[Path], masks: list[np.ndarray], scribble: np.ndarray, path: Path) -> None:
    """Overlay GIF: the first frame with its scribble, then every frame with the predicted masks."""
    images = [overlay(read_image(frames[0]), np.where(scribble < BACKGROUND, scribble, 0).astype(np.uint8), 0.9)]
    images += [overlay(read_image(f), m) for f, m in zip(frames, masks)]
    scale = min(1.0, 480 / max(images[0].shape[:2]))
    pil = [Image.fromarray(i).resize((int(i.shape[1] * scale), int(i.shape[0] * scale))) for i in images]
    path.parent.mkdir(parents=True, exist_ok=True)
    pil[0].save(path, save_all=True, append_images=pil[1:], duration=120, loop=0)


def evaluate(results: Path, davis_root: Path, sequences: list[str], evaluated_on: str, name: str) -> Scores:
    """DAVIS-toolkit J&F (first and last frames excluded) of the PNGs under ``results``."""
    result = evaluate_results(results, davis_root, 2017, "val", sequences=sequences, workers=1, progress=False)
    g = result.global_metrics()
    return Scores(evaluated_on, name, g["J&F-Mean"], g["J-Mean"], g["F-Mean"], len(sequences))


@dataclass
class EvalVideo:
    """One evaluation video: its frames and first-frame scribble."""

    name: str
    frames: list[Path]
    scribble: np.ndarray


def run_methods(
    model: RHMNet,
    cfg: Config,
    videos: list[EvalVideo],
    davis_root: Path,
    out: Path,
    set_name: str,
    tag: str,
    score: bool = True,
) -> list[Scores]:
    """The trained model, the dilated-scribble baseline and the kNN baseline on ``videos``; J&F of each
    when ``score`` (every video segmented in full)."""
    segment_with_model(model, cfg, videos, out, tag, set_name, gifs=True)
    baselines = run_baselines(cfg, videos, davis_root, out, set_name, tag, score)
    if not score:
        return []
    return [evaluate(out / tag / "rhmnet", davis_root, [v.name for v in videos], set_name, MODEL_ROW), *baselines]


def run_baselines(
    cfg: Config, videos: list[EvalVideo], davis_root: Path, out: Path, set_name: str, tag: str, score: bool = True
) -> list[Scores]:
    """The dilated-scribble and the kNN baselines on ``videos`` (masks under ``out/<tag>/{dilated,knn}``);
    their J&F when ``score``."""
    # training-free: the pretrained backbone as built before training (the model's own backbone has trained
    # its later stages), so the table shows what training adds
    knn = KnnPropagation(build_backbone(cfg.MODEL.BACKBONE), cfg.TEST.INPUT_SHORT_SIDE)
    for video in tqdm(videos, desc=f"baselines on {set_name}", dynamic_ncols=True):
        dilated_scribble_baseline(video.scribble, video.frames, out / tag / "dilated" / video.name)
        knn.segment(video.frames, video.scribble, out / tag / "knn" / video.name)
    if not score:
        return []
    names = [v.name for v in videos]
    return [evaluate(out / tag / folder, davis_root, names, set_name, row)
            for folder, row in (("dilated", DILATED_ROW), ("knn", KNN_ROW))]


def segment_with_model(
    model: RHMNet, cfg: Config, videos: list[EvalVideo], out: Path, tag: str, set_name: str, gifs: bool
) -> None:
    """Masks of every video by the model into ``out/<tag>/rhmnet/<video>`` (and overlay GIFs when ``gifs``)."""
    segmenter = VideoSegmenter(model, cfg.TEST)
    for video in tqdm(videos, desc=f"segmenting {set_name}", dynamic_ncols=True):
        masks = segment_video(segmenter, video.frames, video.scribble, out / tag / "rhmnet" / video.name)
        if gifs:
            write_gif(video.frames, masks, video.scribble, out / "overlays" / f"{tag}-{video.name}.gif")


def score_model(
    model: RHMNet, cfg: Config, videos: list[EvalVideo], davis_root: Path, out: Path, set_name: str, tag: str
) -> Scores:
    """J&F of the model alone on ``videos`` (masks under ``out/<tag>/rhmnet``, no GIFs, no baselines)."""
    segment_with_model(model, cfg, videos, out, tag, set_name, gifs=False)
    return evaluate(out / tag / "rhmnet", davis_root, [v.name for v in videos], set_name, MODEL_ROW)


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


# -- the demo ---------------------------------------------------------------------------------------------
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


def train(
    cfg: Config, iterations: Optional[int], device: str, keep_checkpoints: bool = False
) -> tuple[Path, float, int]:
    """Train the video stage; returns the last checkpoint, iterations per second and iterations done. Only
    the last checkpoint is kept unless ``keep_checkpoints``."""
    ctx = init_distributed(device)
    setup_logging(ctx)
    options = RunOptions(max_iters=iterations, progress=True, extend_schedule=True, overwrite=True)  # own folder
    result = run_training(cfg, "video", ctx, options)
    log.info(
        "trained %d iterations in %.0f s (%.2f it/s)",
        result.state.iteration,
        result.seconds,
        result.iterations_per_second,
    )
    if not keep_checkpoints:
        for older in result.checkpoints[:-1]:  # the demo needs only the final weights
            older.unlink(missing_ok=True)
    return result.checkpoints[-1], result.iterations_per_second, result.state.iteration


def add_run_arguments(parser: argparse.ArgumentParser, device_help: str) -> None:
    """The options the demo shares with ``scripts/learning_curve.py``: config, device, threads, seed, the
    training data (``--davis``, the synthetic videos) and where the DAVIS sample is."""
    parser.add_argument("--config", default="lite", help="config to train (default: configs/lite.yaml)")
    parser.add_argument("--device", default="cpu", help=device_help)
    add_threads_argument(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--davis",
        type=Path,
        action="append",
        default=None,
        help="DAVIS-layout training root (JPEGImages/480p, Annotations/480p; repeatable; default: "
        "<shared>/data/davis16-train when present)",
    )
    parser.add_argument("--num-train", type=option(int, AT_LEAST_1), default=32,
                        help="synthetic training videos per layout")
    parser.add_argument("--num-val", type=option(int, AT_LEAST_1), default=8, help="held-out synthetic videos")
    parser.add_argument(
        "--train-objects",
        type=option(int, AT_LEAST_1),
        nargs=2,
        default=(1, 3),
        metavar=("MIN", "MAX"),
        help="objects per synthetic training video (default 1 3, like the held-out ones); 2 3 teaches telling "
        "objects apart at a cost on DAVIS val (docs/demo.md)",
    )
    add_texture_spread_argument(parser)
    parser.add_argument(
        "--shared", type=Path, default=DEFAULT_SHARED, help="folder holding data/davis-sample and data/davis16-train"
    )
    parser.add_argument(
        "--holdout",
        action="store_true",
        help="train on the training part of each --davis root's fixed split (docs/generalisation.md) and also "
        "report its held-out sequences and multi-object videos built from them, each with both baselines",
    )
    parser.add_argument(
        "--val-seed", type=int, default=0, help="seed of the held-out scribbles and multi-object videos (--holdout)"
    )


def check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject bad values of :func:`add_run_arguments`' options before any work (a usage error)."""
    low, high = args.train_objects
    if not 1 <= low <= high:
        parser.error(f"--train-objects {low} {high}: need 1 <= MIN <= MAX")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "demo", help="output folder")
    add_run_arguments(parser, "cpu (the demo's target) or cuda")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier demo run in --out (put back if this run fails)")
    parser.add_argument("--iters", type=option(int, AT_LEAST_1), default=None,
                        help="training iterations (default: the config's)")
    parser.add_argument(
        "--davis-frames",
        type=option(int, AT_LEAST_1),
        default=None,
        help="segment only the first N frames of each DAVIS validation video (no J&F then)",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=value", help="overrides of the config")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_run_arguments(parser, args)
    apply_threads(args.threads)
    out = args.out.resolve()
    davis_roots = training_davis_roots(args)
    probe = load_config(args.config, args.overrides)  # fails early on a bad config or override
    check_output(out, args.overwrite, what="--out")
    print(f"demo output folder: {out}")
    with replaced_on_success(out):  # --overwrite: the earlier run comes back if this one fails
        return run_demo(args, out, davis_roots, probe)


def run_demo(args: argparse.Namespace, out: Path, davis_roots: list[Path], probe: Config) -> int:
    """The demo's work after its arguments were checked: data, training, evaluation, reports."""
    start = time.perf_counter()
    timer = PhaseTimer()
    with timer("data"):
        data = build_training_data(out / "data", args, davis_roots, probe.DATASETS.RESIZE_SHORT_SIDE)
    cfg = load_config(args.config, [*data.overrides(), f"TRAIN.CHECKPOINT_DIR={out / 'checkpoints'}",
                                    f"TRAIN.SEED={args.seed}", *args.overrides])
    with timer("train"):
        checkpoint, iters_per_second, iterations = train(cfg, args.iters, args.device)
    model = load_model(checkpoint)
    save_model(model, out / "model.pth.tar")
    with timer("evaluate synthetic"):
        videos = synthetic_videos(data.synthetic_davis)
        rows = run_methods(model, cfg, videos, data.synthetic_davis, out, SYNTHETIC_SET, "synthetic")
    sample = args.shared / "data" / "davis-sample"
    if (sample / "ImageSets" / "2017" / "val.txt").is_file():
        with timer("evaluate DAVIS val"):
            videos = davis_val_videos(sample, out, args.seed, args.davis_frames)
            score = args.davis_frames is None  # J&F only for fully segmented videos
            rows += run_methods(model, cfg, videos, sample, out, DAVIS_SET, "davis-val", score)
    else:
        log.info("no DAVIS sample at %s: skipping the real-frame evaluation (set RHMNET_SHARED)", sample)
    held_out = held_out_sets(davis_roots, out / "data", args.val_seed) if args.holdout else []
    for held in held_out:
        with timer("evaluate held-out"):
            single, multi = held_out_videos(held, out, args.val_seed, args.davis_frames)
            score = args.davis_frames is None
            tag = f"held-out-{held.root.name}"
            rows += run_methods(model, cfg, single, held.root, out, held.single_set(), tag, score)
            if multi:
                rows += run_methods(model, cfg, multi, held.multiobject, out, held.multi_set(), f"multi-{tag}", score)
    minutes = (time.perf_counter() - start) / 60
    report = results_report(rows, timer.seconds, minutes, iterations, iters_per_second, davis_roots, held_out)
    (out / "results.md").write_text(report)
    (out / "results.json").write_text(
        json.dumps(
            {
                "rows": [asdict(r) for r in rows],
                "phases_seconds": timer.seconds,
                "minutes": minutes,
                "iterations": iterations,
                "iterations_per_second": iters_per_second,
                "threads": torch.get_num_threads(),
                "training_roots": [str(r) for r in davis_roots],
                "held_out": {str(h.root): h.sequences for h in held_out},
            },
            indent=2,
        )
    )
    print(report)
    print(f"model: {out / 'model.pth.tar'}; results, masks and overlay GIFs are in {out}")
    return 0


def results_report(
    rows: list[Scores],
    phases: dict[str, float],
    minutes: float,
    iterations: int,
    iters_per_second: float,
    davis_roots: list[Path],
    held_out: Sequence[HeldOut] = (),
) -> str:
    """``results.md``: the J&F table, the phases' times and what the model was trained on (and, with held-out
    sets, which sequences it never saw)."""
    table = "\n".join(
        ["| evaluated on | method | videos | J&F | J | F |", "|---|---|---|---|---|---|", *(r.row() for r in rows)]
    )
    timing = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items())
    parts = {h.root: f" (training part: the {len(h.sequences)} sequences {', '.join(h.sequences)} held out)"
             for h in held_out}
    trained_on = "synthetic videos" + "".join(f" + {root.name}{parts.get(root, '')}" for root in davis_roots)
    shown = {r.evaluated_on for r in rows}
    unseen = "".join(f"Rows '{name}' are videos the model never saw.\n"
                     for h in held_out for name in (h.single_set(), h.multi_set()) if name in shown)
    return (
        f"# RHMNet demo\n\n{table}\n\n{unseen}"
        f"Trained on {trained_on}: {iterations} iterations at {iters_per_second:.2f} it/s.\n"
        f"Total time: {minutes:.1f} min on {torch.get_num_threads()} CPU threads ({timing}).\n"
    )


if __name__ == "__main__":
    sys.exit(run_cli(main))
