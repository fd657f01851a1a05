"""Shared test fixtures: location of ../shared and a tiny model configuration."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rhmnet.dataprep import shared_dir
from rhmnet.dataprep.synthetic_videos import dataset_overrides  # noqa: F401 (used by the test packages)

REPO = Path(__file__).resolve().parent.parent
SHARED = shared_dir()


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` imported as module ``name`` (registered in ``sys.modules``, which its dataclasses
    need)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

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
def one_torch_thread():
    """Torch on one intra-op thread for the duration of a test: the tiny models gain nothing from more, and
    on a busy 2-core machine spinning OpenMP workers make each step many times slower. (Not autouse: the
    reference gradients depend on the thread count.)"""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def restore_tf32():
    """Put PyTorch's process-wide TF32 switches back after the test (``--no-tf32`` turns them off)."""
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def make_synthetic_roots(tmp_path_factory: pytest.TempPathFactory, **options) -> dict[str, Path]:
    """A synthetic DAVIS / YouTube-VOS / COCO set in a fresh temporary folder (``make_synthetic_dataset``)."""
    from rhmnet.dataprep.synthetic_videos import make_synthetic_dataset

    return make_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), seed=0, **options)


@pytest.fixture(scope="session")
def synthetic_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small synthetic set, generated once per session (read-only for the tests)."""
    return make_synthetic_roots(tmp_path_factory, num_train=5, num_val=2, size=(128, 128), frames=12)


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
