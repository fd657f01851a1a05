"""scripts/learning_curve.py: a budgeted run's points, the time-limit stop and re-scoring (no timing asserted)."""

from __future__ import annotations

import ast
import json

import pytest

from rhmnet import demo, load_model
from rhmnet.config import load_config
from tests.conftest import REPO, SHARED, load_script

SMALL = [
    "--threads", "2", "--points", "2", "TRAIN.BATCH_SIZE=2", "DATASETS.CROP_SIZE=[64,64]",
    "DATASETS.RESIZE_SHORT_SIDE=96", "DATASETS.MINIMUM_AREA=20", "DATASETS.DILATE_KERNEL_SIZE=7",
    "TEST.INPUT_SHORT_SIDE=96",
]  # fmt: skip


@pytest.fixture(scope="module")
def curve():
    return load_script("learning_curve")


@pytest.fixture(scope="module")
def prepared(curve, tmp_path_factory):
    """Training data of the smallest kind (synthetic only), prepared once."""
    out = tmp_path_factory.mktemp("curve-data")
    args = ["--prepare-only", "--out", str(out), "--num-train", "1", "--num-val", "1", "--shared", str(out / "none")]
    assert curve.main(args) == 0
    return out / "data"


def test_uses_only_the_demos_public_api() -> None:
    """The script reaches the demo through names ``rhmnet.demo`` exports (its public API), nothing else."""
    tree = ast.parse((REPO / "scripts" / "learning_curve.py").read_text())
    used = {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "demo"}
    assert used and used <= set(demo.__all__)
    assert not [node.module for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rhmnet.demo.")]


def test_steady_rate_skips_the_start(curve, tmp_path) -> None:
    times = [0.0, 5.0, 5.5, 6.0, 6.5, 7.0]  # a slow first iteration, then 2 per second
    log = tmp_path / "train_log.jsonl"
    log.write_text("".join(json.dumps({"iteration": i, "time": t}) + "\n" for i, t in enumerate(times)))
    assert curve.steady_rate(log) == pytest.approx(2.0)
    log.write_text(log.read_text().splitlines()[0] + "\n")
    with pytest.raises(RuntimeError, match="calibrate-seconds"):
        curve.steady_rate(log)


def test_schedule_fills_the_budget(curve) -> None:
    args = curve.build_parser().parse_args(["--minutes", "8", "--points", "8", "--fill", "0.9"])
    no_warmup = load_config("lite", ["DATASETS.WARMUP_EPOCHS=0"])
    assert curve.sized_schedule(10.0, args, no_warmup) == ["TRAIN.EPOCH=8", "TRAIN.SAMPLES_PER_EPOCH=2160"]  # 540 steps
    warmup = load_config("lite", ["DATASETS.WARMUP_EPOCHS=4", "DATASETS.WARMUP_SAMPLE_PROBABILITY=[1,0]",
                                  "TRAIN.EPOCH=10"])  # 4 of 10 epochs -> 3.2 of 8
    assert curve.sized_schedule(10.0, args, warmup)[2:] == ["DATASETS.WARMUP_EPOCHS=3"]


def test_budgeted_run_keeps_each_epoch_and_rescoring_agrees(curve, prepared, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(curve, "calibrate", lambda args, data, out: 0.1)  # 1 iteration per epoch
    out = tmp_path / "run"
    run = ["--out", str(out), "--data", str(prepared), "--shared", str(SHARED), "--minutes", "0.2", *SMALL]
    assert curve.main(run) == 0
    saved = json.loads((out / "curve.json").read_text())
    points = saved["points"]
    assert [p["iteration"] for p in points] == [1, 2]
    assert 0 < points[0]["minutes"] < points[1]["minutes"]
    assert all(0.0 <= p["synthetic"] <= 1.0 for p in points)
    assert load_model(out / "points" / "point-2.pth.tar").cfg.MODEL.BACKBONE.NAME == "efficientnet_lite0"
    if (SHARED / "data" / "davis-sample").is_dir():
        assert all(0.0 <= p["davis_val"] <= 1.0 for p in points)
    assert curve.main(["--evaluate", str(out), "--data", str(prepared), "--shared", str(SHARED), "--threads", "2"]) == 0
    rescored = json.loads((out / "curve.json").read_text())["points"]
    assert [(p["synthetic"], p["davis_val"]) for p in rescored] == [(p["synthetic"], p["davis_val"]) for p in points]


def test_time_limit_stops_an_overlong_schedule(curve, prepared, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(curve, "calibrate", lambda args, data, out: 1000.0)  # far more than this machine does
    out = tmp_path / "run"
    assert curve.main(["--out", str(out), "--data", str(prepared), "--no-scoring", "--minutes", "0.1", *SMALL]) == 0
    saved = json.loads((out / "curve.json").read_text())
    schedule = dict(item.split("=") for item in saved["schedule"].split())
    per_epoch = int(schedule["TRAIN.SAMPLES_PER_EPOCH"]) // 2
    (point,) = saved["points"]  # the stop's checkpoint, before the first epoch ended
    assert 0 < point["iteration"] < per_epoch and point["synthetic"] is None
    assert (out / "points" / "point-1.pth.tar").is_file()


def test_rescoring_elsewhere_names_the_missing_data(curve, tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    points = [{"index": 1, "iteration": 5, "minutes": 0.5, "davis_val": None, "synthetic": None}]
    (run / "curve.json").write_text(json.dumps({"points": points, "held-out synthetic root": "/elsewhere/DAVIS"}))
    with pytest.raises(SystemExit, match="/elsewhere/DAVIS is not on this machine; pass --data"):
        curve.main(["--evaluate", str(run)])


@pytest.fixture
def held_out_run(curve, tmp_path):
    """A DAVIS-layout stand-in of ten 240x320 sequences (two held out) and its curve options."""
    from rhmnet.dataprep.synthetic_videos import make_synthetic_dataset

    real = make_synthetic_dataset(tmp_path / "real", seed=1, num_train=10, num_val=1, size=(240, 320), frames=4,
                                  layouts=("davis",))["davis"]
    return real, ["--davis", str(real), "--num-train", "1", "--num-val", "1", "--shared", str(tmp_path / "none")]


def test_holdout_refuses_data_that_trained_on_the_held_out_part(curve, held_out_run, tmp_path) -> None:
    from rhmnet.data.io import DatasetError

    _, common = held_out_run
    assert curve.main(["--prepare-only", "--out", str(tmp_path / "all"), *common]) == 0
    with pytest.raises(DatasetError, match="holds held-out sequences"):
        curve.main(["--out", str(tmp_path / "run"), "--data", str(tmp_path / "all" / "data"), "--holdout", *common,
                    *SMALL])


@pytest.mark.slow
def test_holdout_curve_scores_the_unseen_sets(curve, held_out_run, tmp_path) -> None:
    """--holdout: a point is scored on the held-out sequences and their multi-object videos, the baselines
    once, and the table gets a column per set."""
    from rhmnet import build_model, save_model

    real, common = held_out_run
    assert curve.main(["--prepare-only", "--holdout", "--out", str(tmp_path / "held"), *common]) == 0
    run = tmp_path / "run"
    cfg = load_config("lite", ["MODEL.BACKBONE.PRETRAINED=false", "TEST.INPUT_SHORT_SIDE=96"])
    save_model(build_model(cfg), run / "points" / "point-1.pth.tar")
    args = curve.build_parser().parse_args(["--holdout", *common])
    points = [curve.Point(1, 0, 0.0)]
    data = demo.TrainingData.existing(tmp_path / "held" / "data")
    baselines = curve.score_points(points, run, args, data.synthetic_davis)
    sets = [f"held-out {real.name}", f"held-out multi-object {real.name}"]
    assert sorted(points[0].held_out) == sets and all(0 <= v <= 1 for v in points[0].held_out.values())
    assert sorted(baselines) == [f"baselines on {name}" for name in sets]
    assert f"| {sets[0]} J&F |" in curve.report(points, baselines)
