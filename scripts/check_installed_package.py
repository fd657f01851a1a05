"""Check an installed (non-editable) rhmnet: every named config loads and builds, every console script
starts (``--help``), ``rhmnet-segment`` runs, ``rhmnet-studio`` (installed with its extra) serves its page, a
tiny ``python -m rhmnet.demo`` runs with its default paths.

    python scripts/check_installed_package.py --checkout REPO_ROOT

Run it with the Python of a fresh virtual environment into which the wheel was installed, from a working
directory outside the checkout (CI does this). It fails if ``rhmnet`` is imported from the checkout.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import rhmnet
from rhmnet.cli_args import ArgumentParser
from rhmnet.config import AUTHORS_DEFAULT, CONFIG_DIR, load_config

TINY_MODEL = [
    "MODEL.BACKBONE.NAME=resnet18",
    "MODEL.BACKBONE.PRETRAINED=false",
    "MODEL.HIDDEN_DIM=64",
    "MODEL.TRANSFORMER.NHEAD=4",
    "MODEL.TRANSFORMER.DIM_FEEDFORWARD=128",
]
TINY_DEMO = ["--iters", "1", "--num-train", "1", "--num-val", "1"]  # about 10 s on 2 cores
DAVIS_DOWNLOAD = "https://davischallenge.org/davis2017/code.html"


def check_not_from_checkout(checkout: Path) -> None:
    """The package under test must be the installed copy, not the source tree."""
    location = Path(rhmnet.__file__).resolve()
    if checkout.resolve() in location.parents:
        raise SystemExit(f"rhmnet was imported from the checkout ({location}), not from the installed wheel")
    print(f"rhmnet {rhmnet.__version__} imported from {location.parent}")


def check_named_configs() -> None:
    """Every YAML shipped in the package loads, and every experiment builds a model (no weights are
    downloaded; the authors' defaults are only a base for their experiment files, not a model of its own)."""
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    if not names or AUTHORS_DEFAULT not in names:
        raise SystemExit(f"the named configs are not shipped in {CONFIG_DIR} (found {names})")
    for name in names:
        cfg = load_config(name, ["MODEL.BACKBONE.PRETRAINED=false"])
        if name == AUTHORS_DEFAULT:
            print(f"config {name}: loaded (a base for the authors' experiment files)")
            continue
        model = rhmnet.build_model(cfg)
        params = sum(p.numel() for p in model.parameters())
        print(f"config {name}: built {params / 1e6:.1f} M parameters")


def check_console_scripts() -> None:
    """Every console script of the installed distribution is on PATH and ``--help`` exits 0."""
    scripts = sorted(e.name for e in importlib.metadata.distribution("rhmnet").entry_points
                     if e.group == "console_scripts")
    if not scripts:
        raise SystemExit("the installed rhmnet declares no console scripts")
    for name in scripts:
        executable = shutil.which(name)
        if executable is None:
            raise SystemExit(f"the {name} console script is not on PATH")
        done = subprocess.run([executable, "--help"], capture_output=True, text=True, timeout=300)
        if done.returncode != 0 or "usage:" not in done.stdout:
            raise SystemExit(f"{name} --help failed (exit status {done.returncode}):\n{done.stderr[-2000:]}")
    print(f"console scripts start: {', '.join(scripts)}")


def check_segment_command(workdir: Path) -> None:
    """``rhmnet-segment`` on a tiny synthetic video writes one mask per frame."""
    torch.manual_seed(0)
    checkpoint = workdir / "tiny.pth.tar"
    rhmnet.save_model(rhmnet.build_model(load_config("video_training", TINY_MODEL)), checkpoint)
    frames = workdir / "frames"
    frames.mkdir()
    rng = np.random.default_rng(0)
    for index in range(4):
        Image.fromarray(rng.integers(0, 256, (72, 88, 3), dtype=np.uint8)).save(frames / f"{index:05d}.png")
    scribble = np.zeros((72, 88), np.uint8)
    scribble[20:26, 10:40] = 1
    scribble[50:54, 10:80] = 11
    Image.fromarray(scribble).save(workdir / "scribble.png")
    out = workdir / "out"
    command = ["rhmnet-segment", "--frames", str(frames), "--scribble", str(workdir / "scribble.png"),
               "--checkpoint", str(checkpoint), "--out", str(out), "--overlay", "none", "--device", "cpu"]
    executable = shutil.which("rhmnet-segment")
    if executable is None:
        raise SystemExit("the rhmnet-segment console script is not on PATH")
    subprocess.run(command, check=True)
    masks = sorted((out / "masks").glob("*.png"))
    if len(masks) != 4:
        raise SystemExit(f"rhmnet-segment wrote {len(masks)} masks for 4 frames")
    print(f"rhmnet-segment ({executable}) wrote {len(masks)} masks")


def check_studio_command(workdir: Path) -> None:
    """``rhmnet-studio`` on the tiny video of :func:`check_segment_command` prints its URL and serves the
    page and its script (shipped as package data) to a request with the token, and refuses one without."""
    import urllib.error
    import urllib.request

    executable = shutil.which("rhmnet-studio")
    if executable is None:
        raise SystemExit("the rhmnet-studio console script is not on PATH")
    command = [executable, "--frames", str(workdir / "frames"), "--checkpoint", str(workdir / "tiny.pth.tar"),
               "--out", str(workdir / "studio"), "--port", "0", "--device", "cpu", "--threads", "1"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        url = ""
        for line in server.stdout:
            if line.startswith("http://"):
                url = line.strip()
                break
        if not url:
            raise SystemExit(f"rhmnet-studio printed no URL (exit status {server.wait()})")
        page = urllib.request.urlopen(url, timeout=30).read().decode()
        base, token = url.split("/?token=")
        script = urllib.request.urlopen(f"{base}/static/studio.js?token={token}", timeout=30).read()
        if 'id="frame-canvas"' not in page or b"frame-canvas" not in script:
            raise SystemExit("rhmnet-studio served an incomplete page")
        try:
            urllib.request.urlopen(f"{base}/api/info", timeout=30)
            raise SystemExit("rhmnet-studio answered a request without its token")
        except urllib.error.HTTPError as exc:
            if exc.code != 403:
                raise
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"rhmnet-studio ({executable}) served its page at {base}")


def check_demo(workdir: Path) -> None:
    """``python -m rhmnet.demo`` at its smallest, from a folder with no ``../shared`` and no ``RHMNET_SHARED``:
    it says in one line that it runs on synthetic video only and where DAVIS is, writes its table, results and
    model to ``outputs/demo`` of the working directory (its default; not the installed package), and the
    model loads."""
    run = workdir / "demo" / "run"
    run.mkdir(parents=True)
    env = {key: value for key, value in os.environ.items() if key != "RHMNET_SHARED"}
    done = subprocess.run([sys.executable, "-m", "rhmnet.demo", *TINY_DEMO], cwd=run, env=env, check=True,
                          stdout=subprocess.PIPE, text=True, timeout=300)
    print(done.stdout, end="")
    notices = [line for line in done.stdout.splitlines() if DAVIS_DOWNLOAD in line]
    if len(notices) != 1 or "synthetic videos only" not in notices[0]:
        raise SystemExit(f"the demo without shared data did not say in one line what it skips ({notices})")
    out = run / "outputs" / "demo"
    missing = [name for name in ("results.md", "results.json", "model.pth.tar") if not (out / name).is_file()]
    if missing:
        raise SystemExit(f"the demo did not write {', '.join(missing)} to {out}")
    rows = json.loads((out / "results.json").read_text())["rows"]
    table = (out / "results.md").read_text()
    if len(rows) != 3 or any(f"| {row['evaluated_on']} | {row['name']} | 1 |" not in table for row in rows):
        raise SystemExit(f"the demo's table lacks its three synthetic rows:\n{table}")
    rhmnet.load_model(out / "model.pth.tar")
    print(f"rhmnet.demo wrote its table and model to {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, required=True, help="the source checkout (must not be imported)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_not_from_checkout(args.checkout)
    check_named_configs()
    check_console_scripts()
    with tempfile.TemporaryDirectory() as tmp:
        check_segment_command(Path(tmp))
        check_studio_command(Path(tmp))
        check_demo(Path(tmp))
    print("installed package: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
