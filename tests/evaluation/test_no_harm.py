"""No harm from hostile names, failed runs, broken inputs and impossible options, grouped by rule:

1. names from data stay plain names (an error naming the file and the line);
2. results are written to a staging place and replace earlier ones only after success; links are never
   followed; a tool that writes results refuses to replace them without its flag;
3. outputs are read back, inputs that lost frames or values are errors;
4. every config value and option is checked at load, with its range in the message;
5. the frame-decoding thread stops on every error;
6. exit status 2 for bad input, 1 for a failed run.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import rhmnet.segment as segment
from rhmnet.config import ConfigError, load_config
from rhmnet.dataprep import scribble_synthesis
from rhmnet.errors import run_cli
from rhmnet.evaluation import davis, youtube
from rhmnet.guards import OutputExistsError, StagedOutput, read_name_list, replaced_on_success
from rhmnet.tools import reference_check
from tests.conftest import TINY_OVERRIDES, load_script


def _segment(davis_root: Path, checkpoint: Path, out: Path, *extra: str, scribble: Path | None = None,
             frames: Path | None = None) -> list[str]:
    frames = frames or davis_root / "JPEGImages" / "480p" / "alpha"
    scribble = scribble or davis_root / "valid_scribbles0" / "alpha.bmp"
    return ["--frames", str(frames), "--scribble", str(scribble), "--bg-value", "3", "--out", str(out),
            "--overlay", "none", "--checkpoint", str(checkpoint), "--config", "video_training", "--device", "cpu",
            *TINY_OVERRIDES, *extra]  # fmt: skip


def _eval_davis(root: Path, checkpoint: Path, save: Path, *extra: str) -> list[str]:
    return ["--davis-root", str(root), "--mask-init", "--checkpoint", str(checkpoint), "--config", "video_training",
            "--device", "cpu", "--no-progress", "--save-path", str(save), *TINY_OVERRIDES, *extra]  # fmt: skip


def _usage_error(main, argv: list[str]) -> int:
    """The exit status of an argparse usage error (SystemExit) or of the returned status."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _decoders_alive() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rhmnet-decode" and t.is_alive()]


# -- 1. names from data ----------------------------------------------------------------------------------
@pytest.mark.parametrize("hostile", ["../../X", "ABSOLUTE"])
def test_davis_image_set_names_cannot_leave_the_output_folder(davis_root, tiny_checkpoint, tmp_path, capsys,
                                                             hostile):
    name = str(davis_root / "Annotations" / "480p" / "alpha") if hostile == "ABSOLUTE" else hostile
    (davis_root / "ImageSets" / "2017" / "val.txt").write_text(f"alpha\n{name}\n")
    before = _snapshot(davis_root)
    save = tmp_path / "results"
    assert davis.cli(_eval_davis(davis_root, tiny_checkpoint, save)) == 2
    assert "val.txt, line 2: sequence name" in capsys.readouterr().err
    assert not save.exists() and _snapshot(davis_root) == before


def test_synthesize_scribbles_refuses_escaping_names(davis_root, tmp_path, capsys):
    cli = scribble_synthesis.cli
    (davis_root / "ImageSets" / "2017" / "val.txt").write_text("alpha\n../../X\n")
    out = tmp_path / "scribbles"
    assert cli(["--quiet", "davis", "--root", str(davis_root), "--out", str(out)]) == 2
    assert "val.txt, line 2: sequence name '../../X'" in capsys.readouterr().err
    assert _usage_error(cli, ["--quiet", "davis", "--root", str(davis_root), "--out", str(out),
                              "--sequences", "../x"]) == 2
    assert not out.exists() and not list(tmp_path.rglob("X.bmp"))


def test_name_lists_report_the_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_text("a\n\n b \n/etc\n")
    with pytest.raises(ValueError, match=r"list\.txt, line 4: sequence name '/etc'"):
        read_name_list(path)
    path.write_text("a\n\n b \n")
    assert read_name_list(path) == ["a", "b"]


@pytest.mark.parametrize(("objects", "message"), [({"one": {"frames": ["00000"]}}, "non-numeric object id 'one'"),
                                                  ([{"frames": ["00000"]}], "expected 'objects' to map")])
