"""rhmnet.segment, eval_ytb and eval_davis with bad or hostile inputs: clear errors before any work, no
writes outside the output folder, no silent overwrites."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import rhmnet
from rhmnet.config import load_config
from rhmnet.data.io import DatasetError
from rhmnet.evaluation import davis, youtube
from rhmnet.evaluation.youtube import parse_meta
from rhmnet.guards import UnsafeNameError
from rhmnet.segment import cli as segment_cli
from tests.evaluation.test_eval_model import TINY_OVERRIDES, davis_args


def _segment_args(davis_root: Path, checkpoint: Path, out: Path, *extra: str, frames: Path | None = None) -> list[str]:
    frames = frames or davis_root / "JPEGImages" / "480p" / "alpha"
    return ["--frames", str(frames), "--scribble", str(davis_root / "valid_scribbles0" / "alpha.bmp"),
            "--bg-value", "3", "--out", str(out), "--overlay", "none", "--checkpoint", str(checkpoint),
            "--config", "video_training", "--device", "cpu", *TINY_OVERRIDES, *extra]  # fmt: skip


def test_segment_refuses_to_overwrite_and_cleans_with_overwrite(davis_root, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "seg"
    assert segment_cli(_segment_args(davis_root, tiny_checkpoint, out)) == 0
    stale = out / "masks" / "zzz_earlier_run.png"
    stale.write_bytes(b"old")
    before = (out / "masks" / "00001.png").read_bytes()
    assert segment_cli(_segment_args(davis_root, tiny_checkpoint, out)) == 2
    assert "is not empty" in capsys.readouterr().err and stale.exists()
    assert segment_cli(_segment_args(davis_root, tiny_checkpoint, out, "--overwrite")) == 0
    assert not stale.exists() and (out / "masks" / "00001.png").read_bytes() == before
    assert len(list((out / "masks").iterdir())) == 6


def test_segment_never_writes_over_its_inputs(davis_root, tiny_checkpoint, tmp_path, capsys):
    frames = davis_root / "JPEGImages" / "480p" / "alpha"
    originals = {p.name: p.read_bytes() for p in frames.iterdir()}
    for out in (frames, frames.parent):
        args = _segment_args(davis_root, tiny_checkpoint, out, "--overwrite")
        assert segment_cli(args) == 2
        assert "holds the input frames" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == originals


def test_segment_duplicate_frame_names(davis_root, tiny_checkpoint, tmp_path, capsys):
    frames = tmp_path / "frames"
    shutil.copytree(davis_root / "JPEGImages" / "480p" / "alpha", frames)
    shutil.copy(frames / "00002.jpg", frames / "00002.png")
    assert segment_cli(_segment_args(davis_root, tiny_checkpoint, tmp_path / "o", frames=frames)) == 2
    assert "00002.jpg and 00002.png" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-frames", "0"], "argument --max-frames: must be in [1, inf), got 0"),
        (["--max-frames", "-1"], "argument --max-frames: must be in [1, inf), got -1"),
        (["--fps", "0"], "argument --fps: must be in [0.01, 1000], got 0.0"),
        (["--fps", "inf"], "argument --fps: must be in [0.01, 1000], got inf"),  # hung in the video writer
        (["--fps", "nan"], "argument --fps: must be in [0.01, 1000], got nan"),
        (["--fps", "1e-9"], "argument --fps: must be in [0.01, 1000], got 1e-09"),  # traceback before
        (["--threads", "0"], "argument --threads: must be in [1, inf), got 0"),  # exit 134 before
        (["--bg-value", "-1"], "argument --bg-value: must be in [1, 255], got -1"),  # accepted silently before
        (["--bg-value", "300"], "argument --bg-value: must be in [1, 255], got 300"),
    ],
)
def test_segment_bad_arguments_are_usage_errors(davis_root, tiny_checkpoint, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as stop:
        segment_cli(_segment_args(davis_root, tiny_checkpoint, tmp_path / "o", *extra))
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_segment_bad_device(davis_root, tiny_checkpoint, tmp_path, capsys):
    assert segment_cli(_segment_args(davis_root, tiny_checkpoint, tmp_path / "o", "--device", "nonsense")) == 2
    assert "invalid --device" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_segment_cuda_without_gpu(davis_root, tiny_checkpoint, tmp_path, capsys):
    argv = _segment_args(davis_root, tiny_checkpoint, tmp_path / "o")
    argv[argv.index("--device") + 1] = "cuda"
    assert segment_cli(argv) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_segment_out_is_a_file(davis_root, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "file.txt"
    out.write_text("mine")
    assert segment_cli(_segment_args(davis_root, tiny_checkpoint, out, "--overwrite")) == 2
    assert "exists and is not a folder" in capsys.readouterr().err and out.read_text() == "mine"


def test_segment_frame_of_another_size_is_named(davis_root, tiny_checkpoint, tmp_path, capsys):
    import cv2
    import numpy as np

    frames = tmp_path / "frames"
    shutil.copytree(davis_root / "JPEGImages" / "480p" / "alpha", frames)
    cv2.imwrite(str(frames / "00003.jpg"), np.zeros((32, 32, 3), np.uint8))
    assert segment_cli(_segment_args(davis_root, tiny_checkpoint, tmp_path / "o", frames=frames)) == 2
    assert "frames/00003.jpg: frame size 32x32 differs from the first frame's 90x60" in capsys.readouterr().err


def test_segment_overrides_apply_to_the_checkpoint_config(davis_root, tmp_path):
    """KEY=value without --config changes the checkpoint's own config (not the library defaults)."""
    torch.manual_seed(0)
    model = rhmnet.build_model(load_config("video_training", TINY_OVERRIDES))
    ours = tmp_path / "ours.pth.tar"
    rhmnet.save_model(model, ours)
    argv = _segment_args(davis_root, ours, tmp_path / "o", "TEST.MAX_MEMORY_LENGTH=3")
    del argv[argv.index("--config") : argv.index("--config") + 2]
    argv = [a for a in argv if a not in TINY_OVERRIDES]
    assert segment_cli(argv) == 0
    loaded = rhmnet.load_model(ours, overrides=["TEST.MAX_MEMORY_LENGTH=3"])
    assert loaded.cfg.TEST.MAX_MEMORY_LENGTH == 3 and loaded.cfg.MODEL.HIDDEN_DIM == 64


