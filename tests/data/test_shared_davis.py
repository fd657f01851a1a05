"""The real DAVIS sample of ../shared (CC BY-NC 4.0, DAVIS): synthesise scribbles from its masks,
train-sample from them, and convert the official interactive scribble file. Skipped with a reason when
../shared is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rhmnet.data.davis import DavisScribbleDataset
from rhmnet.data.io import DatasetError, read_davis_eval_scribble, read_palette_png, read_scribble
from rhmnet.data.sample import ClipOptions
from rhmnet.dataprep.davis_interactive import ScribbleFrameWarning, convert_interactive_file
from rhmnet.dataprep.scribble_synthesis import synthesize_davis
from rhmnet.labels import BACKGROUND
from tests.conftest import shared_path

SEQUENCES = ["dog-agility"]


@pytest.fixture(scope="module")
def davis_with_scribbles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DAVIS root linking the shared frames, with scribbles synthesised for two train sequences."""
    sample = shared_path("data", "davis-sample")
    root = tmp_path_factory.mktemp("davis-real")
    (root / "JPEGImages").symlink_to(sample / "JPEGImages", target_is_directory=True)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("\n".join(SEQUENCES) + "\n")
    report = synthesize_davis(sample, out_root=root, seed=0, sequences=SEQUENCES, groups=2, progress=False)
    assert report.written == 25 + 2 and not report.no_background
    return root


def test_synthesised_scribbles_follow_the_masks(davis_with_scribbles: Path) -> None:
    sample = shared_path("data", "davis-sample")
    for name in ("00000", "00012"):
        mask = read_palette_png(sample / "Annotations" / "480p" / "dog-agility" / f"{name}.png")
        scribble = read_scribble(davis_with_scribbles / "train_scribbles" / "dog-agility" / f"{name}.bmp")
        assert scribble.shape == mask.shape == (480, 854)
        assert (mask[scribble == 1] == 1).all() and (scribble == 1).sum() > 100
        assert (mask[scribble == 2] == 0).all() and (scribble == 2).sum() > 100
    evaluation = read_davis_eval_scribble(davis_with_scribbles / "valid_scribbles1" / "dog-agility.bmp")
    assert set(np.unique(evaluation)) == {0, 1}


def test_davis_dataset_on_real_frames(davis_with_scribbles: Path) -> None:
    options = ClipOptions(crop_size=(384, 384), clip_length=3)
    dataset = DavisScribbleDataset(davis_with_scribbles, options, init_skip=5)
    assert [v.name for v in dataset.videos] == SEQUENCES
    dataset.reseed(0)
    for _ in range(3):
        sample = dataset[0]
        assert sample["images"].shape == (3, 3, 384, 384)
        assert sample["ds_scribbles"].shape == (3, 12, 96, 96)
        assert int(sample["num_objects"]) == 1
        assert set(np.unique(sample["scribbles"].numpy())) <= {0, 1, BACKGROUND}
        assert (sample["memory_scribbles"][0] == 1).sum() > 100
        assert sample["ignore_regions"][:, 1].sum() > 0
        assert max(np.diff(sample["info"]["frames"].numpy())) <= 6


def test_convert_interactive_bear(tmp_path: Path) -> None:
    sample = shared_path("data", "davis-sample")
    source = sample / "Scribbles" / "bear" / "001.json"
    with pytest.warns(ScribbleFrameWarning) as caught:
        result = convert_interactive_file(source, tmp_path, group=0, davis_root=sample)
    messages = " | ".join(str(w.message) for w in caught)
    assert "frame 39, not frame 0" in messages and "no background stroke" in messages
    assert result.frame == 39 and result.num_objects == 1
    assert result.bmp_path == tmp_path / "valid_scribbles0" / "bear.bmp"
    scribble = read_scribble(result.bmp_path)
    assert scribble.shape == (480, 854) and set(np.unique(scribble)) == {0, 1}  # no background strokes
    mask = read_palette_png(sample / "Annotations" / "480p" / "bear" / "00039.png")
    assert (mask[scribble == 1] == 1).mean() > 0.9  # the human strokes lie on the bear
    assert json.loads(result.sidecar_path.read_text())["frame"] == 39
    # without background strokes the largest value is an object: read it with num_objects
    assert (read_davis_eval_scribble(result.bmp_path, num_objects=1) == 1).sum() == (scribble == 1).sum()
    with pytest.raises(DatasetError, match="frame 0 has no strokes"):
        convert_interactive_file(source, tmp_path, group=1, davis_root=sample, frame=0)


def test_davis_jpegs_read_as_opencv_reads_them() -> None:
    """The truncation check leaves real DAVIS frames pixel-equal to OpenCV's own reader (every 5th frame
    of every sample sequence)."""
    import cv2

    from rhmnet.data.io import read_image

    frames = sorted(shared_path("data", "davis-sample", "JPEGImages", "480p").glob("*/*.jpg"))[::5]
    assert frames
    for path in frames:
        expected = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        assert np.array_equal(read_image(path), expected), path
