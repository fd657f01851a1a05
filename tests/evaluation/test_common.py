"""The evaluation runners' model options reach the runtime: --no-tf32, --precision, --compile, --threads."""

from __future__ import annotations

import argparse
import os

import pytest
import torch

from rhmnet.evaluation.common import add_model_arguments
from rhmnet.runtime import apply_threads, make_segmenter, select_device


def test_no_tf32_turns_tf32_off(restore_tf32: None) -> None:
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert parser.parse_args([]).tf32 is True
    args = parser.parse_args(["--no-tf32", "--device", "cpu"])
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = True
    assert select_device(args.device, args.gpu, args.tf32) == torch.device("cpu")
    assert not torch.backends.cudnn.allow_tf32
    assert not torch.backends.cuda.matmul.allow_tf32


def test_speed_options_reach_the_segmenter(tiny_model) -> None:
    from rhmnet.config import ConfigError
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
        assert apply_threads(None) == 1 and torch.get_num_threads() == 1  # the default leaves torch's count
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        assert 1 <= apply_threads("auto") <= cores
        for bad in (0, "2", "many"):
            with pytest.raises(ConfigError, match="--threads"):
                apply_threads(bad)
    finally:
        torch.set_num_threads(saved)
    assert parser.parse_args(["--threads", "auto"]).threads == "auto"
    assert parser.parse_args(["--threads", "3"]).threads == 3
    for bad in ("0", "-1", "x"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--threads", bad])
