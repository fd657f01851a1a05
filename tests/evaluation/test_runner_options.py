"""The evaluation runners called with plain option dataclasses (no argparse), as the demo can call them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhmnet.config import load_config
from rhmnet.data.io import read_palette_png
from rhmnet.evaluation.davis import DavisRunOptions, build_parser, load_sequence, run_checkpoint
from rhmnet.evaluation.youtube import YtbDataset, YtbRunOptions
from rhmnet.evaluation.youtube import run_checkpoint as run_ytb_checkpoint
from rhmnet.runtime import load_checkpoint_model
from tests.evaluation.conftest import TINY_OVERRIDES


def test_davis_options_from_the_command_line() -> None:
    args = build_parser().parse_args(["--year", "2016", "--set", "train", "--save-path", "out", "--no-progress",
                                      "--config", "configs/small_synthetic.yaml", "--with-bg"])
    assert DavisRunOptions.from_args(args) == DavisRunOptions(
        save_path=Path("out"), config_name="small_synthetic", year=16, image_set="train", with_bg=True, progress=False)


def test_runners_take_plain_options(davis_root: Path, ytb_root: Path, tiny_checkpoint: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config("video_training", TINY_OVERRIDES)
    model = load_checkpoint_model(tiny_checkpoint, cfg, "cpu")
    sequences = [load_sequence(davis_root, "alpha", single_object=False)]
    options = DavisRunOptions(save_path=tmp_path / "davis", config_name="tiny", progress=False)
    run_checkpoint(options, "1", model, cfg, davis_root, sequences, [("mask", None)])
    pngs = sorted((tmp_path / "davis" / "tiny_1_davis17_val_mask" / "alpha").glob("*.png"))
    assert len(pngs) == 6 and read_palette_png(pngs[0]).shape == (60, 90)
    assert "end to end (decoding and PNG writing included): 6 frames" in capsys.readouterr().out

    data = YtbDataset(ytb_root, "val")
    ytb = YtbRunOptions(save_path=tmp_path / "ytb", config_name="tiny", size=100, write_zip=False, progress=False)
    out = run_ytb_checkpoint(ytb, "1", model, cfg, data, data.videos)
    assert out == tmp_path / "ytb" / "tiny_1_100" and not (out / "submission.zip").exists()
    assert [read_palette_png(p).shape for p in sorted((out / "Annotations" / "vid1").glob("*.png"))] == [(72, 120)] * 5
