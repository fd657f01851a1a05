"""The fixed validation split (rhmnet/dataprep/splits.py): deterministic, order-independent, written as a
DAVIS root, and the split of davis16-train documented as it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rhmnet.data.io import read_image_set
from rhmnet.dataprep.splits import davis_split, main, split_key, validation_split, write_split
from rhmnet.guards import OutputExistsError, UnsafeNameError
from tests.conftest import REPO, shared_path

NAMES = [f"seq-{i:02d}" for i in range(30)]


def test_split_is_fixed_by_the_names() -> None:
    split = validation_split(NAMES)
    assert len(split.train) == 24 and len(split.val) == 6
    assert not set(split.train) & set(split.val) and set(split.train) | set(split.val) == set(NAMES)
    assert list(split.val) == sorted(split.val) and list(split.train) == sorted(split.train)
    assert validation_split(reversed(NAMES)) == split  # order does not matter
    assert set(split.val) == set(sorted(NAMES, key=split_key)[:6])  # the six smallest keys
    assert validation_split(NAMES, 0.1).val == tuple(sorted(sorted(NAMES, key=split_key)[:3]))


def test_split_needs_two_sequences() -> None:
    with pytest.raises(ValueError, match="at least two sequences"):
        validation_split(["only"])
    assert len(validation_split(["a", "b"]).val) == 1


def fake_root(root: Path, names: list[str]) -> Path:
    for name in names:
        for kind in ("JPEGImages", "Annotations"):
            (root / kind / "480p" / name).mkdir(parents=True)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("".join(f"{n}\n" for n in names))
    return root


def test_written_split_is_a_davis_root(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "root", NAMES[:10])
    out = tmp_path / "split"
    assert main(["--root", str(root), "--out", str(out)]) == 0
    split = davis_split(root)
    for year in ("2016", "2017"):
        assert read_image_set(out / "ImageSets" / year / "val.txt") == list(split.val)
        assert read_image_set(out / "ImageSets" / year / "train.txt") == list(split.train)
    assert (out / "JPEGImages" / "480p" / split.val[0]).resolve() == (root / "JPEGImages" / "480p" / split.val[0])
    with pytest.raises(OutputExistsError, match="not empty"):
        write_split(root, out)
    (out / "keep.txt").write_text("user file")
    write_split(root, out, overwrite=True)  # replaces its own outputs only
    assert (out / "keep.txt").read_text() == "user file" and (root / "JPEGImages" / "480p" / split.val[0]).is_dir()


def test_unsafe_sequence_names_are_refused(tmp_path: Path) -> None:
    root = fake_root(tmp_path / "root", ["a", "b"])
    (root / "ImageSets" / "2017" / "train.txt").write_text("a\n../../etc\n")
    with pytest.raises(UnsafeNameError, match="not a plain name"):
        write_split(root, tmp_path / "out")


def test_davis16_train_split_is_the_documented_one() -> None:
    """docs/generalisation.md names the validation sequences; they must be what the rule gives."""
    split = davis_split(shared_path("data", "davis16-train"))
    assert len(split.train) == 24 and len(split.val) == 6
    text = (REPO / "docs" / "generalisation.md").read_text()
    documented = re.search(r"Validation sequences \(6\): (.+)\.", text)
    assert documented is not None and documented.group(1).split(", ") == list(split.val)
