"""Fixtures of the engine tests: a tiny synthetic dataset, tiny-model config overrides and a helper that
runs the training scripts in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rhmnet.config import Config, load_config
from tests.conftest import dataset_overrides, make_synthetic_roots

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = {"pretrain": REPO / "train_script_pretrain.py", "video": REPO / "train_script_video_training.py"}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Every engine test runs torch on one thread (see ``one_torch_thread``)."""


@pytest.fixture(scope="session")
def synthetic_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Smaller than the other tests' set (96x96, 8 frames): the training tests run whole iterations."""
    return make_synthetic_roots(tmp_path_factory, num_train=4, num_val=1, size=(96, 96), frames=8, num_images=8)


def tiny_overrides(roots: dict[str, Path], checkpoint_dir: Path) -> list[str]:
    """On top of configs/small_synthetic.yaml: datasets at ``roots``, 64x64 crops, a 32-wide model, 2 clips per batch,
    3 iterations per epoch, no loader workers."""
    return dataset_overrides(roots) + [
        "DATASETS.CROP_SIZE=[64,64]",
        "DATASETS.RESIZE_SHORT_SIDE=96",
        "DATASETS.DILATE_KERNEL_SIZE=7",
        "MODEL.HIDDEN_DIM=32",
        "MODEL.TRANSFORMER.NHEAD=2",
        "MODEL.TRANSFORMER.DIM_FEEDFORWARD=64",
        "TRAIN.BATCH_SIZE=2",
        "TRAIN.SAMPLES_PER_EPOCH=6",
        "TRAIN.EPOCH=2",
        "TRAIN.NUM_WORKERS=0",
        "TRAIN.LOG_INTERVAL=1",
        "MODEL.BACKBONE.BN_FROZEN=true",  # the paper's frozen batch norm: per-process batches then add up exactly
        "TRAIN.LOSS.CONSISTENCY.WEIGHT=20",  # the paper's video-stage loss, reversed pass included
        f"TRAIN.CHECKPOINT_DIR={checkpoint_dir}",
    ]


def tiny_config(roots: dict[str, Path], checkpoint_dir: Path, *extra: str) -> Config:
    """configs/small_synthetic.yaml with :func:`tiny_overrides` and ``extra`` overrides."""
    return load_config("small_synthetic", tiny_overrides(roots, checkpoint_dir) + list(extra))


def run_script(stage: str, args: list[str], timeout: float = 300, launcher: list[str] | None = None,
               ) -> subprocess.CompletedProcess:
    """Run a training script (optionally under a launcher) from the repository root; output captured."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    command = (launcher or [sys.executable]) + [str(SCRIPTS[stage]), "--no-progress", *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def poison_loss(monkeypatch: pytest.MonkeyPatch, term: str, factor: float, call: int = 3) -> None:
    """Make loss ``term`` (and the total) non-finite on the ``call``-th forward pass of the trainer."""
    import rhmnet.engine.trainer as trainer_module

    real, calls = trainer_module.forward_and_losses, []

    def poisoned(model, batch, loss_cfg):
        terms, out, rev = real(model, batch, loss_cfg)
        calls.append(1)
        if len(calls) == call:
            setattr(terms, term, getattr(terms, term) * factor)
            terms.total = terms.total + getattr(terms, term)
        return terms, out, rev

    monkeypatch.setattr(trainer_module, "forward_and_losses", poisoned)
