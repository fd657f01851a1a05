"""DAVIS-2017 scribble training set: ``<root>/JPEGImages/480p/<seq>/*.jpg`` with per-frame scribbles
``<root>/train_scribbles/<seq>/*.bmp`` for the sequences of ``<root>/ImageSets/<imset>`` (and the dense
masks ``<root>/Annotations/480p/<seq>/*.png`` when objects are pasted)."""

from __future__ import annotations

from pathlib import Path

from rhmnet.data.io import DatasetError, read_image_set
from rhmnet.data.sample import ClipOptions
from rhmnet.data.video import VideoEntry, VideoScribbleDataset, finish_listing, pair_video_files

DAVIS_TRAIN_IMSET = "2017/train.txt"
DAVIS_RESOLUTION = "480p"


def davis_image_dir(root: str | Path, resolution: str = DAVIS_RESOLUTION) -> Path:
    """``<root>/JPEGImages/<resolution>``."""
    return Path(root) / "JPEGImages" / resolution


def list_davis_videos(
    root: str | Path,
    clip_length: int,
    imset: str = DAVIS_TRAIN_IMSET,
    resolution: str = DAVIS_RESOLUTION,
    scribble_dir: str = "train_scribbles",
) -> list[VideoEntry]:
    """The usable training videos of the image set. A listed sequence without frames is an error;
    one whose frame and scribble files do not pair up is skipped with a counted warning."""
    root = Path(root)
    names = read_image_set(root / "ImageSets" / imset)
    entries, skipped = [], {}
    for name in names:
        image_dir = davis_image_dir(root, resolution) / name
        if not image_dir.is_dir():
            raise DatasetError(
                f"DAVIS: sequence {name!r} listed in {root / 'ImageSets' / imset} has no frames: "
                f"missing folder {image_dir}"
            )
        entry = pair_video_files(name, image_dir, root / scribble_dir / name, skipped)
        if entry is not None:
            entries.append(entry)
    return finish_listing("DAVIS", entries, skipped, len(names), clip_length, root)


class DavisScribbleDataset(VideoScribbleDataset):
    """Random scribbled clips of the DAVIS training videos (frame gap = the curriculum's skip)."""

    def __init__(
        self, root: str | Path, options: ClipOptions, imset: str = DAVIS_TRAIN_IMSET, init_skip: int = 0
    ) -> None:
        super().__init__(
            list_davis_videos(root, options.clip_length, imset),
            options,
            name="DAVIS",
            skip_divisor=1,
            init_skip=init_skip,
            mask_dir=lambda name: Path(root) / "Annotations" / DAVIS_RESOLUTION / name,
        )
        self.root = Path(root)
