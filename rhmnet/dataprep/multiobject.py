"""Multi-object validation videos from single- (or multi-) object DAVIS-layout sequences: each held-out
sequence in turn is the target, and the objects of one or more other held-out sequences are pasted in
(:mod:`rhmnet.data.composition`: cut out with their masks, scaled, moved by one constant offset so that
their own motion is kept, in front of the target's objects). A donor shorter than the target plays
forwards and backwards (frame indices reflected at its ends).

Written in the DAVIS-2017 layout, ready for ``eval_davis.py`` and the demo::

    OUT/JPEGImages/480p/<video>/<frame>.jpg     OUT/Annotations/480p/<video>/<frame>.png (DAVIS palette)
    OUT/ImageSets/2017/val.txt                  OUT/valid_scribbles{g}/<video>.bmp (first frame)
    OUT/multiobject.json                        (the seed, sources and every paste's transform)

``<video>`` is ``<target>+<donor>[+<donor>]``. The scribbles are synthesised from the first composed mask:
strokes inside each object (value k), background strokes (value N+1) at least ``background_margin``
pixels from every object. Everything is deterministic given the seed: the same inputs and seed give
byte-identical files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rhmnet.data.composition import Composition, CompositionOptions, compose_clip, largest_id, object_ids
from rhmnet.data.io import (
    DatasetError,
    list_files,
    read_image,
    read_palette_png,
    write_image,
    write_json,
    write_palette_png,
    write_scribble,
)
from rhmnet.data.strokes import ScribbleStyle, scribble_from_labels
from rhmnet.dataprep.scribble_synthesis import rng_for
from rhmnet.dataprep.splits import RESOLUTION, davis_split, remove_outputs
from rhmnet.guards import prepare_output_dir, safe_name

MANIFEST = "multiobject.json"
EVAL_STYLE = ScribbleStyle(radius=(3, 5), background_margin=20.0)  # the demo's evaluation strokes, kept off objects
COMPOSITION = CompositionOptions(size_range=(0.25, 0.6), min_area=400, keep_fraction=0.3)
MAX_ATTEMPTS = 5  # compositions tried per video (each with its own random stream) before giving up


@dataclass
class SourceVideo:
    """A DAVIS-layout sequence held in memory: frame names, frames and dense masks."""

    name: str
    stems: list[str]
    frames: list[np.ndarray]
    masks: list[np.ndarray]


@dataclass
class VideoRecord:
    """What one written video is made of (the manifest's entry)."""

    name: str
    target: str
    donors: list[str]
    num_objects: int
    frames: int
    pastes: list[dict] = field(default_factory=list)


def load_sequence(root: Path, name: str) -> SourceVideo:
    """Every annotated frame of sequence ``name`` (frames and masks paired by name)."""
    masks = list_files(root / "Annotations" / RESOLUTION / name, (".png",))
    if not masks:
        raise DatasetError(f"{root}: sequence {name!r} has no masks in {root / 'Annotations' / RESOLUTION / name}")
    frames = []
    for mask in masks:
        frame = root / "JPEGImages" / RESOLUTION / name / f"{mask.stem}.jpg"
        if not frame.is_file():
            raise DatasetError(f"{root}: mask {mask} has no frame {frame}")
        frames.append(frame)
    return SourceVideo(name, [m.stem for m in masks], [read_image(f) for f in frames],
                       [read_palette_png(m) for m in masks])


def reflected_indices(length: int, count: int) -> list[int]:
    """``count`` frame indices into a video of ``length`` frames, played forwards and backwards."""
    if length == 1:
        return [0] * count
    period = 2 * (length - 1)
    return [t % period if t % period < length else period - t % period for t in range(count)]


def donor_clip(donor: SourceVideo, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The donor's frames and masks for ``count`` target frames (reflected at the donor's ends; its frame
    size may differ from the target's: the paste transform places it)."""
    order = reflected_indices(len(donor.frames), count)
    return [donor.frames[i] for i in order], [donor.masks[i] for i in order]


def plan_donors(names: Sequence[str], seed: int, donors: tuple[int, int]) -> dict[str, list[str]]:
    """For each target, ``donors[0]..donors[1]`` other sequences (drawn from the seed; never itself)."""
    rng = rng_for(seed, "multiobject-plan")
    plan = {}
    for target in names:
        others = [n for n in names if n != target]
        count = min(int(rng.integers(donors[0], donors[1] + 1)), len(others))
        plan[target] = [others[int(i)] for i in rng.choice(len(others), size=count, replace=False)]
    return plan


def first_frame_scribble(labels: np.ndarray, num_objects: int, rng: np.random.Generator) -> np.ndarray | None:
    """A first-frame scribble in the authors' file format (object k = k, background N+1), or ``None`` when
    an object of the frame got no stroke or there is no background stroke."""
    ids = object_ids(labels)
    scribble, skipped, has_background = scribble_from_labels(labels, ids, num_objects + 1, rng, EVAL_STYLE)
    return scribble if has_background and not skipped else None


def compose_video(
    target: SourceVideo, donors: Sequence[SourceVideo], seed: int, groups: int
) -> tuple[Composition, list[np.ndarray]]:
    """The composed video and its ``groups`` first-frame scribbles; the next random stream is tried when
    nothing could be placed or an object could not be scribbled."""
    clips = [donor_clip(d, len(target.frames)) for d in donors]
    for attempt in range(MAX_ATTEMPTS):
        rng = rng_for(seed, "multiobject-compose", target.name, attempt)
        composition = compose_clip(target.frames, target.masks, clips, rng, max_pasted=9, options=COMPOSITION)
        if not composition.pastes:
            continue
        num_objects = largest_id(composition.labels)
        scribbles = [first_frame_scribble(composition.labels[0], num_objects,
                                          rng_for(seed, "multiobject-scribble", target.name, attempt, g))
                     for g in range(groups)]
        if all(s is not None for s in scribbles):
            return composition, scribbles
    raise DatasetError(
        f"{target.name}: no composition with a visible, scribbled pasted object after {MAX_ATTEMPTS} attempts "
        f"(donors: {', '.join(d.name for d in donors)})"
    )


def make_multiobject_videos(
    root: str | Path,
    out: str | Path,
    sequences: Sequence[str] | None = None,
    seed: int = 0,
    donors: tuple[int, int] = (1, 2),
    groups: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> list[VideoRecord]:
    """Write one multi-object video per sequence of ``sequences`` (default: the validation part of
    ``root``'s split, :func:`rhmnet.dataprep.splits.davis_split`) under ``out``, which must be empty unless
    ``overwrite`` (then the earlier videos are replaced). Donors are drawn from the same sequences only."""
    root = Path(root)
    names = sorted(sequences) if sequences is not None else list(davis_split(root).val)
    for name in names:
        safe_name(name, root, "sequence name")
    if len(set(names)) < 2:
        raise DatasetError(f"multi-object videos need at least two distinct sequences, got {names}")
    if not 1 <= donors[0] <= donors[1]:
        raise DatasetError(f"donors per video must satisfy 1 <= MIN <= MAX, got {donors[0]} {donors[1]}")
    if groups < 1:
        raise DatasetError(f"scribble groups must be >= 1, got {groups}")
    out = Path(out)
    prepare_output_dir(out, overwrite, "--out")
    if overwrite:
        remove_outputs(out, ["JPEGImages", "Annotations", "ImageSets", MANIFEST,
                             *(p.name for p in out.glob("valid_scribbles*"))])
    plan = plan_donors(names, seed, donors)
    cache: dict[str, SourceVideo] = {}

    def source(name: str) -> SourceVideo:
        if name not in cache:
            cache[name] = load_sequence(root, name)
        return cache[name]

    records = []
    for target_name in tqdm(names, desc="multi-object videos", disable=not progress):
        target = source(target_name)
        donor_videos = [source(n) for n in plan[target_name]]
        composition, scribbles = compose_video(target, donor_videos, seed, groups)
        used = [donor_videos[p.donor].name for p in composition.pastes]
        video = safe_name("+".join([target_name, *used]), root, "video name")
        for stem, frame, label in zip(target.stems, composition.frames, composition.labels):
            write_image(out / "JPEGImages" / RESOLUTION / video / f"{stem}.jpg", frame, quality=95)
            write_palette_png(out / "Annotations" / RESOLUTION / video / f"{stem}.png", label)
        for group, scribble in enumerate(scribbles):
            write_scribble(out / f"valid_scribbles{group}" / f"{video}.bmp", scribble)
        pastes = [{"donor": donor_videos[p.donor].name, "source_ids": list(p.source_ids), "new_ids": list(p.new_ids),
                   **asdict(p.transform)} for p in composition.pastes]
        records.append(VideoRecord(video, target_name, used, largest_id(composition.labels), len(target.frames),
                                   pastes))
    (out / "ImageSets" / "2017").mkdir(parents=True, exist_ok=True)
    (out / "ImageSets" / "2017" / "val.txt").write_text("".join(f"{r.name}\n" for r in records))
    write_json(out / MANIFEST, {"seed": seed, "source": str(root), "sequences": names,
                                "videos": [asdict(r) for r in records]})
    return records
