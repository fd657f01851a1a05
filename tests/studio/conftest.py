"""Studio fixtures: a short synthetic video with known masks, and a small checkpoint."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("starlette", reason="the studio's extra (pip install 'rhmnet[studio]') is not installed")

from rhmnet import build_model  # noqa: E402
from rhmnet.config import load_config  # noqa: E402
from rhmnet.model_io import save_model  # noqa: E402
from tests.conftest import TINY_OVERRIDES  # noqa: E402

FRAMES, HEIGHT, WIDTH = 8, 120, 160


def synthetic_video(num: int = FRAMES, height: int = HEIGHT, width: int = WIDTH) -> tuple[np.ndarray, np.ndarray]:
    """Two moving shapes (a red box, a green disc) on dark noise: RGB frames and their label maps."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 50, (num, height, width, 3), dtype=np.uint8)
    labels = np.zeros((num, height, width), np.uint8)
    for t in range(num):
        x = 20 + 6 * t
        labels[t, 30:75, x : x + 40] = 1
        cv2.circle(labels[t], (width - 35 - 4 * t, 80), 20, 2, -1)
        frames[t][labels[t] == 1] = (220, 50, 40)
        frames[t][labels[t] == 2] = (40, 200, 70)
    return frames, labels


@pytest.fixture
def video_dir(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A folder of PNG frames ``f00..f07.png`` and the true label maps."""
    frames, labels = synthetic_video()
    folder = tmp_path / "video"
    folder.mkdir()
    for t, image in enumerate(frames):
        cv2.imwrite(str(folder / f"f{t:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder, labels


@pytest.fixture(scope="session")
def studio_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small randomly initialised model in our checkpoint format."""
    torch.manual_seed(0)
    model = build_model(load_config("video_training", TINY_OVERRIDES))
    path = tmp_path_factory.mktemp("studio-ckpt") / "model.pth.tar"
    save_model(model, path)
    return path
