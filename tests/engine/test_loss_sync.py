"""Loss terms leave the device in groups (one all-reduce per group) with records identical to checking
every iteration, and a non-finite loss is still named by its own iteration."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rhmnet.engine.trainer as trainer_module
from rhmnet.engine import DistContext, NonFiniteLossError, RunOptions, Trainer
from tests.engine.conftest import poison_loss, tiny_config

REAL_ALL_REDUCE = trainer_module.all_reduce_mean
EXTRA = ["TRAIN.EPOCH=1", "TRAIN.LOG_INTERVAL=4", "TRAIN.SAMPLES_PER_EPOCH=10"]  # 5 iterations


def _run(roots: dict[str, Path], folder: Path, interval: int | None, monkeypatch: pytest.MonkeyPatch):
    real, calls = REAL_ALL_REDUCE, []

    def counting(tensor, ctx):
        calls.append(tuple(tensor.shape))
        return real(tensor, ctx)

    monkeypatch.setattr(trainer_module, "all_reduce_mean", counting)
    trainer = Trainer(tiny_config(roots, folder, *EXTRA), "video", DistContext(),
                      RunOptions(progress=False, shuffle=False, loss_sync_interval=interval))
    result = trainer.fit()
    log = [json.loads(line) for line in (folder / "pretrain_weights_small_synthetic" / "train_log.jsonl").open()]
    return result, log, calls


def test_grouped_loss_sync_logs_the_same_records(synthetic_roots: dict[str, Path], tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    every, every_log, every_calls = _run(synthetic_roots, tmp_path / "a", None, monkeypatch)  # CPU default: 1
    grouped, grouped_log, grouped_calls = _run(synthetic_roots, tmp_path / "b", 100, monkeypatch)
    assert len(every.history) == 5 and every.history == grouped.history
    strip = [{k: v for k, v in r.items() if k != "time"} for r in every_log]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in grouped_log]
    assert [r["iteration"] for r in grouped_log] == [0, 1, 2, 3, 4]
    assert len(every_calls) == 5
    # groups: iteration 0 (log step), 1..4 (log step at 4); the end-of-epoch checkpoint finds nothing left.
    # One all-reduce per group: its iterations x 5 loss terms, plus the flag that a process was signalled.
    assert grouped_calls == [(1 * 5 + 1,), (4 * 5 + 1,)]


def test_grouped_sync_names_the_first_bad_iteration(synthetic_roots: dict[str, Path], tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    poison_loss(monkeypatch, "smoothness", float("nan"))
    trainer = Trainer(tiny_config(synthetic_roots, tmp_path, *EXTRA), "video", DistContext(),
                      RunOptions(progress=False, loss_sync_interval=100))
    expected = r"iteration 2 \(epoch 0, batch 2\): smoothness, total not finite .*checked at iteration 4"
    with pytest.raises(NonFiniteLossError, match=expected):
        trainer.fit()
    assert trainer.state.iteration == 4  # checked at the log step 4, before its step
    assert not list((tmp_path / "pretrain_weights_small_synthetic").glob("*checkpoint*"))