def test_synthesize_scribbles_checks_meta_json(ytb_root, tmp_path, capsys, objects, message):
    (ytb_root / "valid" / "Annotations" / "vid1").mkdir(parents=True)
    label = np.zeros((72, 120), np.uint8)
    label[10:40, 10:40] = 1
    Image.fromarray(label, mode="P").save(ytb_root / "valid" / "Annotations" / "vid1" / "00000.png")
    (ytb_root / "valid" / "meta.json").write_text(json.dumps({"videos": {"vid1": {"objects": objects}}}))
    cli = scribble_synthesis.cli
    assert cli(["--quiet", "youtube", "--root", str(ytb_root), "--out", str(tmp_path / "o"), "--splits", "valid"]) == 2
    err = capsys.readouterr().err
    assert "meta.json" in err and message in err


# -- 2. write order, links, earlier results ----------------------------------------------------------------
@pytest.fixture
def nan_checkpoint(tiny_checkpoint, tmp_path) -> Path:
    data = torch.load(tiny_checkpoint, weights_only=True)
    name = next(k for k, v in data["state_dict"].items() if v.is_floating_point())
    data["state_dict"][name] = torch.full_like(data["state_dict"][name], float("nan"))
    path = tmp_path / "nan.pth.tar"
    torch.save(data, path)
    return path


def test_failed_overwrite_keeps_the_earlier_run(davis_root, tiny_checkpoint, nan_checkpoint, tmp_path, capsys):
    out = tmp_path / "seg"
    assert segment.cli(_segment(davis_root, tiny_checkpoint, out)) == 0
    before = _snapshot(out)
    for checkpoint, message in ((tmp_path / "missing.pth", "checkpoint not found"), (nan_checkpoint, "NaN")):
        assert segment.cli(_segment(davis_root, checkpoint, out, "--overwrite")) == 2
        assert message in capsys.readouterr().err
        assert _snapshot(out) == before and sorted(p.name for p in out.iterdir()) == ["masks"]


def test_overwrite_never_follows_a_link(davis_root, tiny_checkpoint, tmp_path, capsys):
    victim, out = tmp_path / "victim", tmp_path / "seg"
    victim.mkdir()
    out.mkdir()
    for name in ("00000.png", "00001.png", "keep.txt"):
        (victim / name).write_text("mine")
    (out / "masks").symlink_to(victim)
    assert segment.cli(_segment(davis_root, tiny_checkpoint, out, "--overwrite")) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert _snapshot(victim) == {n: b"mine" for n in ("00000.png", "00001.png", "keep.txt")}


def test_staged_output_puts_everything_back_when_a_move_fails(tmp_path, monkeypatch):
    folder = tmp_path / "out"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "old.png").write_text("old a")
    (folder / "b.csv").write_text("old b")
    real_replace, calls = os.replace, []

    def failing_replace(src, dst):
        calls.append(src)
        if len(calls) == 3:  # a set aside, a moved in, b set aside: the disk fills up here
            raise OSError(errno.ENOSPC, "No space left on device")
        real_replace(src, dst)

    with pytest.raises(OSError, match="No space left"):
        with StagedOutput(folder, ["a", "b.csv"]) as stage:
            (stage / "a").mkdir()
            (stage / "a" / "new.png").write_text("new")
            (stage / "b.csv").write_text("new b")
            monkeypatch.setattr(os, "replace", failing_replace)
    monkeypatch.setattr(os, "replace", real_replace)
    assert _snapshot(folder) == {"a/old.png": b"old a", "b.csv": b"old b"}
    assert sorted(p.name for p in folder.iterdir()) == ["a", "b.csv"]  # no staging folder left


def test_replaced_on_success_restores_a_failed_run(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / "results.md").write_text("earlier")
    with pytest.raises(RuntimeError):
        with replaced_on_success(folder):
            (folder / "results.md").write_text("half")
            (folder / "data").mkdir()
            raise RuntimeError("training failed")
    assert _snapshot(folder) == {"results.md": b"earlier"} and len(list(folder.iterdir())) == 1
    with replaced_on_success(folder):
        (folder / "model.pth.tar").write_text("new")
    assert _snapshot(folder) == {"model.pth.tar": b"new"} and len(list(folder.iterdir())) == 1


