"""The command-line tools over rhmnet.data (run in-process through their ``main``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from rhmnet.data.io import read_scribble, write_json
from rhmnet.dataprep import scribble_synthesis
from tests.conftest import load_script


def test_make_synthetic_dataset_cli(tmp_path: Path) -> None:
    main = load_script("make_synthetic_dataset").main
    argv = ["--seed", "2", "--num-train", "1", "--num-val", "1", "--size", "64x64", "--frames", "3"]
    assert main(["--out", str(tmp_path / "a"), *argv, "--layouts", "davis"]) == 0
    assert (tmp_path / "a" / "DAVIS" / "valid_scribbles4" / "synth-001.bmp").is_file()
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "b"), "--size", "big"])


def test_synthesize_scribbles_cli(synthetic_roots: dict[str, Path], tmp_path: Path) -> None:
    main = scribble_synthesis.main
    out = ["--out", str(tmp_path)]
    davis = [
        "davis",
        "--root",
        str(synthetic_roots["davis"]),
        *out,
        "--sequences",
        "synth-000",
        "--groups",
        "1",
    ]
    assert main(["--quiet", "--radius", "1", "2", *davis]) == 0
    written = read_scribble(tmp_path / "train_scribbles" / "synth-000" / "00003.bmp")
    assert written.shape == (128, 128) and written.max() > 0
    assert (
        main(["--quiet", "youtube", "--root", str(synthetic_roots["youtube"]), *out, "--splits", "valid"])
        == 0
    )
    assert list((tmp_path / "valid_scribbles").glob("*/*.bmp"))
    instances = synthetic_roots["coco"] / "annotations" / "instances_train.json"
    coco = ["coco", "--instances", str(instances), "--out", str(tmp_path / "coco"), "--limit", "3"]
    assert main(["--quiet", *coco]) == 0
    assert len(json.loads((tmp_path / "coco" / "COCO_scribbles.json").read_text())["images"]) <= 3
    with pytest.raises(SystemExit) as usage:  # a missing root is a usage error
        main(["--quiet", "davis", "--root", str(tmp_path / "nothing")])
    assert usage.value.code == 2


def test_convert_davis_interactive_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main = load_script("convert_davis_interactive").cli
    background = {"path": [[0.1, 0.1], [0.9, 0.1]], "object_id": 0}
    object_2 = {"path": [[0.5, 0.2], [0.5, 0.9]], "object_id": 2}
    write_json(
        tmp_path / "in" / "toy" / "002.json", {"sequence": "toy", "scribbles": [[background, object_2], []]}
    )
    common = [str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--size", "40", "60"]
    assert main([*common, "--num-objects", "2"]) == 0
    scribble = read_scribble(tmp_path / "out" / "valid_scribbles1" / "toy.bmp")  # 002.json -> group 1
    assert scribble.shape == (40, 60) and set(np.unique(scribble)) == {0, 2, 3}  # background = N + 1
    assert json.loads((tmp_path / "out" / "valid_scribbles1" / "toy.json").read_text())["frame"] == 0
    assert main([*common, "--frame", "1"]) == 2
    assert "frame 1 has no strokes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("scribble", "message"),
    [
        ({"sequence": "toy", "scribbles": [[{"path": [[0.5, 0.2], [1.2, 0.9]], "object_id": 1}]]},
         r"point 1 \[1.2, 0.9\] is outside the normalised range \[0, 1\]"),
        ({"sequence": "toy", "scribbles": [[{"path": [[-0.1, 0.2]], "object_id": 1}]]}, "outside the normalised"),
        ({"sequence": "../../escape", "scribbles": [[{"path": [[0.5, 0.2]], "object_id": 1}]]},
         "is not a plain name"),
    ],
)
def test_convert_davis_interactive_rejects_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     scribble: dict, message: str) -> None:
    main = load_script("convert_davis_interactive").cli
    source = tmp_path / "in" / "toy" / "001.json"
    write_json(source, scribble)
    assert main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--size", "40", "60"]) == 2
    err = capsys.readouterr().err
    assert str(source) in err and re.search(message, err), err
    assert not list(tmp_path.rglob("*.bmp"))


def test_synthesize_scribbles_radius_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        scribble_synthesis.main(["--radius", "5", "1", "davis", "--root", str(tmp_path)])
    assert info.value.code == 2
    assert "--radius MIN MAX needs MIN <= MAX, got 5 1" in capsys.readouterr().err
