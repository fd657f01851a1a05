"""scripts/benchmark_model.py: the table's ratio to the authors' figures (no timing is asserted)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import load_script


@pytest.fixture
def benchmark_module():
    return load_script("benchmark_model")


def test_table_shows_the_ratio_to_the_authors(benchmark_module, capsys) -> None:
    rows = [{"objects": 1, "ms": 500.0, "fps": 2.0, "full_ms": 554.0, "peak_mb": 1200.0},
            {"objects": 4, "ms": 900.0, "fps": 1.1, "full_ms": 950.0, "peak_mb": 1300.0}]  # fmt: skip
    benchmark_module.print_table(rows, torch.device("cpu"), "title", paper_model=True)
    out = capsys.readouterr().out
    assert "1662.0" in out and f"{1662 / 554:.2f}x" in out  # objects 1: authors' 1662 ms
    assert out.splitlines()[3].split()[-1] == "-"  # no authors' figure for 4 objects
    assert "project's 2-core CPU" in out
    benchmark_module.print_table(rows[:1], torch.device("cuda"), "title", paper_model=True)
    assert f"{15.6 / 554:.2f}x" in capsys.readouterr().out
    benchmark_module.print_table(rows[:1], torch.device("cpu"), "title", paper_model=False)  # e.g. RHMNet-Lite
    out = capsys.readouterr().out
    assert "1662" not in out and out.splitlines()[2].split()[-1] == "-"


def test_only_the_papers_network_is_compared_with_the_authors(benchmark_module) -> None:
    import rhmnet

    assert benchmark_module.is_paper_model(rhmnet.load_config("video_training"))
    assert not benchmark_module.is_paper_model(rhmnet.load_config("lite"))
    assert not benchmark_module.is_paper_model(rhmnet.load_config("video_training", ["TEST.INPUT_SHORT_SIDE=256"]))


def test_synthetic_video_has_one_stroke_per_object(benchmark_module) -> None:
    video, scribble = benchmark_module.synthetic_video(frames=2, objects=3, height=480, width=854)
    assert video.shape == (2, 480, 854, 3)
    assert set(scribble.ravel().tolist()) == {0, 1, 2, 3, 11}
