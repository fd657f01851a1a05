"""Launch handling and a 2-process gloo run that matches a single process with the same global batch."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rhmnet.engine.cli import parse_args
from rhmnet.engine.distributed import LaunchError, read_launch_env, resolve_device
from tests.engine.conftest import REPO, run_script, tiny_overrides

WORKER = "tests.engine.ddp_worker"  # run as a module from the repository root (which holds ``tests``)
LAUNCH_VARS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in LAUNCH_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_single_process_without_launcher(clean_env: pytest.MonkeyPatch) -> None:
    assert read_launch_env(None) == (0, 0, 1)


def test_torchrun_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RANK", "5")
    clean_env.setenv("LOCAL_RANK", "1")
    clean_env.setenv("WORLD_SIZE", "8")
    assert read_launch_env(None) == (5, 1, 8)  # global rank for the sampler, local rank for the GPU


def test_legacy_local_rank_argument(clean_env: pytest.MonkeyPatch) -> None:
    for argv in (["--local_rank", "1"], ["--local-rank=1"], ["--local_rank=1", "TRAIN.LR=1e-4"]):
        assert parse_args("video", "video_training", argv).local_rank == 1
    clean_env.setenv("WORLD_SIZE", "2")
    clean_env.setenv("RANK", "1")
    assert read_launch_env(1) == (1, 1, 2)
    clean_env.delenv("RANK")
    assert read_launch_env(1) == (1, 1, 2)  # single node, no RANK: the local rank is the rank


def test_inconsistent_environment_is_an_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("WORLD_SIZE", "2")
    with pytest.raises(LaunchError, match="RANK"):
        read_launch_env(None)
    clean_env.setenv("RANK", "2")
    with pytest.raises(LaunchError, match="outside"):
        read_launch_env(None)


def test_device_choice() -> None:
    assert resolve_device("cpu", 3) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device(None, 0) == torch.device("cpu")
        with pytest.raises(LaunchError, match="CUDA is not available"):
            resolve_device("cuda", 0)


def test_options_and_overrides_in_any_order() -> None:
    args = parse_args("pretrain", "pre_training", ["TRAIN.LR=1e-4", "--max_iters", "3", "TRAIN.EPOCH=2",
                                                   "--resume", "x.pth.tar"])
    assert args.overrides == ["TRAIN.LR=1e-4", "TRAIN.EPOCH=2"]
    assert (args.max_iters, args.resume, args.config) == (3, "x.pth.tar", "pre_training")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_legacy_launcher_runs_script(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    """``python -m torch.distributed.launch`` passes ``--local-rank=0`` to the script."""
    launcher = [sys.executable, "-m", "torch.distributed.launch", "--nproc_per_node", "1",
                "--master_port", str(_free_port())]
    args = ["--config", "small_synthetic", "--max_iters", "1", *tiny_overrides(synthetic_roots, tmp_path)]
    done = run_script("pretrain", args, launcher=launcher)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "pretrain_weights_small_synthetic" / "last_checkpoint.pth.tar").is_file()


def _run_worker(root: Path, out: Path, processes: int, accumulate: int | None = None) -> None:
    if processes == 1:
        command = [sys.executable, "-m", WORKER]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                   str(processes), "-m", WORKER]
    extra = [] if accumulate is None else [str(accumulate)]
    done = subprocess.run(command + [str(root), str(out), "4", *extra], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]


def _log(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "pretrain_weights_small_synthetic" / "train_log.jsonl").open()]


def test_two_gloo_processes_match_one(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    """Same global batch of 4: one process with 4 clips vs two processes with 2 each (see ddp_worker.py).

    Losses and the first step's gradients agree to float precision. AdamW turns the float noise of
    gradients that are zero in exact arithmetic (a bias before GroupNorm, attention key biases) into
    full-size steps, so the weights are compared element-wise with a tiny allowance for such elements.
    """
    root = synthetic_roots["davis"].parent
    one, two = tmp_path / "one", tmp_path / "two"
    _run_worker(root, one, 1)
    _run_worker(root, two, 2)
    _same_training(one, two)
    a, b = (torch.load(folder / "pretrain_weights_small_synthetic" / "pretrain_checkpoint_1.pth.tar", weights_only=True)
            for folder in (one, two))
    assert (a["train_state"]["world_size"], b["train_state"]["world_size"]) == (1, 2)


def _same_training(one: Path, two: Path) -> None:
    """Logged losses, LR, skip, first-step gradients and final weights of two runs agree (see the test above for
    the weight allowance)."""
    logs = _log(one), _log(two)
    assert [r["iteration"] for r in logs[0]] == [r["iteration"] for r in logs[1]] == [0, 1]
    for a, b in zip(*logs):
        for name in ("partial_ce", "smoothness", "consistency", "reliable_focal", "total"):
            assert a[name] == pytest.approx(b[name], rel=1e-5, abs=1e-8), name
        assert (a["lr"], a["skip"]) == (b["lr"], b["skip"])

    grads = [torch.load(folder / "first_grads.pt", weights_only=True) for folder in (one, two)]
    for name, g in grads[0].items():
        diff = (g - grads[1][name]).abs().max().item()
        assert diff <= 1e-4 * g.abs().max().item() + 1e-7, f"{name}: gradients differ by {diff:.3g}"

    ckpt = Path("pretrain_weights_small_synthetic") / "pretrain_checkpoint_1.pth.tar"
    a, b = (torch.load(folder / ckpt, weights_only=True) for folder in (one, two))
    assert a["iteration"] == b["iteration"] == 2
    differing = sum(int(((a["model"][k] - b["model"][k]).abs() > 1e-6).sum()) for k in a["model"])
    total = sum(v.numel() for v in a["model"].values())
    assert differing <= 1e-3 * total, f"{differing} of {total} weights differ by more than 1e-6"


def test_accumulation_matches_two_gloo_processes(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    """TRAIN.ACCUMULATE_STEPS: one process with 2 micro-batches of 2 clips per optimiser step equals two
    gloo processes with 2 clips each; the micro-batches hold different clips (see ddp_worker.py), so a
    missing 1/k loss scale, a step per micro-batch or a schedule counted in micro-batches would show."""
    root = synthetic_roots["davis"].parent
    one, two = tmp_path / "one_acc2", tmp_path / "two_acc1"
    _run_worker(root, one, 1, accumulate=2)
    _run_worker(root, two, 2, accumulate=1)
    _same_training(one, two)
    state = torch.load(one / "pretrain_weights_small_synthetic" / "pretrain_checkpoint_1.pth.tar", weights_only=True)
    assert state["train_state"]["iters_per_epoch"] == 2  # 8 clips / (2 clips x 2 micro-batches)