def test_eval_davis_refuses_an_earlier_run_and_replaces_it_after_success(davis_root, tiny_checkpoint, tmp_path,
                                                                          capsys):
    save = tmp_path / "results"
    assert davis.cli(_eval_davis(davis_root, tiny_checkpoint, save, "--video-name", "alpha")) == 0
    (folder,) = [p for p in save.iterdir() if p.is_dir()]
    stale = folder / "alpha" / "stale.png"
    stale.write_bytes(b"earlier")
    assert davis.cli(_eval_davis(davis_root, tiny_checkpoint, save, "--video-name", "alpha")) == 2
    assert "already holds results" in capsys.readouterr().err and stale.exists()
    assert davis.cli(_eval_davis(davis_root, tiny_checkpoint, save, "--video-name", "alpha", "--overwrite")) == 0
    assert not stale.exists() and len(list((folder / "alpha").glob("*.png"))) == 6
    assert not [p for p in save.iterdir() if p.name.startswith(".")]


def test_reference_check_out_is_never_an_input(tmp_path, capsys):
    reference, checkpoint = tmp_path / "ref.pt", tmp_path / "ckpt.pth"
    reference.write_bytes(b"reference")
    checkpoint.write_bytes(b"checkpoint")
    for out, extra, message in ((reference, ["--overwrite"], "is the --reference file"),
                                (checkpoint, ["--overwrite"], "is the --checkpoint file"),
                                (reference.with_name("mine.pt"), [], "exists; pass --overwrite")):
        out.touch()
        argv = ["--checkpoint", str(checkpoint), "--reference", str(reference), "--out", str(out), *extra]
        assert run_cli(reference_check.main, argv) == 2
        assert message in capsys.readouterr().err
    assert reference.read_bytes() == b"reference" and checkpoint.read_bytes() == b"checkpoint"


def test_synthesize_scribbles_never_rewrites_scribbles_silently(davis_root, tmp_path, capsys):
    cli = scribble_synthesis.cli
    before = _snapshot(davis_root)
    argv = ["--quiet", "davis", "--root", str(davis_root), "--groups", "2"]
    assert cli(argv) == 2
    assert "already holds results (valid_scribbles0/alpha.bmp" in capsys.readouterr().err
    assert _snapshot(davis_root) == before
    assert cli(["--overwrite", *argv]) == 0
    after = _snapshot(davis_root)
    assert after["valid_scribbles0/alpha.bmp"] != before["valid_scribbles0/alpha.bmp"]  # replaced
    assert {k: v for k, v in after.items() if not k.startswith(("train_scribbles", "valid_"))} == {
        k: v for k, v in before.items() if not k.startswith(("train_scribbles", "valid_"))}
    assert not [p for p in davis_root.iterdir() if p.name.startswith(".")]


def test_convert_davis_interactive_refuses_existing_scribbles(tmp_path, capsys):
    cli = load_script("convert_davis_interactive").cli
    source = tmp_path / "in" / "toy" / "001.json"
    source.parent.mkdir(parents=True)
    source.write_text(json.dumps({"sequence": "toy", "scribbles": [[{"path": [[0.1, 0.1], [0.5, 0.5]],
                                                                      "object_id": 1}]]}))
    argv = [str(source), "--out", str(tmp_path / "out"), "--size", "40", "60"]
    assert cli(argv) == 0
    bmp = tmp_path / "out" / "valid_scribbles0" / "toy.bmp"
    bmp.write_bytes(b"mine")
    assert cli(argv) == 2 and "already holds results" in capsys.readouterr().err
    assert bmp.read_bytes() == b"mine"
    assert cli([*argv, "--overwrite"]) == 0 and bmp.read_bytes() != b"mine"


