"""Studio fixtures: short synthetic videos with known masks, a small random checkpoint, and a small
RHMNet-Lite trained for a few seconds on random one-object videos (it segments such videos well: J about 0.9;
telling two objects apart takes far longer to learn)."""

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


def one_object_video(rng: np.random.Generator, num: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """A box or a disc of a random colour moving over dark noise: RGB frames and label maps (object 1)."""
    frames = rng.integers(0, 60, (num, height, width, 3), dtype=np.uint8)
    labels = np.zeros((num, height, width), np.uint8)
    colour = rng.integers(90, 256, 3)
    size = int(rng.integers(min(height, width) // 5, min(height, width) // 3))
    x, y = int(rng.integers(size, width - 2 * size)), int(rng.integers(size, height - 2 * size))
    vx, vy = (int(v) for v in rng.integers(-5, 6, 2))
    disc = bool(rng.integers(0, 2))
    for t in range(num):
        cx, cy = x + vx * t, y + vy * t
        if disc:
            cv2.circle(labels[t], (cx + size // 2, cy + size // 2), size // 2 + 2, 1, -1)
        else:
            labels[t, max(cy, 0) : cy + size, max(cx, 0) : cx + size + 8] = 1
        frames[t][labels[t] == 1] = colour
    return frames, labels


def write_frames(folder: Path, frames: np.ndarray) -> Path:
    """PNG frames ``f00.png``, ``f01.png``, ... in a new folder."""
    folder.mkdir()
    for t, image in enumerate(frames):
        cv2.imwrite(str(folder / f"f{t:02d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture
def video_dir(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A folder of PNG frames ``f00..f07.png`` (two objects) and the true label maps."""
    frames, labels = synthetic_video()
    return write_frames(tmp_path / "video", frames), labels


@pytest.fixture
def one_object_dir(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A folder of PNG frames ``f00..f09.png`` of one moving object, and the true label maps."""
    frames, labels = one_object_video(np.random.default_rng(2024), 10, HEIGHT, WIDTH)
    return write_frames(tmp_path / "video", frames), labels


def middle_row_line(region: np.ndarray) -> list[tuple[float, float]]:
    """A horizontal line (points in frame pixels) across a boolean region's median row."""
    ys, xs = np.nonzero(region)
    row = int(np.median(ys))
    cols = xs[ys == row]
    return [(float(cols.min()), float(row)), (float(cols.max()), float(row))]


def stroke_lines(labels: np.ndarray, objects: tuple[int, ...]) -> list[tuple[str, list[tuple[float, float]]]]:
    """Strokes a person might draw: for each object a horizontal line through its eroded core (brush value,
    points in frame pixels), and two background lines along the top and bottom borders."""
    strokes = []
    for obj in objects:
        core = cv2.erode((labels == obj).astype(np.uint8), np.ones((9, 9), np.uint8))
        strokes.append((str(obj), middle_row_line(core > 0)))
    h, w = labels.shape
    strokes.append(("bg", [(4.0, 4.0), (w - 5.0, 4.0)]))
    strokes.append(("bg", [(4.0, h - 5.0), (w - 5.0, h - 5.0)]))
    return strokes


def draw_scribble(labels: np.ndarray, objects: tuple[int, ...], width: int = 6) -> np.ndarray:
    """:func:`stroke_lines` drawn as a label map (objects 1..n, background 11)."""
    out = np.zeros_like(labels)
    for value, points in stroke_lines(labels, objects):
        label = 11 if value == "bg" else int(value)
        (x0, y0), (x1, y1) = points
        cv2.line(out, (round(x0), round(y0)), (round(x1), round(y1)), label, width)
    return out


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RHMNet-Lite (its ImageNet backbone, frames at their own size) trained for 40 steps (batch 2, clips of
    3 frames at 128x160) on random one-object videos, full masks as targets: about 15-30 s on one thread.
    Not the test video: a model that has learnt to follow a scribbled shape."""
    from rhmnet.inference.session import normalise_frame
    from rhmnet.labels import BACKGROUND
    from rhmnet.losses import partial_cross_entropy

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    model = build_model(load_config("lite", ["TEST.INPUT_SHORT_SIDE=0"]))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    cpu = torch.device("cpu")
    for _ in range(40):
        clips, scribbles, targets = [], [], []
        for _ in range(2):
            frames, labels = one_object_video(rng, 3, 128, 160)
            clips.append(torch.cat([normalise_frame(f, model.backbone.normalisation, cpu) for f in frames]))
            scribbles.append(torch.from_numpy(draw_scribble(labels[0], (1,))).long())
            targets.append(torch.from_numpy(np.where(labels == 0, BACKGROUND, labels)).long())
        out = model(torch.stack(clips), torch.stack(scribbles), torch.tensor([1, 1]))
        target = torch.stack(targets)
        loss = sum(partial_cross_entropy(logits, target[:, f], 1.0)
                   for f, layers in enumerate(out.mask_logits) for logits in layers)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    torch.set_num_threads(previous)
    path = tmp_path_factory.mktemp("studio-trained") / "model.pth.tar"
    save_model(model.eval(), path)
    return path


@pytest.fixture(scope="session")
def studio_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small randomly initialised model in our checkpoint format."""
    torch.manual_seed(0)
    model = build_model(load_config("video_training", TINY_OVERRIDES))
    path = tmp_path_factory.mktemp("studio-ckpt") / "model.pth.tar"
    save_model(model, path)
    return path
