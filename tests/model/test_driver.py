"""The video driver: frame order, background decoding and writing, error reporting, bounded look-ahead,
late objects, and outputs identical to a plain initialise/step/write loop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from rhmnet import config
from rhmnet.data.io import read_palette_png, write_palette_png
from rhmnet.inference import VideoSegmenter
from rhmnet.inference import driver as driver_module
from rhmnet.inference.driver import ObjectStart, segment_video
from rhmnet.inference.frame_io import FrameSource, VideoFrame, VideoIOError
from rhmnet.inference.mask_io import PaletteWriter


class FakeResult:
    def __init__(self, labels: np.ndarray) -> None:
        self.labels = labels


class RecordingSegmenter:
    """Stands in for VideoSegmenter: records calls; labels = first channel of the frame modulo 3."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def initialize(self, frame, scribble, num_objects=None, object_ids=None) -> None:
        self.calls.append(("initialize", int(frame[0, 0, 0]), None if object_ids is None else list(object_ids)))

    def add_objects(self, frame, scribble, object_ids) -> None:
        self.calls.append(("add_objects", int(frame[0, 0, 0]), list(object_ids)))

    def step(self, frame, frame_num=None, with_reliable=False) -> FakeResult:
        self.calls.append(("step", int(frame[0, 0, 0]), frame_num))
        return FakeResult((frame[..., 0] % 3).astype(np.uint8))


def numbered_frames(count: int, h: int = 12, w: int = 16) -> list[np.ndarray]:
    """Frames whose pixel values are their index (so the fake segmenter can tell them apart)."""
    return [np.full((h, w, 3), t, np.uint8) for t in range(count)]