def test_demo_refuses_a_non_empty_out_before_any_work(tmp_path, capsys):
    from rhmnet import demo

    out = tmp_path / "demo"
    out.mkdir()
    (out / "results.md").write_text("earlier")
    assert run_cli(demo.main, ["--out", str(out), "--iters", "1", "--shared", str(tmp_path / "none")]) == 2
    assert "is not empty (results.md); pass --overwrite" in capsys.readouterr().err
    assert _snapshot(out) == {"results.md": b"earlier"}


# -- 3. outputs verified, inputs that lost frames or values ---------------------------------------------------
class _FullDiskVideoWriter:
    """An MP4 writer on a full disk: it opens and takes frames, the file it leaves holds none."""

    def __init__(self, path: str, *args: object) -> None:
        Path(path).write_bytes(b"\x00\x00\x00\x18ftypmp42")

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def write(self, frame: np.ndarray) -> None:
        pass

    def release(self) -> None:
        pass


def test_unreadable_overlay_is_a_failed_run(davis_root, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    out = tmp_path / "seg"
    assert segment.cli(_segment(davis_root, tiny_checkpoint, out)) == 0
    before = _snapshot(out)
    monkeypatch.setattr(segment.cv2, "VideoWriter", _FullDiskVideoWriter)
    argv = _segment(davis_root, tiny_checkpoint, out, "--overwrite")
    argv[argv.index("--overlay") + 1] = "mp4"
    assert segment.cli(argv) == 1
    assert "overlay.mp4: 6 frames written but 0 could be read back" in capsys.readouterr().err
    assert _snapshot(out) == before and not (out / "overlay.mp4").exists()


def test_full_disk_while_writing_masks_is_a_failed_run(davis_root, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import rhmnet.inference.mask_io as mask_io

    def full(path, labels, *args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(mask_io, "write_palette_png", full)
    out = tmp_path / "seg"
    assert segment.cli(_segment(davis_root, tiny_checkpoint, out)) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert not out.exists()  # nothing left behind by the failed first run


def test_truncated_video_is_an_error_naming_both_counts(davis_root, tiny_checkpoint, tmp_path, capsys):
    rng = np.random.default_rng(0)
    full = tmp_path / "full.avi"
    writer = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10, (90, 60))
    for _ in range(20):
        writer.write(rng.integers(0, 255, (60, 90, 3), dtype=np.uint8))
    writer.release()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.55)])
    out = tmp_path / "seg"
    assert segment.cli(_segment(davis_root, tiny_checkpoint, out, frames=cut)) == 2
    err = capsys.readouterr().err
    assert "header lists 20 frames but only" in err and "could be decoded" in err
    assert not out.exists()
    assert segment.cli(_segment(davis_root, tiny_checkpoint, out, "--max-frames", "3", frames=cut)) == 0


def test_jpeg_scribble_is_refused(davis_root, tiny_checkpoint, tmp_path, capsys):
    scribble = np.array(Image.open(davis_root / "valid_scribbles0" / "alpha.bmp"))
    path = tmp_path / "scribble.jpg"
    Image.fromarray(scribble).save(path, quality=75)
    assert segment.cli(_segment(davis_root, tiny_checkpoint, tmp_path / "o", scribble=path)) == 2
    assert "a JPEG label image; lossy compression" in capsys.readouterr().err
    renamed = path.with_suffix(".png")  # a JPEG by content, whatever its name
    shutil.copy(path, renamed)
    assert segment.cli(_segment(davis_root, tiny_checkpoint, tmp_path / "o", scribble=renamed)) == 2


def test_missing_annotation_is_an_error_naming_it(davis_root, tiny_checkpoint, tmp_path, capsys):
    missing = davis_root / "Annotations" / "480p" / "beta" / "00003.png"
    missing.unlink()
    assert davis.cli(_eval_davis(davis_root, tiny_checkpoint, tmp_path / "r")) == 2
    assert f"missing annotation {missing}" in capsys.readouterr().err


