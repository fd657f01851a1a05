"""Device selection of the evaluation scripts."""

from __future__ import annotations

import argparse
import os

import pytest
import torch

from rhmnet.evaluation.common import add_model_arguments, select_device


@pytest.fixture
def restore_tf32():
    """Put PyTorch's TF32 switches back after the test."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_no_tf32_turns_tf32_off(restore_tf32: None) -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert parser.parse_args([]).tf32 is True
    args = parser.parse_args(["--no_tf32", "--device", "cpu"])
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    assert select_device(args.device, args.gpu, args.tf32) == torch.device("cpu")
    assert not torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32


def test_default_leaves_tf32_alone(restore_tf32: None) -> None:
    torch.backends.cudnn.allow_tf32 = True
    select_device("cpu")
    assert torch.backends.cudnn.allow_tf32


def test_speed_options_reach_the_segmenter(tiny_model) -> None:
    from rhmnet.config import ConfigError
    from rhmnet.evaluation.common import apply_threads, make_segmenter
    from rhmnet.inference import InferenceError

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    defaults = parser.parse_args([])
    assert (defaults.precision, defaults.compile, defaults.threads) == ("fp32", False, None)
    args = parser.parse_args(["--precision", "bf16", "--compile", "--threads", "1"])
    segmenter = make_segmenter(tiny_model, tiny_model.cfg, args.precision, args.compile)
    assert segmenter.autocast_dtype == torch.bfloat16 and segmenter._encode_fn is not tiny_model.encode
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "fp8"])
    with pytest.raises(InferenceError, match="fp16 needs a CUDA device"):
        make_segmenter(tiny_model, tiny_model.cfg, "fp16")
    saved = torch.get_num_threads()
    try:
        assert apply_threads(1) == 1 and torch.get_num_threads() == 1
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        assert 1 <= apply_threads(None) <= cores
        with pytest.raises(ConfigError, match="--threads"):
            apply_threads(0)
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize(("load", "expected"), [(0.0, 2), (0.3, 2), (1.2, 1), (10.0, 1)])
def test_auto_threads_leaves_busy_cores(monkeypatch: pytest.MonkeyPatch, load: float, expected: int) -> None:
    from rhmnet.evaluation import common

    monkeypatch.setattr(common.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(common.os, "getloadavg", lambda: (load, load, load))
    assert common.auto_threads() == expected