@pytest.mark.filterwarnings("ignore:--gpu")
def test_non_finite_checkpoint_stops_evaluation(davis_root, tiny_checkpoint, tmp_path, capsys):
    data = torch.load(tiny_checkpoint, weights_only=True)
    name = next(k for k in data["state_dict"] if k.endswith("bn1.weight"))
    data["state_dict"][name][0] = float("nan")
    folder = tmp_path / "ck" / "pretrain_weights_video_training"
    folder.mkdir(parents=True)
    torch.save(data, folder / "pretrain_checkpoint_3.pth.tar")
    assert davis.cli(davis_args(davis_root, folder / "pretrain_checkpoint_3.pth.tar", tmp_path / "r")) == 2
    err = capsys.readouterr().err
    assert "NaN or Inf" in err and "bn1.weight" in err


def _ytb_args(root: Path, checkpoint: Path, out: Path, *extra: str) -> list[str]:
    return ["--set", "val", "--checkpoint", str(checkpoint), "--ytb-root", str(root), "--device", "cpu",
            "--save-path", str(out), "--no-progress", *TINY_OVERRIDES, *extra]  # fmt: skip


@pytest.mark.parametrize("video_name", ["ABSOLUTE", "../escape", "a/b", ".."])
def test_ytb_video_names_cannot_leave_the_output_folder(ytb_root, tiny_checkpoint, tmp_path, capsys, video_name):
    victim = tmp_path / "victim"
    shutil.copytree(ytb_root / "valid" / "JPEGImages" / "vid1", victim)
    before = {p.name: p.read_bytes() for p in victim.iterdir()}
    name = str(victim) if video_name == "ABSOLUTE" else video_name
    meta_path = ytb_root / "valid" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["videos"] = {name: meta["videos"]["vid1"]}
    meta_path.write_text(json.dumps(meta))
    assert youtube.cli(_ytb_args(ytb_root, tiny_checkpoint, tmp_path / "o")) == 2
    assert "is not a plain name" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == before
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("videos", "message"),
    [
        ({}, "lists no videos"),
        ({"v": {"objects": [{"frames": ["00000"]}]}}, "expected 'objects' to map"),
        ({"v": {"objects": {"1": "00000"}}}, "a list of strings"),
        ({"v": {"objects": {"1": {"frames": "00000"}}}}, "a list of strings"),
        ({"v": {"objects": {"1": {"frames": [0, 5]}}}}, "a list of strings"),
        ({"v": {"objects": {"0": {"frames": ["00000"]}}}}, "object id '0' must be at least 1"),
        ({"v": {"objects": {"1": {"frames": ["../../x"]}}}}, "is not a plain name"),
    ],
)
def test_ytb_malformed_meta(videos, message):
    with pytest.raises((DatasetError, UnsafeNameError), match=message):
        parse_meta({"videos": videos}, Path("meta.json"))


def test_ytb_refuses_an_earlier_run(ytb_root, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "o"
    assert youtube.cli(_ytb_args(ytb_root, tiny_checkpoint, out, "--no-zip")) == 0
    folder = next(out.iterdir())
    stale = folder / "Annotations" / "old_video" / "00000.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    assert youtube.cli(_ytb_args(ytb_root, tiny_checkpoint, out)) == 2
    assert "is not empty" in capsys.readouterr().err
    assert youtube.cli(_ytb_args(ytb_root, tiny_checkpoint, out, "--overwrite")) == 0
    assert not stale.exists()
