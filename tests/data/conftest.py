"""Fixtures of the data tests: configs over the session's synthetic dataset (``synthetic_roots``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rhmnet.config import Config, load_config
from tests.conftest import dataset_overrides

CROP = 64


def data_overrides(roots: dict[str, Path]) -> list[str]:
    """Config overrides pointing the datasets at ``roots`` with small crops."""
    return dataset_overrides(roots) + [
        f"DATASETS.CROP_SIZE=[{CROP},{CROP}]",
        "DATASETS.RESIZE_SHORT_SIDE=128",
        "DATASETS.MINIMUM_AREA=20",
        "DATASETS.SAMPLE_PROBABILITY=[1,1]",
        "TRAIN.SAMPLES_PER_EPOCH=12",
    ]


@pytest.fixture
def make_cfg(synthetic_roots: dict[str, Path]) -> Callable[..., Config]:
    """``make_cfg("KEY=value", ...)``: the video_training config on the synthetic data plus overrides."""

    def make(*extra: str) -> Config:
        return load_config("video_training", data_overrides(synthetic_roots) + list(extra))

    return make
