"""Training faults: SIGTERM/SIGINT, an earlier run in the folder, stale temporary files, the replayed log,
checkpoint permissions and an iteration count beyond the schedule."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest
import torch

from rhmnet.config import ConfigError
from rhmnet.engine import DistContext, RunOptions, Trainer
from rhmnet.engine.checkpoints import LAST_CHECKPOINT, LOG_FILE, prepare_checkpoint_dir
from rhmnet.engine.trainer import TrainingInterrupted, resume_command
from rhmnet.model_io import CheckpointError, atomic_save
from tests.engine.conftest import tiny_config

CPU = DistContext()


def _log_iterations(folder: Path) -> list[int]:
    return [json.loads(line)["iteration"] for line in (folder / LOG_FILE).read_text().splitlines()]


@pytest.mark.parametrize("signum", [signal.SIGTERM])
def test_signal_writes_a_checkpoint_that_resumes_exactly(synthetic_roots: dict[str, Path], tmp_path: Path,
                                                         signum: int) -> None:
    """A signal during iteration 3 (0-based) finishes it, writes last_checkpoint at iteration 4 (mode 0644
    under umask 022) and raises with the resume command; resuming ends equal to an uninterrupted run, and
    the log holds every iteration once even when it had lines beyond the checkpoint (a later kill)."""
    extra = ["TRAIN.LR_DECREASE_STEP=2", "TRAIN.SKIP_INCREASE_STEP=2", "TRAIN.MAX_SKIP=3"]
    full = Trainer(tiny_config(synthetic_roots, tmp_path / "full", *extra), "video", CPU, RunOptions(progress=False))
    full.fit()

    cfg = tiny_config(synthetic_roots, tmp_path / "split", *extra)
    trainer = Trainer(cfg, "video", CPU,
                      RunOptions(progress=False, command=["train.py", "--config", "small_synthetic"]))
    step = trainer.train_step

    def signalled_step(batch, epoch):
        if trainer.state.iteration == 3:
            os.kill(os.getpid(), signum)
        return step(batch, epoch)

    trainer.train_step = signalled_step
    old_umask = os.umask(0o022)
    try:
        with pytest.raises(TrainingInterrupted) as info:
            trainer.fit()
    finally:
        os.umask(old_umask)
    assert signal.getsignal(signum) is not None and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    folder = tmp_path / "split" / "pretrain_weights_small_synthetic"
    last = folder / LAST_CHECKPOINT
    assert info.value.iteration == 4 and info.value.checkpoint == last and info.value.exit_code == 128 + signum
    assert f"python train.py --config small_synthetic --resume {last}" in str(info.value)
    assert torch.load(last, weights_only=True)["iteration"] == 4
    assert stat.S_IMODE(last.stat().st_mode) == 0o644
    assert _log_iterations(folder) == [0, 1, 2, 3]
    with (folder / LOG_FILE).open("a") as fh:  # as if a later kill happened after two more iterations
        fh.write(json.dumps({"iteration": 4}) + "\n" + json.dumps({"iteration": 5}) + "\n{\"iterat")

    resumed = Trainer(tiny_config(synthetic_roots, tmp_path / "split", *extra), "video", CPU,
                      RunOptions(progress=False, resume=str(last)))
    resumed.fit()
    assert resumed.state.iteration == full.state.iteration == 6
    for name, value in full.net.state_dict().items():
        assert torch.equal(value, resumed.net.state_dict()[name]), name
    assert _log_iterations(folder) == list(range(6))


def test_resume_command_replaces_resume_and_overwrite() -> None:
    argv = ["train_script_video_training.py", "--config", "small_synthetic", "--resume", "old.pth", "--overwrite",
            "X=1"]
    assert resume_command(Path("ck/last.pth.tar"), argv) == (
        "python train_script_video_training.py --config small_synthetic X=1 --resume ck/last.pth.tar")
    assert resume_command(Path("a b.pth"), None) == "--resume 'a b.pth'"


def test_earlier_run_is_not_overwritten_without_a_flag(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    cfg = tiny_config(synthetic_roots, tmp_path)
    folder = prepare_checkpoint_dir(cfg, "video")
    old = folder / "pretrain_checkpoint_1.pth.tar"
    old.write_bytes(b"earlier run")
    (folder / LOG_FILE).write_text(json.dumps({"iteration": 0}) + "\n")
    with pytest.raises(CheckpointError, match=r"earlier run.*--resume .*pretrain_checkpoint_1.*--overwrite"):
        Trainer(tiny_config(synthetic_roots, tmp_path), "video", CPU, RunOptions(progress=False))
    assert old.read_bytes() == b"earlier run"
    Trainer(tiny_config(synthetic_roots, tmp_path), "video", CPU, RunOptions(progress=False, overwrite=True))
    assert not old.exists() and not (folder / LOG_FILE).exists()


def test_stale_temporary_files_are_removed(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    cfg = tiny_config(synthetic_roots, tmp_path)
    folder = tmp_path / "pretrain_weights_small_synthetic"
    folder.mkdir(parents=True)
    stale = folder / ".last_checkpoint.pth.tar.k3j2h1.tmp"
    stale.write_bytes(b"\0" * 100)
    keep = folder / "notes.tmp"
    keep.write_text("not ours")
    prepare_checkpoint_dir(cfg, "video")
    assert not stale.exists() and keep.exists()


def test_atomic_save_gives_readable_files(tmp_path: Path) -> None:
    old_umask = os.umask(0o027)
    try:
        atomic_save({"x": torch.zeros(1)}, tmp_path / "a.pt")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "a.pt").stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.pt"]


def test_more_iterations_than_the_schedule(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    """3 iterations per epoch x 2 epochs = 6: asking for 10 is an error naming both numbers, or, with
    extend_schedule, raises TRAIN.EPOCH to 4 (the demo's --iters)."""
    with pytest.raises(ConfigError, match=r"10 iterations requested.*has 6 .*TRAIN.EPOCH=2.*TRAIN.EPOCH=4"):
        Trainer(tiny_config(synthetic_roots, tmp_path), "video", CPU, RunOptions(progress=False, max_iters=10))
    trainer = Trainer(tiny_config(synthetic_roots, tmp_path), "video", CPU,
                      RunOptions(progress=False, max_iters=10, extend_schedule=True))
    assert trainer.total_iters == 12 and trainer.cfg.TRAIN.EPOCH == 4


def test_cli_reports_the_interruption(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The training scripts print the resume command and exit 128 + the signal number."""
    from rhmnet.engine import cli

    def interrupted(cfg, stage, ctx, options):
        assert options.command is not None and options.overwrite
        raise TrainingInterrupted(signal.SIGTERM, tmp_path / LAST_CHECKPOINT, 7,
                                  resume_command(tmp_path / LAST_CHECKPOINT, options.command))

    monkeypatch.setattr(cli, "run_training", interrupted)
    monkeypatch.setattr(cli, "setup_logging", lambda ctx: None)  # keep the test session's logging as it is
    monkeypatch.setattr("sys.argv", ["train_script_video_training.py", "--config", "small_synthetic", "--overwrite"])
    status = cli.cli("video", "video_training", ["--config", "small_synthetic", "--overwrite", "--device", "cpu"])
    assert status == 143
    err = capsys.readouterr().err
    assert "SIGTERM received: stopped after iteration 7" in err
    resume = tmp_path / LAST_CHECKPOINT
    assert f"python train_script_video_training.py --config small_synthetic --resume {resume}" in err
