"""The CPU demo: a smoke run in the default suite, the full learning claim behind the `slow` marker."""

from __future__ import annotations

import json

import pytest

from rhmnet import demo
from tests.conftest import SHARED


def test_demo_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    status = demo.main(
        ["--out", str(out), "--iters", "2", "--num-train", "2", "--num-val", "1", "--davis-frames", "2",
         "--shared", str(SHARED), "TRAIN.SAMPLES_PER_EPOCH=4", "TRAIN.BATCH_SIZE=2", "TRAIN.EPOCH=1"]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "held-out synthetic J&F" in printed
    rows = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in rows][:2] == ["RHMNet (demo model)", "baseline: dilated scribble"]
    assert all(0.0 <= r["jf"] <= 1.0 for r in rows)
    assert (out / "results.md").is_file()
    val = sorted((out / "synthetic" / "rhmnet").iterdir())
    assert len(val) == 1 and len(list(val[0].glob("*.png"))) == 16
    assert len(list((out / "overlays").glob("synthetic-*.gif"))) == 1
    if (SHARED / "data" / "davis-sample").is_dir():
        assert len(list((out / "overlays").glob("davis-*.gif"))) == 2


@pytest.mark.slow
def test_demo_learns(tmp_path):
    """The README's claim: the default demo reaches J&F >= 0.70 on held-out synthetic videos, above the
    dilated-scribble baseline."""
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--shared", str(SHARED)]) == 0
    rows = {r["name"]: r for r in json.loads((out / "results.json").read_text())}
    model, baseline = rows["RHMNet (demo model)"], rows["baseline: dilated scribble"]
    assert model["jf"] >= 0.70
    assert model["jf"] > baseline["jf"] + 0.1
