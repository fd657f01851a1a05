"""eval_davis with a converted DAVIS interactive scribble: read with its object count (no background
stroke), initialised on the annotated frame, propagated forwards and backwards from it."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rhmnet.data.io import read_davis_eval_scribble, read_palette_png
from rhmnet.dataprep.davis_interactive import ScribbleFrameWarning, convert_interactive_file
from rhmnet.evaluation import davis
from rhmnet.inference import frame_io
from rhmnet.inference.timing import SpeedMeter
from tests.evaluation.conftest import H, W
from tests.evaluation.test_eval_model import davis_args

ANNOTATED = 3  # strokes on frame 3 of 6


def _interactive_json(path: Path) -> Path:
    """Hand-made DAVIS interactive file for 'alpha': one stroke per object on frame 3, no background.
    On frame 3 object 1 covers rows 10-39, columns 17-41; object 2 rows 30-54, columns 44-73."""

    def norm(x: float, y: float) -> list[float]:
        return [x / (W - 1), y / (H - 1)]

    strokes = [
        {"path": [norm(20, 20), norm(38, 22)], "object_id": 1, "start_time": 0, "end_time": 1},
        {"path": [norm(50, 45), norm(68, 47)], "object_id": 2, "start_time": 1, "end_time": 2},
    ]
    data = {"sequence": "alpha", "scribbles": [[] for _ in range(6)], "annotated_frame": ANNOTATED}
    data["scribbles"][ANNOTATED] = strokes
    path.write_text(json.dumps(data))
    return path


@pytest.fixture()
def converted(davis_root: Path, tmp_path: Path) -> Path:
    """valid_scribbles0/alpha.bmp (+ sidecar) converted from the hand-made file; returns the folder."""
    source = _interactive_json(tmp_path / "001.json")
    with pytest.warns(ScribbleFrameWarning):
        result = convert_interactive_file(source, tmp_path / "interactive", group=0, davis_root=davis_root)
    assert (result.frame, result.num_objects) == (ANNOTATED, 2)
    return result.bmp_path.parent


def test_initial_labels_use_object_count_and_frame(davis_root: Path, converted: Path) -> None:
    seq = davis.load_sequence(davis_root, "alpha", single_object=False)
    start = davis.initial_labels(seq, converted, with_bg=False, single_object=False)
    assert start.frame == ANNOTATED
    assert set(np.unique(start.labels)) == {0, 1, 2}  # object 2 (the largest value) is kept
    # the authors' rule (largest value = background) would have erased object 2
    assert 2 not in np.unique(read_davis_eval_scribble(converted / "alpha.bmp"))
    # the authors' files (no sidecar) keep today's behaviour: frame 0, largest value = background
    plain = davis.initial_labels(seq, davis_root / "valid_scribbles0", with_bg=True, single_object=False)
    assert plain.frame == 0 and set(np.unique(plain.labels)) == {0, 1, 2, 11}


class RecordingSegmenter:
    """Stands in for VideoSegmenter: records initialisations and steps; labels name pass and frame."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.passes = 0

    def initialize(self, frame: np.ndarray, scribble: np.ndarray, num_objects: int, object_ids=None) -> None:
        self.passes += 1
        self.calls.append(("init", int(frame[0, 0, 0]), num_objects))

    def step(self, frame: np.ndarray, frame_num: int, with_reliable: bool = False) -> SimpleNamespace:
        t = int(frame[0, 0, 0])
        self.calls.append(("step", t, frame_num))
        return SimpleNamespace(labels=np.full((H, W), 10 * self.passes + t, np.uint8))


def test_forward_and_backward_passes_from_the_annotated_frame(
    davis_root: Path, converted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tagged_frame(path: Path) -> np.ndarray:  # frame t as an image whose pixels hold t
        return np.full((H, W, 3), int(Path(path).stem), np.uint8)

    monkeypatch.setattr(frame_io, "read_image", tagged_frame)  # the video driver's frame reader decodes the frames
    monkeypatch.setattr(frame_io, "read_frame_like", lambda path, shape: tagged_frame(path))
    seq = davis.load_sequence(davis_root, "alpha", single_object=False)
    start = davis.initial_labels(seq, converted, with_bg=False, single_object=False)
    segmenter = RecordingSegmenter()
    out = tmp_path / "masks"
    davis.segment_from_annotated_frame(segmenter, seq, start, out, SpeedMeter(torch.device("cpu")))
    assert segmenter.calls == [
        ("init", 3, 2), ("step", 3, 0), ("step", 4, 1), ("step", 5, 2),  # forward from frame 3
        ("init", 3, 2), ("step", 3, 0), ("step", 2, 1), ("step", 1, 2), ("step", 0, 3),  # backward
    ]
    written = {int(p.stem): int(read_palette_png(p)[0, 0]) for p in out.glob("*.png")}
    assert written == {0: 20, 1: 21, 2: 22, 3: 13, 4: 14, 5: 15}  # annotated frame from the forward pass


def test_frame_zero_scribbles_run_one_forward_pass(
    davis_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(frame_io, "read_image", lambda p: np.full((H, W, 3), int(Path(p).stem), np.uint8))
    monkeypatch.setattr(frame_io, "read_frame_like", lambda p, shape: np.full((H, W, 3), int(Path(p).stem), np.uint8))
    seq = davis.load_sequence(davis_root, "alpha", single_object=False)
    start = davis.initial_labels(seq, davis_root / "valid_scribbles0", with_bg=False, single_object=False)
    segmenter = RecordingSegmenter()
    davis.segment_from_annotated_frame(segmenter, seq, start, tmp_path / "m", SpeedMeter(torch.device("cpu")))
    assert segmenter.calls == [("init", 0, 2)] + [("step", t, t) for t in range(6)]


def test_bad_sidecar_is_named(davis_root: Path, converted: Path) -> None:
    (converted / "alpha.json").write_text(json.dumps({"frame": 9, "num_objects": 2}))
    seq = davis.load_sequence(davis_root, "alpha", single_object=False)
    with pytest.raises(davis.EvaluationError, match=r"alpha\.json: frame 9 outside"):
        davis.initial_labels(seq, converted, with_bg=False, single_object=False)


@pytest.mark.filterwarnings("ignore:--gpu")
def test_eval_davis_end_to_end_with_interactive_scribble(
    davis_root: Path, converted: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = davis_args(davis_root, tiny_checkpoint, out, "--year", "17", "--scribbles", str(converted.parent),
                      "--video-name", "alpha")
    assert davis.cli(argv) == 0
    folder = out / "video_training_3_davis17_val_g0" / "alpha"
    assert sorted(p.name for p in folder.glob("*.png")) == [f"{t:05d}.png" for t in range(6)]
    assert all(read_palette_png(p).max() <= 2 for p in folder.glob("*.png"))
