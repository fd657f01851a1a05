"""eval_davis / eval_ytb / rhmnet.segment end to end with a tiny random model on synthetic data."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rhmnet.data.io import DAVIS_PALETTE, write_scribble
from rhmnet.evaluation import davis, youtube
from rhmnet.evaluation.youtube import parse_meta, target_size
from rhmnet.segment import cli as segment_cli
from tests.conftest import TINY_OVERRIDES  # the architecture of the tiny_checkpoint fixture


def davis_args(root: Path, ckpt: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--gpu", "0", "--set", "val", "--config", "video_training", "--davis_root", str(root),
        "--checkpoint_dir", str(ckpt.parent.parent), "--ckpt_num", "3", "--save_path", str(out),
        "--no_progress", *extra, *TINY_OVERRIDES,
    ]  # fmt: skip


def read_png(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image


@pytest.mark.filterwarnings("ignore:--gpu")
def test_eval_davis_outputs(davis_root: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert davis.cli(davis_args(davis_root, tiny_checkpoint, out, "--year", "17")) == 0
    for g in (0, 1):
        folder = out / f"video_training_3_davis17_val_g{g}"
        for seq in ("alpha", "beta"):
            pngs = sorted((folder / seq).glob("*.png"))
            assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(6)]
            image = read_png(pngs[2])
            assert image.mode == "P" and image.size == (90, 60)
            palette = np.array(image.getpalette()[: 3 * 4]).reshape(4, 3)
            assert np.array_equal(palette, DAVIS_PALETTE[:4])
            assert np.array(image).max() <= 2
        lines = (folder / "per-sequence_results-val.csv").read_text().splitlines()
        assert [r.split(",")[0] for r in lines] == ["Sequence", "alpha_1", "alpha_2", "beta_1", "beta_2"]
        assert (folder / "global_results-val.csv").read_text().startswith("J&F-Mean,J-Mean,J-Recall")
    summary = (out / "video_training_3_davis17_val_summary.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in summary] == ["Scribbles", "g0", "g1", "mean", "std"]
    speed = (out / "video_training_3_davis17_val_speed.csv").read_text().splitlines()
    assert speed[0] == "video,frames,seconds,fps,peak_memory_mb"
    assert speed[-1].startswith("overall,24,")


@pytest.mark.filterwarnings("ignore:--gpu")
def test_eval_davis_year16_mask_init_and_video_name(
    davis_root: Path, tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = davis_args(davis_root, tiny_checkpoint, out, "--year", "16", "--mask_init", "--video_name", "beta")
    assert davis.cli(argv) == 0
    folder = out / "video_training_3_davis16_val_mask"
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["beta"]
    assert all(np.array(read_png(p)).max() <= 1 for p in (folder / "beta").glob("*.png"))
    lines = (folder / "per-sequence_results-val.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in lines] == ["Sequence", "beta_1"]


@pytest.mark.filterwarnings("ignore:--gpu")
def test_eval_davis_custom_scribble_folder(davis_root: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    custom = tmp_path / "converted"
    for seq in ("alpha", "beta"):
        write_scribble(
            custom / f"{seq}.bmp", np.array(Image.open(davis_root / "valid_scribbles0" / f"{seq}.bmp"))
        )
    out = tmp_path / "out"
    assert davis.cli(davis_args(davis_root, tiny_checkpoint, out, "--scribbles", str(custom))) == 0
    assert (out / "video_training_3_davis17_val_converted" / "global_results-val.csv").is_file()


def test_eval_davis_bad_inputs(
    davis_root: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    (davis_root / "valid_scribbles1" / "beta.bmp").unlink()
    assert davis.cli(davis_args(davis_root, tiny_checkpoint, out)) == 2
    assert (
        f"missing scribble for sequence 'beta': {davis_root / 'valid_scribbles1' / 'beta.bmp'}"
        in capsys.readouterr().err
    )
    write_scribble(davis_root / "valid_scribbles1" / "beta.bmp", np.ones((30, 40), np.uint8))
    assert davis.cli(davis_args(davis_root, tiny_checkpoint, out)) == 2
    assert "beta.bmp: scribble is 40x30 but the first frame" in capsys.readouterr().err
    (davis_root / "ImageSets" / "2017" / "val.txt").write_text("alpha\nmissing-seq\n")
    assert davis.cli(davis_args(davis_root, tiny_checkpoint, out)) == 2
    assert "missing sequence 'missing-seq'" in capsys.readouterr().err
    assert not out.exists()  # all checked before any model work


def test_eval_davis_checkpoints(
    davis_root: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = davis_args(
        davis_root, tiny_checkpoint, tmp_path / "out", "--video_name", "alpha", "--device", "cpu"
    )
    argv[argv.index("--ckpt_num") + 1] = "7"
    assert davis.cli(argv) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    argv[argv.index("--ckpt_num") + 1] = "0"
    assert davis.cli([*argv, "--start", "2", "--end", "3"]) == 0
    text = capsys.readouterr().out
    assert "Epoch 2 does not exist" in text and "checkpoint 3: DAVIS-2017 val" in text


def test_ytb_helpers() -> None:
    assert target_size(720, 1280, 1000) == (562, 1000)
    assert target_size(480, 854, 1000) == (480, 854)
    assert target_size(480, 854, None) == (480, 854)
    meta = {"videos": {"v": {"objects": {"1": {"frames": ["00000", "00005"]}, "2": {"frames": ["00005"]}}}}}
    (video,) = parse_meta(meta, Path("meta.json"))
    assert video.frames == ["00000", "00005"] and video.num_objects == 2
    assert video.starts == {"00000": [1], "00005": [2]}


@pytest.mark.filterwarnings("ignore:--gpu")
def test_eval_ytb_late_object(ytb_root: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "yout"
    argv = [
        "--gpu", "0", "--set", "val", "--config", "video_training", "--ckpt_num", "3", "--size", "100",
        "--ytb_root", str(ytb_root), "--checkpoint_dir", str(tiny_checkpoint.parent.parent),
        "--save_path", str(out), "--no_progress", "--opts", *TINY_OVERRIDES,
    ]  # fmt: skip
    assert youtube.cli(argv) == 0
    folder = out / "video_training_3_100"
    names = [f"{5 * t:05d}.png" for t in range(5)]
    pngs = sorted((folder / "Annotations" / "vid1").glob("*.png"))
    assert [p.name for p in pngs] == names
    for k, path in enumerate(pngs):
        image = read_png(path)
        assert image.mode == "P" and image.size == (120, 72)  # original size, not 100x60
        if k < 2:
            assert 2 not in np.unique(np.array(image))  # object 2 is not valid before its first frame
    with zipfile.ZipFile(folder / "submission.zip") as archive:
        assert sorted(archive.namelist()) == [f"Annotations/vid1/{n}" for n in names]


def test_eval_ytb_missing_scribble(
    ytb_root: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (ytb_root / "valid_scribbles" / "vid1" / "00010.bmp").unlink()
    argv = ["--set", "val", "--checkpoint", str(tiny_checkpoint), "--ytb_root", str(ytb_root),
            "--device", "cpu", "--save_path", str(tmp_path / "o"), "--no_progress",
            *TINY_OVERRIDES]  # fmt: skip
    assert youtube.cli(argv) == 2
    assert f"missing scribble for video 'vid1': {ytb_root / 'valid_scribbles' / 'vid1' / '00010.bmp'}" in (
        capsys.readouterr().err
    )


def test_segment_own_video(
    davis_root: Path, tiny_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = davis_root / "JPEGImages" / "480p" / "alpha"
    scribble = davis_root / "valid_scribbles0" / "alpha.bmp"
    common = [
        "--checkpoint",
        str(tiny_checkpoint),
        "--config",
        "video_training",
        "--device",
        "cpu",
        *TINY_OVERRIDES,
    ]
    out = tmp_path / "seg"
    argv = ["--frames", str(frames), "--scribble", str(scribble), "--bg_value", "3", "--out", str(out)]
    assert segment_cli([*argv, "--overlay", "gif", *common]) == 0
    masks = sorted((out / "masks").glob("*.png"))
    assert len(masks) == 6 and read_png(masks[0]).mode == "P" and read_png(masks[0]).size == (90, 60)
    gif = read_png(out / "overlay.gif")
    assert gif.n_frames == 6
    bad = tmp_path / "bad.png"
    Image.fromarray(np.zeros((20, 30), np.uint8), mode="L").save(bad)
    assert segment_cli(["--frames", str(frames), "--scribble", str(bad), "--out", str(out), *common]) == 2
    assert "bad.png is 30x20 but the first frame" in capsys.readouterr().err
