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


def test_default_threads_ignore_the_machines_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --threads the count does not depend on other processes (a seeded run is reproducible);
    only --threads auto reads the load."""
    from rhmnet.evaluation import common

    def busy(*_args: object) -> float:
        raise AssertionError("the load was read without --threads auto")

    monkeypatch.setattr(common, "busy_cores_now", busy)
    monkeypatch.setattr(common.os, "getloadavg", busy)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert common.apply_threads(None) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize(("load", "expected"), [(0.0, 2), (0.3, 2), (1.2, 1), (10.0, 1)])
def test_auto_threads_leaves_busy_cores(monkeypatch: pytest.MonkeyPatch, load: float, expected: int) -> None:
    """Without per-core times (not Linux) the 1-minute load average decides."""
    from rhmnet.evaluation import common

    monkeypatch.setattr(common.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(common, "read_cpu_times", lambda: {})
    monkeypatch.setattr(common.os, "getloadavg", lambda: (load, load, load))
    assert common.auto_threads() == expected


@pytest.mark.parametrize(("busy_ticks", "expected"), [((0, 0), 2), ((10, 20), 2), ((80, 70), 1), ((100, 100), 1)])
def test_auto_threads_reads_the_cores_busy_now(
    monkeypatch: pytest.MonkeyPatch, busy_ticks: tuple[int, int], expected: int
) -> None:
    """On Linux the cores' busy time over a short window decides, whatever the load average says (a job
    that has just finished keeps the 1-minute average high for a minute)."""
    from rhmnet.evaluation import common

    snapshots = iter([
        {0: (1000, 500), 1: (1000, 500), 2: (50, 0)},  # core 2 is outside this process's affinity
        {0: (1100, 600 - busy_ticks[0]), 1: (1100, 600 - busy_ticks[1]), 2: (150, 0)},
    ])
    monkeypatch.setattr(common.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(common, "read_cpu_times", lambda: next(snapshots))
    monkeypatch.setattr(common.time, "sleep", lambda _seconds: None)
    monkeypatch.setattr(common.os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    assert common.auto_threads() == expected


def test_cpu_times_parse_proc_stat(tmp_path) -> None:
    from rhmnet.evaluation.common import read_cpu_times

    stat = tmp_path / "stat"
    stat.write_text("cpu  9 9 9 9 9 9 9 9 0 0\ncpu0 10 1 5 100 4 0 2 0 0 0\ncpu1 1 0 1 7 0 0 0 0 0 0\nintr 5\n")
    assert read_cpu_times(str(stat)) == {0: (122, 104), 1: (9, 7)}
    assert read_cpu_times(str(tmp_path / "missing")) == {}


def test_demo_threads_default_is_deterministic_and_auto_is_opt_in() -> None:
    from rhmnet.demo import build_parser

    parser = build_parser()
    assert parser.parse_args([]).threads is None  # torch's own count, not the machine's load
    assert parser.parse_args(["--threads", "auto"]).threads == "auto"
    assert parser.parse_args(["--threads", "1"]).threads == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])
