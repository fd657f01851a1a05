"""YouTube-VOS scribble training set: ``<root>/train/JPEGImages/<video>/*.jpg`` with per-frame
scribbles ``<root>/train_scribbles/<video>/*.bmp``. Like the authors, every folder of
``train/JPEGImages`` is a candidate video (``meta.json`` is not needed for training). Object pasting reads
the dense masks ``<root>/train/Annotations/<video>/*.png``."""

from __future__ import annotations

from pathlib import Path

from rhmnet.data.io import DatasetError
from rhmnet.data.sample import ClipOptions
from rhmnet.data.video import VideoEntry, VideoScribbleDataset, finish_listing, pair_video_files

YTB_SKIP_DIVISOR = 5  # YouTube-VOS frames are already 5 apart: the curriculum's skip is divided by 5


def list_ytb_videos(
    root: str | Path, clip_length: int, split: str = "train", scribble_dir: str = "train_scribbles"
) -> list[VideoEntry]:
    """The usable training videos (sorted by name); unpaired videos are skipped with a counted warning."""
    root = Path(root)
    image_root = root / split / "JPEGImages"
    if not image_root.is_dir():
        raise DatasetError(f"YouTube-VOS: missing frame folder {image_root}")
    names = sorted(p.name for p in image_root.iterdir() if p.is_dir())
    if not names:
        raise DatasetError(f"YouTube-VOS: empty video set: no video folders in {image_root}")
    entries, skipped = [], {}
    for name in names:
        entry = pair_video_files(name, image_root / name, root / scribble_dir / name, skipped)
        if entry is not None:
            entries.append(entry)
    return finish_listing("YouTube-VOS", entries, skipped, len(names), clip_length, root)


class YtbScribbleDataset(VideoScribbleDataset):
    """Random scribbled clips of the YouTube-VOS training videos (frame gap = skip // 5)."""

    def __init__(self, root: str | Path, options: ClipOptions, init_skip: int = 0) -> None:
        super().__init__(
            list_ytb_videos(root, options.clip_length),
            options,
            name="YouTube-VOS",
            skip_divisor=YTB_SKIP_DIVISOR,
            init_skip=init_skip,
            mask_dir=lambda name: Path(root) / "train" / "Annotations" / name,
        )
        self.root = Path(root)