def write_frames(folder: Path, frames: list[np.ndarray]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for t, frame in enumerate(frames):
        path = folder / f"{t:05d}.png"  # lossless, so values survive the round trip
        cv2.imwrite(str(path), frame)
        paths.append(path)
    return paths


SCRIBBLE = np.ones((12, 16), np.uint8)


def test_given_order_is_stepped_with_run_frame_numbers(tmp_path: Path) -> None:
    paths = write_frames(tmp_path / "frames", numbered_frames(6))
    seg = RecordingSegmenter()
    run = segment_video(seg, FrameSource.from_paths(paths[3::-1]), SCRIBBLE, sink=PaletteWriter(tmp_path / "out"))
    assert run.names == ["00003", "00002", "00001", "00000"]
    assert seg.calls[0] == ("initialize", 3, None)
    assert [c for c in seg.calls if c[0] == "step"] == [("step", 3, 0), ("step", 2, 1), ("step", 1, 2), ("step", 0, 3)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{t:05d}.png" for t in range(4)]
    for t in range(4):
        assert np.array_equal(read_palette_png(tmp_path / "out" / f"{t:05d}.png"), np.full((12, 16), t % 3))


def test_late_objects_join_before_their_frame_is_stepped() -> None:
    seg = RecordingSegmenter()

    def starts(frame: VideoFrame) -> ObjectStart | None:
        ids = {0: [1], 2: [2, 3]}.get(frame.index)
        return ObjectStart(SCRIBBLE, ids) if ids else None

    segment_video(seg, FrameSource.from_arrays(numbered_frames(4)), new_objects=starts, num_objects=3)
    assert seg.calls == [
        ("initialize", 0, [1]), ("step", 0, 0), ("step", 1, 1),
        ("add_objects", 2, [2, 3]), ("step", 2, 2), ("step", 3, 3),
    ]  # fmt: skip


def test_no_first_scribble_is_an_error() -> None:
    with pytest.raises(driver_module.InferenceError, match="no scribble for the first frame"):
        segment_video(RecordingSegmenter(), FrameSource.from_arrays(numbered_frames(2)))


def test_decode_error_names_the_file_and_stops_the_thread(tmp_path: Path) -> None:
    paths = write_frames(tmp_path / "frames", numbered_frames(5))
    paths[3].write_bytes(b"not an image")
    source = FrameSource.from_paths(paths)
    seg = RecordingSegmenter()
    with pytest.raises(VideoIOError, match=str(paths[3]).replace("\\", "\\\\")):
        segment_video(seg, source, SCRIBBLE, sink=PaletteWriter(tmp_path / "out"))
    assert [c[1] for c in seg.calls if c[0] == "step"] == [0, 1, 2]
    assert not source._thread.is_alive()


def test_writer_error_names_the_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "00002.png").mkdir()  # a folder where the mask should go: the write fails
    with pytest.raises(VideoIOError, match="cannot write mask .*00002.png"):
        segment_video(RecordingSegmenter(), FrameSource.from_arrays(numbered_frames(5)), SCRIBBLE,
                      sink=PaletteWriter(out))


def test_interrupt_in_the_loop_stops_background_threads(tmp_path: Path) -> None:
    source = FrameSource.from_arrays(numbered_frames(50), prefetch=2)
    writer = PaletteWriter(tmp_path / "out")

    def interrupt(frame: VideoFrame, _result: object) -> None:
        if frame.index == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        segment_video(RecordingSegmenter(), source, SCRIBBLE, sink=writer, on_frame=interrupt)
    assert not source._thread.is_alive()
    assert writer._pool._shutdown


def test_decoding_runs_a_bounded_distance_ahead() -> None:
    """Memory stays flat in video length: the source is pulled at most prefetch + 2 frames ahead."""
    pulled = 0

    def frames() -> Iterator[np.ndarray]:
        nonlocal pulled
        for frame in numbered_frames(200, 4, 4):
            pulled += 1
            yield frame

    ahead = []

    def watch(frame: VideoFrame, _result: object) -> None:
        if frame.index == 0:
            time.sleep(0.3)  # give the decoder every chance to run ahead
        ahead.append(pulled - (frame.index + 1))

    run = segment_video(RecordingSegmenter(), FrameSource.from_arrays(frames(), prefetch=3), np.ones((4, 4), np.uint8),
                        on_frame=watch)
    assert run.frames == 200 and pulled == 200
    assert max(ahead) <= 3 + 2


def test_masks_are_written_at_the_original_size(tmp_path: Path) -> None:
    frames = [np.zeros((30, 40, 3), np.uint8)]
    seg = RecordingSegmenter()
    segment_video(seg, FrameSource.from_arrays(frames, names=["a"], resize_width=20), np.ones((15, 20), np.uint8),
                  sink=PaletteWriter(tmp_path, resize=True))
    assert read_palette_png(tmp_path / "a.png").shape == (30, 40)


def test_outputs_equal_a_plain_loop(tiny_model: torch.nn.Module, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(4)]
    paths = write_frames(tmp_path / "frames", [f[..., ::-1] for f in frames])  # stored BGR, read back as RGB
    scribble = np.zeros((40, 56), np.uint8)
    scribble[8:12, 8:30] = 1
    scribble[30:33, :] = 11
    settings = config.TestConfig(UPDATE_FREQUENCY=2)

    plain = VideoSegmenter(tiny_model, settings)
    plain.initialize(frames[0], scribble)
    expected = []
    for t, frame in enumerate(frames):
        result = plain.step(frame, frame_num=t)
        expected.append(result.labels)
        write_palette_png(tmp_path / "plain" / f"{t:05d}.png", result.labels)

    probs = []
    run = segment_video(VideoSegmenter(tiny_model, settings), FrameSource.from_paths(paths), scribble,
                        sink=PaletteWriter(tmp_path / "driver"), collect=True,
                        on_frame=lambda _f, r: probs.append(r.full_probs))
    assert all(np.array_equal(a, b) for a, b in zip(run.masks, expected)) and len(run.masks) == 4
    for t in range(4):
        name = f"{t:05d}.png"
        assert (tmp_path / "driver" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes()
    assert len(probs) == 4 and probs[-1].shape == (12, 40, 56)


def test_peek_then_iterate_from_a_folder(tmp_path: Path) -> None:
    write_frames(tmp_path / "frames", numbered_frames(3))
    source = FrameSource.open(tmp_path / "frames", max_frames=2)
    first = source.peek()
    assert first.name == "00000" and first.original_hw == (12, 16)
    seg = RecordingSegmenter()
    run = segment_video(seg, source, SCRIBBLE)
    assert run.names == ["00000", "00001"] and seg.calls[0] == ("initialize", 0, None)
    with pytest.raises(VideoIOError, match="no images"):
        FrameSource.open(tmp_path)  # holds only a folder


def test_davis_sequence_runs_backward_from_a_frame(tmp_path: Path) -> None:
    """The DAVIS runner steps a given frame order (e.g. k..0 for backward propagation) through the driver."""
    from rhmnet.evaluation.davis import DavisSequence, InitialScribble, segment_sequence
    from rhmnet.inference.timing import SpeedMeter

    paths = write_frames(tmp_path / "frames", numbered_frames(5))
    seq = DavisSequence("seq", paths, [], 1)
    seg, meter = RecordingSegmenter(), SpeedMeter()
    run = segment_sequence(seg, seq, InitialScribble(SCRIBBLE, frame=2), tmp_path / "out", meter,
                           frame_order=[2, 1, 0])
    assert run.names == ["00002", "00001", "00000"]
    assert [c[1:] for c in seg.calls if c[0] == "step"] == [(2, 0), (1, 1), (0, 2)]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00000.png", "00001.png", "00002.png"]
    assert meter.total.frames == 3
