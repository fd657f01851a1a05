"""Running the methods on the demo's evaluation videos (the trained model, both baselines), its overlay
GIFs, and their DAVIS J&F (:class:`Scores`, one table row each)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from rhmnet.config import Config
from rhmnet.data.io import read_image
from rhmnet.demo.baselines import KnnPropagation, dilated_scribble_baseline
from rhmnet.demo.data import EvalVideo
from rhmnet.evaluation.davis_scoring import evaluate_results
from rhmnet.inference import VideoSegmenter
from rhmnet.inference.driver import segment_video
from rhmnet.inference.frame_io import FrameSource
from rhmnet.inference.mask_io import PaletteWriter
from rhmnet.labels import BACKGROUND
from rhmnet.model import RHMNet
from rhmnet.model.backbones import build_backbone
from rhmnet.overlay import overlay

MODEL_ROW = "RHMNet-Lite (trained)"
DILATED_ROW = "baseline: dilated first-frame scribble"
KNN_ROW = "baseline: training-free kNN (same backbone)"


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

def segment_frames_to_pngs(
    segmenter: VideoSegmenter, frames: list[Path], scribble: np.ndarray, out_dir: Path
) -> list[np.ndarray]:
    """Initialise on frame 0 with ``scribble``, step every frame, write palette PNGs; returns the masks."""
    run = segment_video(segmenter, FrameSource.from_paths(frames), scribble, sink=PaletteWriter(out_dir), collect=True)
    return run.masks


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
        masks = segment_frames_to_pngs(segmenter, video.frames, video.scribble, out / tag / "rhmnet" / video.name)
        if gifs:
            write_gif(video.frames, masks, video.scribble, out / "overlays" / f"{tag}-{video.name}.gif")


def score_model(
    model: RHMNet, cfg: Config, videos: list[EvalVideo], davis_root: Path, out: Path, set_name: str, tag: str
) -> Scores:
    """J&F of the model alone on ``videos`` (masks under ``out/<tag>/rhmnet``, no GIFs, no baselines)."""
    segment_with_model(model, cfg, videos, out, tag, set_name, gifs=False)
    return evaluate(out / tag / "rhmnet", davis_root, [v.name for v in videos], set_name, MODEL_ROW)