# -- 4. config values and options --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("TEST.MAX_MEMORY_LENGTH=0", "TEST.MAX_MEMORY_LENGTH: must be in [1, inf), got 0"),
        ("TEST.MAX_MEMORY_LENGTH=-3", "TEST.MAX_MEMORY_LENGTH: must be in [1, inf), got -3"),
        ("TEST.UPDATE_FREQUENCY=0", "TEST.UPDATE_FREQUENCY: must be in [1, inf), got 0"),
        ("TEST.SCRIBBLE_UPDATE_FREQUENCY=0", "TEST.SCRIBBLE_UPDATE_FREQUENCY: must be in [1, inf), got 0"),
        ("MODEL.HIDDEN_DIM=0", "MODEL.HIDDEN_DIM: must be in [1, inf), got 0"),
        ("MODEL.HIDDEN_DIM=-8", "MODEL.HIDDEN_DIM: must be in [1, inf), got -8"),
        ("MODEL.HIDDEN_DIM=66", "MODEL.HIDDEN_DIM: 66 must be a multiple of MODEL.TRANSFORMER.NHEAD (8)"),
        ("MODEL.HIDDEN_DIM=40", "MODEL.HIDDEN_DIM: 40 must be a multiple of 32 (the bottleneck's GroupNorm)"),
        ("TRAIN.LR=-1", "TRAIN.LR: must be in (0, inf), got -1.0"),
        ("TRAIN.LR=.nan", "TRAIN.LR: must be in (0, inf), got nan"),
        ("TRAIN.LOSS.MASK.WEIGHT=-1", "TRAIN.LOSS.MASK.WEIGHT: must be in [0, inf), got -1.0"),
        ("TRAIN.LOSS.SMOOTH.WEIGHT=-1", "TRAIN.LOSS.SMOOTH.WEIGHT: must be in [0, inf)"),
        ("TRAIN.LOSS.CONSISTENCY.WEIGHT=-1", "TRAIN.LOSS.CONSISTENCY.WEIGHT: must be in [0, inf)"),
        ("TRAIN.LOSS.SCRIBBLE_LOSS.WEIGHT=-1", "TRAIN.LOSS.SCRIBBLE_LOSS.WEIGHT: must be in [0, inf)"),
        ("TRAIN.LOSS.SCRIBBLE_LOSS.GAMMA=-2", "TRAIN.LOSS.SCRIBBLE_LOSS.GAMMA: must be in [0, inf), got -2.0"),
        ("TEST.INPUT_SHORT_SIDE=-5", "TEST.INPUT_SHORT_SIDE: must be in [0, inf), got -5"),
        ("TRAIN.EMA_DECAY=1", "TRAIN.EMA_DECAY: must be in [0, 1), got 1.0"),
        ("TRAIN.ACCUMULATE_STEPS=0", "TRAIN.ACCUMULATE_STEPS: must be in [1, inf), got 0"),
        ("MODEL.TRANSFORMER.REFINE_THRESHOLD=[0.5,1.5]", "MODEL.TRANSFORMER.REFINE_THRESHOLD[1]: must be in [0, 1]"),
    ],
)
def test_config_values_are_checked_at_load_with_their_range(override, message):
    with pytest.raises(ConfigError) as error:
        load_config("video_training", [override])
    assert message in str(error.value)


