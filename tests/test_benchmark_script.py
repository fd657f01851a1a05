"""scripts/benchmark_model.py and scripts/benchmark_paired.py, and the frames and machine line they share
(rhmnet/tools/benchmarking.py): tables and frames (no timing is asserted)."""

from __future__ import annotations

import subprocess

import pytest
import torch

from rhmnet.tools.benchmarking import machine, synthetic_video
from tests.conftest import load_script


@pytest.fixture
def benchmark_module():
    return load_script("benchmark_model")


def test_table_names_the_machine_and_no_foreign_ratio(benchmark_module, capsys) -> None:
    rows = [{"objects": 1, "ms": 500.0, "fps": 2.0, "full_ms": 554.0, "peak_mb": 1200.0}]
    benchmark_module.print_table(rows, "title", machine())
    out = capsys.readouterr().out
    assert "usable cores" in out and f"torch {torch.__version__}" in out
    assert "authors" not in out and "speed-up" not in out  # no ratio against figures from another machine
    assert out.splitlines()[3].split()[:2] == ["1", "500.0"]


def test_synthetic_video_has_one_stroke_per_object() -> None:
    video, scribble = synthetic_video(frames=2, objects=3, height=480, width=854)
    assert video.shape == (2, 480, 854, 3)
    assert set(scribble.ravel().tolist()) == {0, 1, 2, 3, 11}


def test_paired_benchmark_runs_old_and_new_side_by_side(capsys) -> None:
    """Both workers on a tiny model and small synthetic frames; HEAD against this tree: same outputs."""
    from tests.conftest import TINY_OVERRIDES

    paired = load_script("benchmark_paired")
    if subprocess.run(["git", "-C", str(paired.ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout: no baseline commit to export")
    paired.main(["--baseline", "HEAD", "--synthetic", "--size", "256x240", "--frames", "3", "--objects", "2",
                 "--threads", "1", "--check", *TINY_OVERRIDES])
    out = capsys.readouterr().out
    assert "usable cores" in out and "baseline" in out
    row = [line for line in out.splitlines() if line.startswith("| 2 | 1 |")]
    assert len(row) == 1
    cells = [c.strip() for c in row[0].strip("|").split("|")]
    assert float(cells[-2]) < 1e-5 and cells[-1] == "0"  # probabilities and labels agree


def test_paired_benchmark_rejects_an_unknown_baseline() -> None:
    paired = load_script("benchmark_paired")
    with pytest.raises(SystemExit, match="not a commit"):
        paired.main(["--baseline", "no-such-ref-0123", "--synthetic", "--frames", "2"])


def test_davis_scribble_strokes_the_object_and_keeps_background_away(tmp_path) -> None:
    import cv2
    import numpy as np

    paired = load_script("benchmark_paired")
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i:05d}.jpg"), np.full((480, 854, 3), 100 + i, np.uint8))
    mask = np.zeros((480, 854), np.uint8)
    mask[100:300, 300:600] = 1
    cv2.imwrite(str(tmp_path / "mask.png"), mask)
    video, scribble = paired.davis_video(frames, tmp_path / "mask.png", frames=5, objects=2)
    assert video.shape == (2, 480, 854, 3)
    assert (scribble == 1).any() and np.all(mask[scribble == 1] == 1)
    assert (scribble == 2).any() and (scribble == 11).any()
    assert not mask[scribble == 11].any()
