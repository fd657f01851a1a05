"""Multi-object validation videos (rhmnet/dataprep/multiobject.py, scripts/make_multiobject_videos.py):
byte-identical for a seed, exact labels (replayed from the manifest's transforms), first-frame scribbles
inside each object with background strokes kept off the objects, safe names, no overwriting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rhmnet.data.composition import PasteTransform, object_ids, paste_objects
from rhmnet.data.io import read_image_set, read_palette_png, read_scribble
from rhmnet.data.strokes import distance_to_objects
from rhmnet.dataprep.multiobject import (
    EVAL_STYLE,
    MANIFEST,
    donor_clip,
    load_sequence,
    make_multiobject_videos,
    reflected_indices,
)
from rhmnet.dataprep.synthetic_videos import make_synthetic_dataset
from rhmnet.guards import OutputExistsError, UnsafeNameError
from tests.conftest import load_script


@pytest.fixture(scope="module")
def source_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three synthetic one-to-three-object videos of 240x320, 5 frames (DAVIS layout)."""
    roots = make_synthetic_dataset(tmp_path_factory.mktemp("mo-source"), seed=3, num_train=2, num_val=1,
                                   size=(240, 320), frames=5, layouts=("davis",))
    return roots["davis"]


NAMES = ["synth-000", "synth-001", "synth-002"]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files(source_root: Path, tmp_path: Path) -> None:
    first = make_multiobject_videos(source_root, tmp_path / "a", NAMES, seed=1, progress=False)
    make_multiobject_videos(source_root, tmp_path / "b", NAMES, seed=1, progress=False)
    make_multiobject_videos(source_root, tmp_path / "c", NAMES, seed=2, progress=False)
    a, b, c = (tree_bytes(tmp_path / x) for x in "abc")
    assert a == b and a != c
    assert len(first) == 3 and all(r.target not in r.donors and set(r.donors) <= set(NAMES) for r in first)
    assert read_image_set(tmp_path / "a" / "ImageSets" / "2017" / "val.txt") == [r.name for r in first]


def test_labels_and_scribbles(source_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "mo"
    make_multiobject_videos(source_root, out, NAMES, seed=0, groups=2, progress=False)
    manifest = json.loads((out / MANIFEST).read_text())
    for video in manifest["videos"]:
        target = load_sequence(source_root, video["target"])
        frames, labels = target.frames, target.masks
        for paste in video["pastes"]:  # replay: the written masks are the pasted masks exactly
            donor_frames, donor_labels = donor_clip(load_sequence(source_root, paste["donor"]), len(frames))
            frames, labels, _ = paste_objects(frames, labels, donor_frames, donor_labels,
                                              dict(zip(paste["source_ids"], paste["new_ids"])),
                                              PasteTransform(paste["scale"], paste["dx"], paste["dy"]))
        written = [read_palette_png(out / "Annotations" / "480p" / video["name"] / f"{stem}.png")
                   for stem in target.stems]
        assert all(np.array_equal(w, lab) for w, lab in zip(written, labels))
        first = written[0]
        ids = object_ids(first)
        assert len(ids) >= 2 and max(ids) == video["num_objects"]
        for group in range(2):
            scribble = read_scribble(out / f"valid_scribbles{group}" / f"{video['name']}.bmp")
            background = video["num_objects"] + 1
            for obj in ids:  # every object has strokes, all inside itself
                assert (scribble == obj).any() and (first[scribble == obj] == obj).all()
            assert (scribble == background).any()
            assert distance_to_objects(first)[scribble == background].min() >= EVAL_STYLE.background_margin


def test_refuses_non_empty_output_and_unsafe_names(source_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "mo"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not empty"):
        make_multiobject_videos(source_root, out, NAMES, progress=False)
    make_multiobject_videos(source_root, out, NAMES[:2], overwrite=True, progress=False)
    assert (out / "notes.txt").read_text() == "keep me"
    with pytest.raises(UnsafeNameError, match="not a plain name"):
        make_multiobject_videos(source_root, tmp_path / "other", ["synth-000", "../synth-001"], progress=False)


def test_script_exit_codes(source_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = load_script("make_multiobject_videos")
    out = tmp_path / "mo"
    args = ["--root", str(source_root), "--out", str(out), "--sequences", *NAMES[:2], "--quiet"]
    assert script.run_cli(script.main, args) == 0
    assert "2 videos" in capsys.readouterr().out
    assert script.run_cli(script.main, args) == 2
    assert "not empty" in capsys.readouterr().err


def test_reflected_indices() -> None:
    assert reflected_indices(3, 7) == [0, 1, 2, 1, 0, 1, 2]
    assert reflected_indices(1, 3) == [0, 0, 0]
