"""The CPU demo: a smoke run in the default suite, the full learning claim behind the `slow` marker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rhmnet
from rhmnet import demo, load_model
from rhmnet.data.io import read_image_set
from rhmnet.dataprep.synthetic_videos import make_synthetic_dataset
from tests.conftest import SHARED

SMALL = [
    "TRAIN.SAMPLES_PER_EPOCH=4",
    "TRAIN.BATCH_SIZE=2",
    "TRAIN.EPOCH=1",
    "DATASETS.CROP_SIZE=[64,64]",
    "DATASETS.RESIZE_SHORT_SIDE=96",
    "DATASETS.DILATE_KERNEL_SIZE=7",
    "DATASETS.MINIMUM_AREA=20",
    "TEST.INPUT_SHORT_SIDE=96",
]
REAL_VIDEO_REASON = "not met reliably on the CPU: it depends on seed and thread count (docs/measurements.md, The demo)"
UNSEEN_VIDEO_REASON = "not met on every seed (docs/measurements.md, Held-out validation)"


def test_demo_runs_end_to_end(tmp_path, capsys):
    real = make_synthetic_dataset(tmp_path / "real", seed=1, num_train=2, num_val=1, size=(96, 128), frames=4,
                                  layouts=("davis",))["davis"]  # stands in for a real DAVIS-layout root
    out = tmp_path / "demo"
    status = demo.main(
        ["--out", str(out), "--iters", "2", "--num-train", "2", "--num-val", "1", "--davis-frames", "2",
         "--davis", str(real), "--shared", str(SHARED), *SMALL]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert str(out) in printed
    report = json.loads((out / "results.json").read_text())
    rows = [(r["evaluated_on"], r["name"]) for r in report["rows"]]
    assert rows == [(demo.SYNTHETIC_SET, name) for name in (demo.MODEL_ROW, demo.DILATED_ROW, demo.KNN_ROW)]
    assert all(0.0 <= r["jf"] <= 1.0 for r in report["rows"])
    assert set(report["phases_seconds"]) >= {"data", "train", "evaluate synthetic"}
    assert report["iterations"] == 2 and report["training_roots"] == [str(real.resolve())]
    prepared = out / "data" / "davis-train"
    assert (prepared / "ImageSets" / "2017" / "train.txt").read_text().split() == ["DAVIS-synth-000", "DAVIS-synth-001"]
    assert len(list((prepared / "train_scribbles" / "DAVIS-synth-000").glob("*.bmp"))) == 4
    assert (out / "results.md").is_file()
    model = load_model(out / "model.pth.tar")
    assert model.cfg.MODEL.BACKBONE.NAME == "efficientnet_lite0"
    for method in ("rhmnet", "dilated", "knn"):
        val = sorted((out / "synthetic" / method).iterdir())
        assert len(val) == 1 and len(list(val[0].glob("*.png"))) == 16
    assert len(list((out / "overlays").glob("synthetic-*.gif"))) == 1
    if (SHARED / "data" / "davis-sample").is_dir():
        assert len(list((out / "overlays").glob("davis-val-*.gif"))) == 2


def test_demo_rejects_an_empty_object_range_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--out", str(tmp_path / "demo"), "--train-objects", "3", "2"])
    assert exit_info.value.code == 2
    assert "--train-objects 3 2" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


def test_default_paths_are_the_working_directorys_not_the_package(tmp_path, monkeypatch):
    """--out is outputs/demo and --shared ../shared of the working directory (or $RHMNET_SHARED): an
    installed package never writes into, or looks for data beside, its own folder."""
    package = Path(rhmnet.__file__).resolve().parent
    cwd = tmp_path.resolve() / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("RHMNET_SHARED", raising=False)
    args = demo.build_parser().parse_args([])
    assert not args.out.is_absolute() and not args.shared.is_absolute()
    assert args.out.resolve() == cwd / "outputs" / "demo"
    assert args.shared.resolve() == tmp_path.resolve() / "shared"
    assert all(package not in [path, *path.parents] for path in (args.out.resolve(), args.shared.resolve()))
    monkeypatch.setenv("RHMNET_SHARED", str(tmp_path / "mine"))
    assert demo.build_parser().parse_args([]).shared == tmp_path / "mine"


def test_real_video_notice_says_what_is_skipped_and_where_davis_is(tmp_path):
    shared = tmp_path / "shared"
    root = tmp_path / "DAVIS"
    lines = [demo.real_video_notice(shared, roots) for roots in ([], [root])]
    assert "synthetic videos only" in lines[0] and "--davis DAVIS_ROOT" in lines[0]
    assert "skipping the DAVIS val rows" in lines[1] and "--davis DAVIS_ROOT" not in lines[1]
    (shared / "data" / "davis-sample" / "ImageSets" / "2017").mkdir(parents=True)
    (shared / "data" / "davis-sample" / "ImageSets" / "2017" / "val.txt").write_text("blackswan\n")
    assert "training on synthetic videos only" in demo.real_video_notice(shared, [])
    assert demo.real_video_notice(shared, [root]) is None
    assert all("davischallenge.org/davis2017/code.html" in line and "\n" not in line for line in lines)


@pytest.fixture(scope="module")
def full_demo_scores(tmp_path_factory) -> dict[tuple[str, str], float]:
    """J&F of every row of one full default demo run with ``--holdout`` (about 16 minutes on 2 CPU cores):
    trained on the training part of davis16-train, scored on its held-out sequences too."""
    if not (SHARED / "data" / "davis16-train").is_dir() or not (SHARED / "data" / "davis-sample").is_dir():
        pytest.skip("the real-video targets need ../shared/data/davis16-train and davis-sample")
    out = tmp_path_factory.mktemp("full-demo") / "demo"
    assert demo.main(["--out", str(out), "--shared", str(SHARED), "--holdout"]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    return {(r["evaluated_on"], r["name"]): r["jf"] for r in rows}


@pytest.mark.slow
@pytest.mark.xfail(reason=REAL_VIDEO_REASON, strict=False)
def test_demo_learns_real_video(full_demo_scores):
    """DAVIS val (blackswan, car-shadow): J&F >= 0.65 and at least 0.10 above the training-free kNN baseline."""
    davis = full_demo_scores[(demo.DAVIS_SET, demo.MODEL_ROW)]
    assert davis >= 0.65
    assert davis >= full_demo_scores[(demo.DAVIS_SET, demo.KNN_ROW)] + 0.10


@pytest.mark.slow
@pytest.mark.xfail(reason=UNSEEN_VIDEO_REASON, strict=False)
def test_demo_generalises_to_unseen_video(full_demo_scores):
    """The held-out davis16-train sequences, never trained on: J&F >= 0.55 on the single-object videos, >= 0.45
    on the multi-object videos built from them and there at least 0.10 above the training-free kNN baseline."""
    single, multi = "held-out davis16-train", "held-out multi-object davis16-train"
    assert full_demo_scores[(single, demo.MODEL_ROW)] >= 0.55
    assert full_demo_scores[(multi, demo.MODEL_ROW)] >= 0.45
    assert full_demo_scores[(multi, demo.MODEL_ROW)] >= full_demo_scores[(multi, demo.KNN_ROW)] + 0.10


def test_demo_holds_out_its_validation_split(tmp_path):
    """--holdout: the prepared training root lacks the split's validation sequences, and the table has the
    held-out single- and multi-object rows, each with both baselines."""
    from rhmnet.dataprep.splits import davis_split

    real = make_synthetic_dataset(tmp_path / "real", seed=1, num_train=10, num_val=1, size=(240, 320), frames=4,
                                  layouts=("davis",))["davis"]
    split = davis_split(real)
    assert len(split.val) == 2
    out = tmp_path / "demo"
    status = demo.main(["--out", str(out), "--iters", "1", "--num-train", "2", "--num-val", "1", "--davis", str(real),
                        "--shared", str(tmp_path / "no-shared"), "--holdout", *SMALL])
    assert status == 0
    prepared = (out / "data" / "davis-train" / "ImageSets" / "2017" / "train.txt").read_text().split()
    assert prepared == [f"DAVIS-{name}" for name in split.train]
    report = json.loads((out / "results.json").read_text())
    rows = [(r["evaluated_on"], r["name"]) for r in report["rows"]]
    methods = (demo.MODEL_ROW, demo.DILATED_ROW, demo.KNN_ROW)
    assert rows[3:] == [(f"held-out {real.name}", m) for m in methods] + [
        (f"held-out multi-object {real.name}", m) for m in methods]
    assert report["held_out"] == {str(real.resolve()): list(split.val)}
    assert "never saw" in (out / "results.md").read_text()
    videos = read_image_set(out / "data" / f"multiobject-{real.name}" / "ImageSets" / "2017" / "val.txt")
    assert sorted(v.split("+")[0] for v in videos) == list(split.val)
