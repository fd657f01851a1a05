"""rhmnet.runtime: device selection (TF32 switches, with their log line) and torch's CPU thread count."""

from __future__ import annotations

import logging

import pytest
import torch

from rhmnet import runtime
from rhmnet.runtime import apply_threads, select_device


def test_default_leaves_tf32_alone(restore_tf32: None) -> None:
    torch.backends.cudnn.allow_tf32 = True
    select_device("cpu")
    assert torch.backends.cudnn.allow_tf32


@pytest.fixture
def runtime_log() -> list[str]:
    """Messages of the ``rhmnet.runtime`` logger at INFO and above (a handler of its own: the CLIs' logging
    set-up may stop ``rhmnet`` records from reaching the root logger)."""
    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("rhmnet.runtime")
    saved_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield messages
    logger.removeHandler(handler)
    logger.setLevel(saved_level)


def test_no_tf32_is_logged_once_with_what_changed(restore_tf32: None, runtime_log: list[str]) -> None:
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cuda.matmul.allow_tf32 = False
    select_device("cpu", tf32=False)
    select_device("cpu", tf32=False)  # nothing left to change: no second line
    assert len(runtime_log) == 1 and "--no-tf32" in runtime_log[0], runtime_log
    assert "torch.backends.cudnn.allow_tf32" in runtime_log[0] and "matmul" not in runtime_log[0]
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


def test_select_device_without_no_tf32_logs_nothing(restore_tf32: None, runtime_log: list[str]) -> None:
    torch.backends.cudnn.allow_tf32 = True
    select_device("cpu")
    assert runtime_log == []


def test_apply_threads_logs_a_change_of_the_thread_count(runtime_log: list[str]) -> None:
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    try:
        assert apply_threads(other) == other == torch.get_num_threads()
        assert len(runtime_log) == 1 and f"{before} -> {other}" in runtime_log[0], runtime_log
        apply_threads(other)  # nothing to change: no second line
        assert len(runtime_log) == 1
    finally:
        torch.set_num_threads(before)


def test_default_threads_ignore_the_machines_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --threads the count does not depend on other processes (a seeded run is reproducible);
    only --threads auto reads the load."""

    def busy(*_args: object) -> float:
        raise AssertionError("the load was read without --threads auto")

    monkeypatch.setattr(runtime, "busy_cores_now", busy)
    monkeypatch.setattr(runtime.os, "getloadavg", busy)
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert runtime.apply_threads(None) == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize(("load", "expected"), [(0.0, 2), (0.3, 2), (1.2, 1), (10.0, 1)])
def test_auto_threads_leaves_busy_cores(monkeypatch: pytest.MonkeyPatch, load: float, expected: int) -> None:
    """Without per-core times (not Linux) the 1-minute load average decides."""
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(runtime, "read_cpu_times", lambda: {})
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (load, load, load))
    assert runtime.auto_threads() == expected


@pytest.mark.parametrize(("busy_ticks", "expected"), [((0, 0), 2), ((10, 20), 2), ((80, 70), 1), ((100, 100), 1)])
def test_auto_threads_reads_the_cores_busy_now(
    monkeypatch: pytest.MonkeyPatch, busy_ticks: tuple[int, int], expected: int
) -> None:
    """On Linux the cores' busy time over a short window decides, whatever the load average says (a job
    that has just finished keeps the 1-minute average high for a minute)."""
    snapshots = iter([
        {0: (1000, 500), 1: (1000, 500), 2: (50, 0)},  # core 2 is outside this process's affinity
        {0: (1100, 600 - busy_ticks[0]), 1: (1100, 600 - busy_ticks[1]), 2: (150, 0)},
    ])
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    monkeypatch.setattr(runtime, "read_cpu_times", lambda: next(snapshots))
    monkeypatch.setattr(runtime.time, "sleep", lambda _seconds: None)
    monkeypatch.setattr(runtime.os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    assert runtime.auto_threads() == expected


def test_cpu_times_parse_proc_stat(tmp_path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  9 9 9 9 9 9 9 9 0 0\ncpu0 10 1 5 100 4 0 2 0 0 0\ncpu1 1 0 1 7 0 0 0 0 0 0\nintr 5\n")
    assert runtime.read_cpu_times(str(stat)) == {0: (122, 104), 1: (9, 7)}
    assert runtime.read_cpu_times(str(tmp_path / "missing")) == {}


def test_demo_threads_default_is_deterministic_and_auto_is_opt_in() -> None:
    from rhmnet.demo import build_parser

    parser = build_parser()
    assert parser.parse_args([]).threads is None  # torch's own count, not the machine's load
    assert parser.parse_args(["--threads", "auto"]).threads == "auto"
    assert parser.parse_args(["--threads", "1"]).threads == 1
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])
