"""Shared test fixtures: location of ../shared and a tiny model configuration."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rhmnet.dataprep.synthetic_videos import dataset_overrides  # noqa: F401 (used by the test packages)

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RHMNET_SHARED", REPO.parent / "shared"))

TINY_OVERRIDES = [
    "MODEL.BACKBONE.NAME=resnet18",
    "MODEL.BACKBONE.PRETRAINED=false",
    "MODEL.HIDDEN_DIM=64",
    "MODEL.TRANSFORMER.NHEAD=4",
    "MODEL.TRANSFORMER.DIM_FEEDFORWARD=128",
]


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a clear reason when it is absent (a user's clone)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (developer-only material; set RHMNET_SHARED to its location)")
    return path


@pytest.fixture
def tiny_config():
    from rhmnet.config import load_config

    return load_config("video_training", TINY_OVERRIDES)


@pytest.fixture
def tiny_model(tiny_config):
    import torch

    from rhmnet import build_model

    torch.manual_seed(0)
    return build_model(tiny_config).eval()
