"""YouTube-VOS scribble training set: ``<root>/train/JPEGImages/<video>/*.jpg`` with per-frame
scribbles ``<root>/train_scribbles/<video>/*.bmp``. Like the authors, every folder of
``train/JPEGImages`` is a candidate video (``meta.json`` is not needed for training). Object pasting reads
the dense masks ``<root>/train/Annotations/<video>/*.png``."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from rhmnet.data.io import DatasetError
from rhmnet.data.sample import ClipOptions
from rhmnet.data.video import VideoEntry, VideoScribbleDataset, finish_listing, pair_video_files
from rhmnet.guards import safe_name

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


@dataclass
class YtbVideo:
    """Listed frames of a video and, per frame, the objects whose first frame it is."""

    name: str
    frames: list[str]
    num_objects: int
    starts: dict[str, list[int]] = field(default_factory=dict)


def parse_meta(meta: object, meta_path: Path) -> list[YtbVideo]:
    """Videos of a YouTube-VOS ``meta.json`` (in file order), checked: video and frame names must be plain
    names (they become paths), object ids integers >= 1, frames lists of strings."""
    videos = meta.get("videos") if isinstance(meta, dict) else None
    if not isinstance(videos, dict):
        raise DatasetError(f"{meta_path}: expected {{'videos': {{<video>: {{'objects': {{...}}}}}}}}")
    if not videos:
        raise DatasetError(f"{meta_path}: lists no videos")
    out = []
    for name, info in videos.items():
        safe_name(name, meta_path, "video name")
        objects = info.get("objects") if isinstance(info, dict) else None
        if not isinstance(objects, dict):
            raise DatasetError(
                f"{meta_path}: video {name!r}: expected 'objects' to map object ids to {{'frames': [...]}}, "
                f"got {type(objects).__name__}"
            )
        starts: dict[str, list[int]] = defaultdict(list)
        frames: set[str] = set()
        for key, obj in objects.items():
            try:
                obj_id = int(key)
            except ValueError:
                raise DatasetError(
                    f"{meta_path}: video {name!r} has a non-numeric object id {key!r}"
                ) from None
            if obj_id < 1:
                raise DatasetError(f"{meta_path}: video {name!r}: object id {key!r} must be at least 1")
            listed = obj.get("frames") if isinstance(obj, dict) else None
            if not isinstance(listed, list) or not all(isinstance(f, str) for f in listed):
                raise DatasetError(
                    f"{meta_path}: object {key} of video {name!r}: expected {{'frames': [<frame name>, ...]}} "
                    f"(a list of strings), got {obj!r:.80}"
                )
            if not listed:
                raise DatasetError(f"{meta_path}: object {key} of video {name!r} lists no frames")
            for frame in listed:
                safe_name(frame, meta_path, f"frame name of video {name!r}")
            frames.update(listed)
            starts[min(listed)].append(obj_id)
        if not frames:
            raise DatasetError(f"{meta_path}: video {name!r} lists no objects")
        ids = [i for group in starts.values() for i in group]
        out.append(YtbVideo(name, sorted(frames), max(ids), {k: sorted(v) for k, v in starts.items()}))
    return out