def test_config_errors_stop_segment_before_any_work(davis_root, tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "o"
    assert segment.cli(_segment(davis_root, tiny_checkpoint, out, "TEST.MAX_MEMORY_LENGTH=0")) == 2
    assert "TEST.MAX_MEMORY_LENGTH: must be in [1, inf), got 0" in capsys.readouterr().err
    assert not out.exists() and not _decoders_alive()


def test_options_are_checked_at_parsing(davis_root, ytb_root, tiny_checkpoint, tmp_path, capsys):
    from rhmnet import demo
    from rhmnet.engine.cli import parse_args

    shared = ["--checkpoint-dir", str(tmp_path)]
    cases = [
        (davis.main, ["--davis-root", str(davis_root), "--start", "5", "--end", "2", *shared],
         "--end 2 is before --start 5"),
        (youtube.main, ["--ytb-root", str(ytb_root), "--start", "5", "--end", "2", *shared],
         "--end 2 is before --start 5"),
        (davis.main, ["--davis-root", str(davis_root), "--workers", "0"],
         "argument --workers: must be in [1, inf)"),
        (load_script("convert_davis_interactive").main, [str(tmp_path), "--out", str(tmp_path / "o"), "--size", "4",
                                                        "4", "--thickness", "-4"], "argument --thickness: must be in"),
        (demo.main, ["--out", str(tmp_path / "d"), "--davis-frames", "0"], "argument --davis-frames: must be in [1"),
        (demo.main, ["--out", str(tmp_path / "d"), "--texture-spread", "-5"], "argument --texture-spread: must be in"),
        (demo.main, ["--out", str(tmp_path / "d"), "--iters", "0"], "argument --iters: must be in [1, inf), got 0"),
        (demo.main, ["--out", str(tmp_path / "d"), "--iters", "-2"], "argument --iters: must be in [1, inf)"),
        (lambda argv: parse_args("video", "small_synthetic", argv), ["--max_iters", "0"],
         "argument --max-iters: must be in [1"),
        (lambda argv: parse_args("video", "small_synthetic", argv), ["--save_every", "-1"],
         "argument --save-every: must be"),
        (scribble_synthesis.main, ["--min-area", "-1", "davis", "--root", str(davis_root)],
         "argument --min-area: must be in [0, inf)"),
    ]
    for main, argv, message in cases:
        assert _usage_error(main, argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert not (tmp_path / "d").exists() and not (tmp_path / "o").exists()


def test_overlay_writer_refuses_impossible_frame_rates(tmp_path):
    for fps in (float("inf"), float("nan"), 1e-9, 0.0, -1.0):
        with pytest.raises(ValueError, match="overlay frame rate must be in"):
            segment.OverlayWriter(tmp_path, "mp4", fps)


# -- 5. threads -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["wrong size", "value 12", "value 255", "RGB", "16-bit", "1-bit", "RGBA",
                                  "missing", "a folder", "missing checkpoint"])
def test_early_errors_stop_the_decoding_thread(davis_root, tiny_checkpoint, tmp_path, capsys, case):
    scribble = np.array(Image.open(davis_root / "valid_scribbles0" / "alpha.bmp"))
    path, checkpoint = tmp_path / "scribble.png", tiny_checkpoint
    images = {
        "wrong size": lambda: Image.fromarray(np.pad(scribble, ((0, 4), (0, 4)))),
        "value 12": lambda: Image.fromarray(np.where(scribble == 1, 12, scribble).astype(np.uint8)),
        "value 255": lambda: Image.fromarray(np.where(scribble == 1, 255, scribble).astype(np.uint8)),
        "RGB": lambda: Image.fromarray(np.stack([scribble] * 3, -1)),
        "16-bit": lambda: Image.fromarray(scribble.astype(np.uint16) * 256),
        "1-bit": lambda: Image.fromarray(scribble > 0).convert("1"),
        "RGBA": lambda: Image.fromarray(np.stack([scribble] * 4, -1)),
    }
    if case in images:
        images[case]().save(path)
    elif case == "a folder":
        path.mkdir()
    elif case == "missing checkpoint":
        path, checkpoint = davis_root / "valid_scribbles0" / "alpha.bmp", tmp_path / "missing.pth"
    assert segment.cli(_segment(davis_root, checkpoint, tmp_path / "o", scribble=path)) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not _decoders_alive()  # at interpreter exit a live decoder aborted the process (exit 134)


# -- 6. exit status -------------------------------------------------------------------------------------
def test_unwritable_output_is_a_failed_run_in_one_line(davis_root, tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import tempfile

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "seg"))

    monkeypatch.setattr(tempfile, "mkdtemp", read_only)
    assert segment.cli(_segment(davis_root, tiny_checkpoint, tmp_path / "seg")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err and "Permission denied" in err


def test_os_errors_of_a_run_are_exit_1_in_one_line(capsys):
    def full(argv):
        raise OSError(errno.ENOSPC, "No space left on device")

    assert run_cli(full) == 1
    assert capsys.readouterr().err == "error: [Errno 28] No space left on device\n"


def test_output_errors_are_user_errors():
    assert issubclass(OutputExistsError, ValueError)
