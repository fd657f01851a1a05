"""Evaluation test fixtures: a tiny random checkpoint and synthetic DAVIS / YouTube-VOS trees."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
import torch

import rhmnet
from rhmnet.config import load_config
from rhmnet.data.io import write_palette_png, write_scribble
from tests.conftest import SHARED, TINY_OVERRIDES

H, W = 60, 90  # synthetic DAVIS frame size (not a multiple of 16: exercises padding)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every evaluation test runs torch on one thread (see ``one_torch_thread``)."""


@pytest.fixture(scope="session")
def official() -> ModuleType:
    """rhmnet/tools/official_davis_metrics.py: the official toolkit's algorithm, written out step by step."""
    from rhmnet.tools import official_davis_metrics

    return official_davis_metrics


@pytest.fixture(scope="session")
def davis_sample() -> Path:
    root = SHARED / "data" / "davis-sample"
    if not (root / "Annotations" / "480p").is_dir():
        pytest.skip(f"shared DAVIS sample not found at {root} (set RHMNET_SHARED to the shared/ folder)")
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised small model saved in the authors' {'epoch', 'state_dict'} layout."""
    torch.manual_seed(0)
    cfg = load_config("video_training", TINY_OVERRIDES)
    model = rhmnet.build_model(cfg)
    folder = tmp_path_factory.mktemp("ckpt") / "pretrain_weights_video_training"
    folder.mkdir()
    path = folder / "pretrain_checkpoint_3.pth.tar"
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, path)
    return path


def _frames(num: int, height: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Moving coloured rectangles on noise: RGB frames and label maps with objects 1 and 2."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, (num, height, width, 3), dtype=np.uint8)
    labels = np.zeros((num, height, width), dtype=np.uint8)
    for t in range(num):
        x = 8 + 3 * t
        labels[t, 10:40, x : x + 25] = 1
        labels[t, 30:55, width - 40 - 2 * t : width - 10 - 2 * t] = 2
        frames[t][labels[t] == 1] = (220, 40, 40)
        frames[t][labels[t] == 2] = (40, 200, 60)
    return frames, labels


def scribble_from_labels(labels: np.ndarray, num_objects: int) -> np.ndarray:
    """A DAVIS-style scribble file: eroded object cores as n, a background stroke as N+1."""
    out = np.zeros_like(labels)
    for obj in range(1, num_objects + 1):
        core = cv2.erode((labels == obj).astype(np.uint8), np.ones((7, 7), np.uint8))
        out[core > 0] = obj
    out[2:4, 2:-2] = num_objects + 1
    return out


@pytest.fixture()
def davis_root(tmp_path: Path) -> Path:
    return make_davis_root(tmp_path)


@pytest.fixture()
def ytb_root(tmp_path: Path) -> Path:
    return make_ytb_root(tmp_path)


def make_davis_root(tmp_path: Path) -> Path:
    """DAVIS layout: two sequences of 6 frames (64x96), ImageSets 2016/2017 val, valid_scribbles0..1."""
    root = tmp_path / "DAVIS"
    for k, seq in enumerate(["alpha", "beta"]):
        frames, labels = _frames(6, H, W, seed=k)
        for t in range(len(frames)):
            path = root / "JPEGImages" / "480p" / seq / f"{t:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR))
            write_palette_png(root / "Annotations" / "480p" / seq / f"{t:05d}.png", labels[t])
        for g in range(2):
            write_scribble(root / f"valid_scribbles{g}" / f"{seq}.bmp", scribble_from_labels(labels[0], 2))
    for year in ("2016", "2017"):
        (root / "ImageSets" / year).mkdir(parents=True)
        (root / "ImageSets" / year / "val.txt").write_text("alpha\nbeta\n")
    return root


def make_ytb_root(tmp_path: Path) -> Path:
    """YouTube-VOS valid layout: one video, object 2 appears on the third listed frame; 120 px wide."""
    root = tmp_path / "YTB"
    frames, labels = _frames(5, 72, 120, seed=3)
    names = [f"{5 * t:05d}" for t in range(5)]
    labels[:2][labels[:2] == 2] = 0  # object 2 only from the third listed frame on
    for t, name in enumerate(names):
        path = root / "valid" / "JPEGImages" / "vid1" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(frames[t], cv2.COLOR_RGB2BGR))
    write_scribble(
        root / "valid_scribbles" / "vid1" / f"{names[0]}.bmp",
        scribble_from_labels(labels[0] * (labels[0] == 1), 2),
    )
    write_scribble(root / "valid_scribbles" / "vid1" / f"{names[2]}.bmp", scribble_from_labels(labels[2], 2))
    meta = {
        "videos": {
            "vid1": {
                "objects": {
                    "1": {"category": "a", "frames": names},
                    "2": {"category": "b", "frames": names[2:]},
                }
            }
        }
    }
    (root / "valid" / "meta.json").write_text(json.dumps(meta))
    return root
