"""Evaluate-only mode: numbers equal to the official algorithm, CSV layout, and clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from PIL import Image

from rhmnet.data.io import write_palette_png
from rhmnet.evaluation.davis import cli, main
from rhmnet.evaluation.davis_scoring import EvaluationError, evaluate_results


def make_results(gt_root: Path, out: Path, sequences: list[str]) -> Path:
    """Predictions from eroded / shifted ground truth, one PNG per annotated frame."""
    for seq in sequences:
        for i, path in enumerate(sorted((gt_root / "Annotations" / "480p" / seq).glob("*.png"))):
            mask = np.array(Image.open(path))
            pred = cv2.erode(mask, np.ones((5, 5), np.uint8)) if i % 2 else np.roll(mask, i % 7, axis=1)
            write_palette_png(out / seq / path.name, pred)
    return out


@pytest.fixture()
def sample_results(davis_sample: Path, tmp_path: Path) -> Path:
    return make_results(davis_sample, tmp_path / "res", ["blackswan", "car-shadow"])


def test_evaluate_only_matches_official_and_writes_csvs(
    davis_sample: Path, sample_results: Path, official: ModuleType
) -> None:
    argv = ["--evaluate-only", "--results-path", str(sample_results), "--davis-root", str(davis_sample)]
    assert main([*argv, "--year", "17", "--set", "val", "--no-progress"]) == 0
    ref = official.evaluate(str(davis_sample), str(sample_results))
    global_csv = (sample_results / "global_results-val.csv").read_text().splitlines()
    assert global_csv[0] == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    assert global_csv[1] == ",".join(f"{v:.3f}" for v in ref["global"])
    per_seq = (sample_results / "per-sequence_results-val.csv").read_text().splitlines()
    assert per_seq[0] == "Sequence,J-Mean,F-Mean"
    assert per_seq[1:] == [f"{n},{j:.3f},{f:.3f}" for n, (j, f) in ref["per_object"].items()]
    assert [r.split(",")[0] for r in per_seq[1:]] == ["blackswan_1", "car-shadow_1"]
    result = evaluate_results(sample_results, davis_sample, 17, "val", progress=False, workers=2)
    np.testing.assert_allclose(list(result.global_metrics().values()), ref["global"], rtol=0, atol=1e-6)


def test_evaluate_only_needs_no_jpegs(davis_root: Path, tmp_path: Path, official: ModuleType) -> None:
    shutil.rmtree(davis_root / "JPEGImages")
    res = make_results(davis_root, tmp_path / "res", ["alpha", "beta"])
    result = evaluate_results(res, davis_root, 17, "val", progress=False)
    assert [o.name for o in result.objects] == ["alpha_1", "alpha_2", "beta_1", "beta_2"]
    ref = official.evaluate(str(davis_root), str(res))
    np.testing.assert_allclose(list(result.global_metrics().values()), ref["global"], atol=1e-6)


def test_year16_keeps_object_1(davis_root: Path, tmp_path: Path) -> None:
    res = make_results(davis_root, tmp_path / "res", ["alpha", "beta"])
    for path in res.rglob("*.png"):  # a 2016 result holds object 1 only
        labels = np.array(Image.open(path))
        write_palette_png(path, np.where(labels == 1, 1, 0).astype(np.uint8))
    result = evaluate_results(res, davis_root, 16, "val", progress=False)
    assert [o.name for o in result.objects] == ["alpha_1", "beta_1"]


def test_fewer_objects_in_results_count_as_empty(davis_root: Path, tmp_path: Path) -> None:
    res = make_results(davis_root, tmp_path / "res", ["alpha", "beta"])
    for path in (res / "beta").glob("*.png"):
        labels = np.array(Image.open(path))
        write_palette_png(path, np.where(labels == 2, 0, labels).astype(np.uint8))
    result = evaluate_results(res, davis_root, 17, "val", progress=False)
    beta_2 = next(o for o in result.objects if o.name == "beta_2")
    assert beta_2.j_stats[0] == 0.0 and beta_2.f_stats[0] == 0.0


def test_missing_sequence(davis_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = make_results(davis_root, tmp_path / "res", ["alpha", "beta"])
    (davis_root / "ImageSets" / "2017" / "val.txt").write_text("alpha\nbeta\ngamma\n")
    argv = ["--evaluate-only", "--results-path", str(res), "--davis-root", str(davis_root), "--no-progress"]
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "missing sequence 'gamma'" in err and str(davis_root / "Annotations" / "480p" / "gamma") in err


def test_missing_results_folder_and_png(davis_root: Path, tmp_path: Path) -> None:
    res = make_results(davis_root, tmp_path / "res", ["alpha"])
    with pytest.raises(EvaluationError, match="missing results for sequence 'beta'"):
        evaluate_results(res, davis_root, 17, "val", progress=False)
    make_results(davis_root, res, ["beta"])
    (res / "beta" / "00002.png").unlink()
    with pytest.raises(EvaluationError, match=r"missing file: .*beta/00002\.png"):
        evaluate_results(res, davis_root, 17, "val", progress=False)


def test_result_png_of_wrong_size(davis_root: Path, tmp_path: Path) -> None:
    res = make_results(davis_root, tmp_path / "res", ["alpha", "beta"])
    write_palette_png(res / "alpha" / "00003.png", np.zeros((30, 40), np.uint8))
    with pytest.raises(
        EvaluationError, match=r"alpha/00003\.png: result is 40x30 \(WxH\) but the annotation is 90x60"
    ):
        evaluate_results(res, davis_root, 17, "val", progress=False)


def test_object_id_missing_from_ground_truth(davis_root: Path, tmp_path: Path) -> None:
    res = make_results(davis_root, tmp_path / "res", ["alpha", "beta"])
    labels = np.array(Image.open(res / "beta" / "00001.png"))
    labels[0:3, 0:3] = 3
    write_palette_png(res / "beta" / "00001.png", labels)
    with pytest.raises(EvaluationError, match=r"beta/00001\.png: object id 3 is not in the ground truth"):
        evaluate_results(res, davis_root, 17, "val", progress=False)


def test_rgb_result_png_is_rejected(davis_root: Path, tmp_path: Path) -> None:
    res = make_results(davis_root, tmp_path / "res", ["alpha", "beta"])
    Image.new("RGB", (90, 60)).save(res / "alpha" / "00001.png")
    with pytest.raises(EvaluationError, match="expected a palette or grey PNG"):
        evaluate_results(res, davis_root, 17, "val", progress=False)
