"""The studio's server API (Starlette TestClient): token, strokes and their autosave, propagation through
the one inference path, export without overwriting, and one-line errors at start-up."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from starlette.testclient import TestClient  # noqa: I001 - after the importorskip in conftest

from rhmnet.inference import VideoSegmenter
from rhmnet.inference.annotated import segment_annotated
from rhmnet.model_io import load_model
from rhmnet.studio.frames import FrameStore
from rhmnet.studio.project import AUTOSAVE, Project, rasterise
from rhmnet.studio.server import build_app, cli
from tests.studio.conftest import HEIGHT, WIDTH

TOKEN = "secret-token"


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """Tiny model, one thread."""


def _project(video_dir, checkpoint: Path, out: Path) -> Project:
    out.mkdir(exist_ok=True)
    return Project(FrameStore(video_dir[0], progress=False), VideoSegmenter(load_model(checkpoint)), out)


@pytest.fixture
def studio(video_dir, studio_checkpoint, tmp_path):
    project = _project(video_dir, studio_checkpoint, tmp_path / "out")
    with TestClient(build_app(project, TOKEN)) as client:
        client.headers["X-Studio-Token"] = TOKEN
        yield client, project
    project.close()


def _stroke(frame: int, label: int, points, size: int = 6) -> dict:
    return {"frame": frame, "label": label, "size": size, "points": points}


OBJECT_1 = _stroke(0, 1, [[30, 50], [50, 52], [55, 60]])
OBJECT_2 = _stroke(0, 2, [[120, 75], [130, 85]])
BACKGROUND = _stroke(0, 11, [[5, 5], [150, 5], [150, 110]])


def _wait_done(client: TestClient, job: int, seconds: float = 60) -> dict:
    deadline = time.time() + seconds
    while time.time() < deadline:
        status = client.get("/api/status").json()
        if status["job"] == job and status["state"] in ("done", "error"):
            return status
        time.sleep(0.05)
    raise AssertionError(f"propagation did not finish in {seconds} s: {status}")


def test_every_request_needs_the_token(video_dir, studio_checkpoint, tmp_path) -> None:
    project = _project(video_dir, studio_checkpoint, tmp_path / "out")
    with TestClient(build_app(project, TOKEN)) as client:
        for path in ["/", "/api/info", "/api/frame/0", "/api/status", "/static/studio.js"]:
            assert client.get(path).status_code == 403, path
            assert client.get(path, params={"token": "wrong"}).status_code == 403, path
        assert client.post("/api/propagate").status_code == 403
        page = client.get("/", params={"token": TOKEN})
        assert page.status_code == 200 and 'id="frame-canvas"' in page.text
        assert client.cookies.get("rhmnet_studio_token") == TOKEN  # later requests: the cookie
        assert client.get("/api/info").json()["frames"] == 8
        client.cookies.clear()
        assert client.get("/api/info").status_code == 403
        assert client.get("/api/info", headers={"X-Studio-Token": TOKEN}).status_code == 200


def test_page_has_the_stable_element_ids(studio) -> None:
    client, _ = studio
    page = client.get("/").text
    for element in ['id="frame-canvas"', 'id="frame-slider" type="range"', 'id="object-select"', 'id="propagate"',
                    'id="export"', 'id="status" data-state="idle"']:
        assert element in page
    values = [f'value="{v}"' for v in [*map(str, range(1, 11)), "bg"]]
    assert all(v in page for v in values)


def test_strokes_are_saved_as_drawn_and_survive_a_restart(studio, video_dir, studio_checkpoint) -> None:
    client, project = studio
    assert client.post("/api/strokes", json=OBJECT_1).json()["can_undo"]
    saved = json.loads((project.out / AUTOSAVE).read_text())
    assert saved["strokes"] == [OBJECT_1 | {"points": [[float(x), float(y)] for x, y in OBJECT_1["points"]]}]
    client.post("/api/strokes", json=BACKGROUND)
    state = client.post("/api/undo").json()
    assert len(state["strokes"]) == 1 and state["can_redo"]
    assert len(json.loads((project.out / AUTOSAVE).read_text())["redo"]) == 1
    # a restarted server with the same --out has the strokes and the redo stack
    again = _project(video_dir, studio_checkpoint, project.out)
    assert again.strokes == project.strokes and again.redo_stack == project.redo_stack
    assert len(client.post("/api/redo").json()["strokes"]) == 2
    assert [p.name for p in project.out.iterdir()] == [AUTOSAVE]  # nothing else written (no temporary file left)


@pytest.mark.parametrize(
    "stroke, message",
    [({"frame": 99, "label": 1, "size": 4, "points": [[1, 1]]}, "outside 0..7"),
     ({"frame": 0, "label": 12, "size": 4, "points": [[1, 1]]}, "label 12"),
     ({"frame": 0, "label": 1, "size": 0, "points": [[1, 1]]}, "size 0"),
     ({"frame": 0, "label": 1, "size": 4, "points": []}, "1..20000 points"),
     ({"frame": 0, "label": 1}, "needs frame, label, size and points"),
     ([1, 2], "must be an object")],
)
def test_a_bad_stroke_is_a_clear_error(studio, stroke, message) -> None:
    client, project = studio
    response = client.post("/api/strokes", json=stroke)
    assert response.status_code == 400 and message in response.json()["error"]
    assert project.strokes == []
    assert client.post("/api/strokes", content=b"{not json").status_code == 400


def test_rasterise_draws_strokes_in_order_and_the_eraser_clears() -> None:
    labels = rasterise([_stroke(0, 1, [[10, 10], [30, 10]], 4), _stroke(0, 0, [[20, 10]], 6)], (20, 40))
    assert labels[10, 12] == 1 and labels[10, 28] == 1 and labels[10, 20] == 0
    assert set(np.unique(labels)) == {0, 1}


def test_propagation_is_the_one_inference_path(studio, studio_checkpoint) -> None:
    client, project = studio
    assert client.post("/api/propagate").status_code == 400  # no stroke yet
    client.post("/api/strokes", json=_stroke(3, 11, [[5, 5], [150, 5]]))
    response = client.post("/api/propagate")
    assert response.status_code == 400 and "object brush" in response.json()["error"]
    for stroke in (OBJECT_1, OBJECT_2, BACKGROUND):
        client.post("/api/strokes", json=stroke)
    status = _wait_done(client, client.post("/api/propagate").json()["job"])
    assert status["state"] == "done" and status["done"] == 8 and min(status["revisions"]) == 1
    overlay = client.get("/api/mask/5")
    assert overlay.status_code == 200 and overlay.headers["content-type"] == "image/png"
    # the same masks as segment_annotated on the frames with their rasterised strokes (frames 0 and 3)
    scribbles, newest = project.scribbles()
    assert sorted(scribbles) == [0, 3] and newest == [0, 3]
    expected = {}
    segment_annotated(VideoSegmenter(load_model(studio_checkpoint)), project.frames.image, 8, scribbles,
                      lambda i, r: expected.__setitem__(i, r.labels.copy()))
    for index in range(8):
        got = np.asarray(Image.open(__import__("io").BytesIO(project.mask(index))))
        assert np.array_equal(got, expected[index]), index
    assert client.get("/api/frame/8").status_code == 400


def test_export_writes_inside_out_and_never_overwrites_unasked(studio, tmp_path) -> None:
    client, project = studio
    assert client.post("/api/export", json={}).status_code == 400  # nothing propagated yet
    for stroke in (OBJECT_1, OBJECT_2, BACKGROUND):
        client.post("/api/strokes", json=stroke)
    _wait_done(client, client.post("/api/propagate").json()["job"])
    before = set(tmp_path.iterdir())
    written = client.post("/api/export", json={}).json()
    assert set(tmp_path.iterdir()) == before  # nothing outside --out
    masks = sorted((project.out / "masks").iterdir())
    assert [p.name for p in masks] == [f"f{t:02d}.png" for t in range(8)]
    first = Image.open(masks[0])
    assert first.mode == "P" and first.size == (WIDTH, HEIGHT)
    assert Path(written["overlay"]).parent == project.out and Path(written["overlay"]).stat().st_size > 0
    exported = json.loads((project.out / "strokes.json").read_text())
    assert len(exported["strokes"]) == 3 and exported["names"][0] == "f00"
    # a second export must be confirmed; unconfirmed, the earlier files stay as they were
    stamp = masks[0].stat().st_mtime_ns
    response = client.post("/api/export", json={})
    assert response.status_code == 409 and response.json()["confirm"] and "masks/" in response.json()["error"]
    assert masks[0].stat().st_mtime_ns == stamp
    assert client.post("/api/export", json={"overwrite": True}).status_code == 200
    assert masks[0].stat().st_mtime_ns != stamp
    assert not list(project.out.glob(".partial-*"))  # no temporary folder left
    # the exported strokes continue the work in a new project
    from rhmnet.studio.project import Project as Fresh

    fresh_out = tmp_path / "again"
    fresh_out.mkdir()
    fresh = Fresh(project.frames, project.segmenter, fresh_out, project.out / "strokes.json")
    assert fresh.strokes == project.strokes and (fresh_out / AUTOSAVE).is_file()


def test_an_interrupted_export_leaves_no_half_written_results(studio, monkeypatch) -> None:
    client, project = studio
    for stroke in (OBJECT_1, BACKGROUND):
        client.post("/api/strokes", json=stroke)
    _wait_done(client, client.post("/api/propagate").json()["job"])
    import rhmnet.studio.project as module

    calls = []

    def failing_write(path, labels):
        calls.append(path)
        if len(calls) == 4:
            raise OSError("disk full (simulated)")
        return original(path, labels)

    original = module.write_palette_png
    monkeypatch.setattr(module, "write_palette_png", failing_write)
    with pytest.raises(OSError, match="disk full"):
        project.export(False, 12.0)
    assert not (project.out / "masks").exists() and not list(project.out.glob(".partial-*"))


def _cli_error(capsys, argv: list[str]) -> str:
    assert cli(argv) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if "frames:" not in line]  # progress
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_bad_input_is_one_clear_line(video_dir, studio_checkpoint, tmp_path, capsys) -> None:
    folder = video_dir[0]
    out = ["--out", str(tmp_path / "out"), "--port", "0"]
    text = tmp_path / "notes.txt"
    text.write_text("not a video")
    assert "cannot open video" in _cli_error(
        capsys, ["--frames", str(text), "--checkpoint", str(studio_checkpoint), *out])
    assert "checkpoint not found" in _cli_error(
        capsys, ["--frames", str(folder), "--checkpoint", str(studio_checkpoint.parent / "x.pth"), *out])
    assert "not a readable checkpoint" in _cli_error(
        capsys, ["--frames", str(folder), "--checkpoint", str(text), *out])
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("a.png", "b.png"):
        (broken / name).write_bytes((folder / "f00.png").read_bytes())
    (broken / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert "b.png" in _cli_error(capsys, ["--frames", str(broken), "--checkpoint", str(studio_checkpoint), *out])
    assert "holds the input frames" in _cli_error(
        capsys, ["--frames", str(folder), "--checkpoint", str(studio_checkpoint), "--out", str(folder)])
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    try:
        port = str(busy.getsockname()[1])
        line = _cli_error(capsys, ["--frames", str(folder), "--checkpoint", str(studio_checkpoint),
                                   "--out", str(tmp_path / "out"), "--port", port])
        assert "cannot listen on 127.0.0.1" in line and "in use" in line
    finally:
        busy.close()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_frames_of_a_video_file_are_kept_encoded(tmp_path) -> None:
    import cv2

    from tests.studio.conftest import synthetic_video

    frames, _ = synthetic_video(num=5)
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (WIDTH, HEIGHT))
    if not writer.isOpened():
        pytest.skip("no MJPG encoder in this OpenCV build")
    for image in frames:
        writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    writer.release()
    store = FrameStore(path, progress=False)
    assert len(store) == 5 and store.size == (HEIGHT, WIDTH) and store.names[0] == "00000"
    assert store.fps == pytest.approx(10.0)
    assert all(isinstance(j, bytes) for j in store._jpegs)  # no decoded frame is kept
    assert np.abs(store.image(2).astype(int) - frames[2]).mean() < 12  # MJPG + JPEG: close, not exact
    assert torch.is_tensor(torch.from_numpy(store.image(4)))


def test_the_authors_checkpoint_format_loads(studio_checkpoint, tmp_path) -> None:
    """``--config video_training KEY=VALUE ...`` with a file in the authors' {'epoch', 'state_dict'} layout."""
    from rhmnet.config import load_config
    from rhmnet.model_io import ours_to_author
    from rhmnet.studio.server import build_parser, load_checkpoint
    from tests.conftest import TINY_OVERRIDES

    state = torch.load(studio_checkpoint, weights_only=True)["model"]
    authors = tmp_path / "pretrain_checkpoint_3.pth.tar"
    torch.save({"epoch": 3, "state_dict": {ours_to_author(k): v for k, v in state.items()}}, authors)
    args = build_parser().parse_args(["--frames", "f", "--checkpoint", str(authors), "--config", "video_training",
                                      *TINY_OVERRIDES])
    assert args.overrides == TINY_OVERRIDES
    model = load_checkpoint(authors, load_config(args.config, args.overrides), "cpu", args.overrides)
    assert torch.equal(model.state_dict()["bottleneck.0.weight"], state["bottleneck.0.weight"])


def test_a_second_propagate_replaces_the_first(studio) -> None:
    client, project = studio
    for stroke in (OBJECT_1, BACKGROUND):
        client.post("/api/strokes", json=stroke)
    first = client.post("/api/propagate").json()["job"]
    second = client.post("/api/propagate").json()["job"]
    assert second == first + 1
    status = _wait_done(client, second)
    assert status["state"] == "done" and status["done"] == 8 and all(m is not None for m in project.masks)
