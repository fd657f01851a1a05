"""DAVIS semi-supervised evaluation of a results folder (no model, no JPEG images needed).

Reads ``RES/<sequence>/<frame>.png`` and ``ROOT/Annotations/480p/<sequence>/<frame>.png`` for the sequences
of ``ROOT/ImageSets/<year>/<set>.txt`` and computes J and F per object and frame exactly like the official
DAVIS 2017 toolkit:

* frames: the annotation PNGs of the sequence, sorted; the first and the last are excluded;
* objects: 1..max id of the first annotation (DAVIS-2016: object 1 only); object ids of later ground-truth
  frames above that count as background, as in the toolkit;
* void (255) ground-truth pixels count as background, as the toolkit does in the semi-supervised task
  (``exclude_void=True`` removes them from both masks instead);
* a result PNG holding an object id the ground truth lacks is an error (the toolkit stops there too), as
  are missing result PNGs and result PNGs of another size; fewer objects in the results are zero masks.

The CSV files have the toolkit's names and columns. ``workers`` > 1 evaluates sequences in threads (the
decoding and array work release the GIL; processes are avoided because forking after OpenCV/PyTorch
thread pools have started can deadlock). On 2 cores one thread is as fast, OpenCV already uses both.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from rhmnet.data.io import read_image_set
from rhmnet.errors import RHMNetError
from rhmnet.evaluation.metrics import db_statistics, object_scores

VOID_LABEL = 255
GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


class EvaluationError(RHMNetError, ValueError):
    """Inconsistent or missing evaluation input; the message names the file or folder."""


@dataclass
class ObjectResult:
    """Per-frame J and F of one object (evaluated frames only) and their statistics."""

    name: str  # "<sequence>_<object id>"
    j: np.ndarray
    f: np.ndarray
    j_stats: tuple[float, float, float] = field(init=False)
    f_stats: tuple[float, float, float] = field(init=False)

    def __post_init__(self) -> None:
        self.j_stats = db_statistics(self.j)
        self.f_stats = db_statistics(self.f)


@dataclass
class DavisResult:
    """All objects of an evaluation, in sequence order."""

    objects: list[ObjectResult]

    def global_metrics(self) -> dict[str, float]:
        """The toolkit's global row: means over objects of mean, recall and decay of J and F."""
        if not self.objects:
            return dict.fromkeys(GLOBAL_COLUMNS, float("nan"))
        j = np.array([o.j_stats for o in self.objects])
        f = np.array([o.f_stats for o in self.objects])
        jm, jr, jd = (np.mean(j[:, i]) for i in range(3))
        fm, fr, fd = (np.mean(f[:, i]) for i in range(3))
        values = ((jm + fm) / 2.0, jm, jr, jd, fm, fr, fd)
        return {k: float(v) for k, v in zip(GLOBAL_COLUMNS, values)}

    def per_object(self) -> list[tuple[str, float, float]]:
        """(name, J-Mean, F-Mean) per object."""
        return [(o.name, o.j_stats[0], o.f_stats[0]) for o in self.objects]


def _fmt(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.3f}"


def write_csvs(result: DavisResult, folder: str | Path, subset: str) -> tuple[Path, Path]:
    """Write ``global_results-<set>.csv`` and ``per-sequence_results-<set>.csv`` (values with 3 decimals)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    global_path = folder / f"global_results-{subset}.csv"
    seq_path = folder / f"per-sequence_results-{subset}.csv"
    metrics = result.global_metrics()
    global_path.write_text(
        ",".join(GLOBAL_COLUMNS) + "\n" + ",".join(_fmt(metrics[k]) for k in GLOBAL_COLUMNS) + "\n"
    )
    rows = [",".join(SEQUENCE_COLUMNS)] + [f"{n},{_fmt(jm)},{_fmt(fm)}" for n, jm, fm in result.per_object()]
    seq_path.write_text("\n".join(rows) + "\n")
    return global_path, seq_path


def format_tables(result: DavisResult, subset: str) -> str:
    """The global and per-object tables as text, like the toolkit prints them."""
    metrics = result.global_metrics()
    lines = [
        f"--------------------------- Global results for {subset} ---------------------------",
        " ".join(f"{k:>9}" for k in GLOBAL_COLUMNS),
        " ".join(f"{metrics[k]:>9.3f}" for k in GLOBAL_COLUMNS),
        f"\n---------- Per sequence results for {subset} ----------",
        f"{'Sequence':>24} {'J-Mean':>8} {'F-Mean':>8}",
    ]
    lines += [f"{n:>24} {jm:>8.3f} {fm:>8.3f}" for n, jm, fm in result.per_object()]
    return "\n".join(lines)


def image_set_path(davis_root: str | Path, year: int, subset: str) -> Path:
    """``ROOT/ImageSets/<2016|2017>/<set>.txt``."""
    return Path(davis_root) / "ImageSets" / f"20{int(year) % 100:02d}" / f"{subset}.txt"


def read_sequence_list(davis_root: str | Path, year: int, subset: str) -> list[str]:
    """Sequence names of an image set, in file order, without duplicates (each a plain name)."""
    return list(dict.fromkeys(read_image_set(image_set_path(davis_root, year, subset))))


def annotation_dir(davis_root: str | Path, sequence: str) -> Path:
    return Path(davis_root) / "Annotations" / "480p" / sequence


def annotation_files(davis_root: str | Path, sequence: str) -> list[Path]:
    """Sorted annotation PNGs of a sequence; an error naming the folder when there are none."""
    folder = annotation_dir(davis_root, sequence)
    files = sorted(folder.glob("*.png")) if folder.is_dir() else []
    if not files:
        raise EvaluationError(f"missing sequence {sequence!r}: no annotation PNGs in {folder}")
    return files


def read_labels(path: Path) -> np.ndarray:
    """A single-channel PNG as a uint8 array of its raw values (palette indices)."""
    if not path.is_file():
        raise EvaluationError(f"missing file: {path}")
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise EvaluationError(f"{path}: expected a palette or grey PNG, got mode {image.mode}")
            return np.asarray(image, dtype=np.uint8)
    except OSError as exc:
        raise EvaluationError(f"cannot read {path}: {exc}") from None


def first_frame_objects(gt_first: np.ndarray, single_object: bool) -> int:
    """Objects evaluated: the largest id of the first annotation (void ignored); 1 for DAVIS-2016."""
    labels = np.where(gt_first == VOID_LABEL, 0, gt_first)
    num = int(labels.max()) if labels.size else 0
    return min(num, 1) if single_object else num


def evaluate_sequence(
    gt_dir: str | Path, res_dir: str | Path, single_object: bool = False, exclude_void: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Per-object, per-frame J and F (shape (objects, frames - 2)) of one sequence."""
    gt_dir, res_dir = Path(gt_dir), Path(res_dir)
    gt_files = sorted(gt_dir.glob("*.png"))
    if len(gt_files) < 3:
        raise EvaluationError(
            f"{gt_dir}: need at least 3 annotated frames (first and last are excluded), found {len(gt_files)}"
        )
    if not res_dir.is_dir():
        raise EvaluationError(f"missing results for sequence {gt_dir.name!r}: no folder {res_dir}")
    first = read_labels(gt_files[0])
    num_objects = first_frame_objects(first, single_object)
    files = gt_files[1:-1]
    gt = np.empty((len(files), *first.shape), dtype=np.uint8)
    res = np.empty_like(gt)
    for i, gt_path in enumerate(files):
        gt[i] = _checked(read_labels(gt_path), first.shape, gt_path)
        res_path = res_dir / gt_path.name
        frame = read_labels(res_path)
        if frame.shape != first.shape:
            raise EvaluationError(
                f"{res_path}: result is {frame.shape[1]}x{frame.shape[0]} (WxH) but the "
                f"annotation is {first.shape[1]}x{first.shape[0]}"
            )
        top = int(frame.max())
        if top > num_objects:
            raise EvaluationError(
                f"{res_path}: object id {top} is not in the ground truth of sequence "
                f"{gt_dir.name!r} (objects 1..{num_objects})"
            )
        res[i] = frame
    void = gt == VOID_LABEL
    if void.any():
        gt[void] = 0
    return object_scores(gt, res, num_objects, void if exclude_void else None)


def _checked(labels: np.ndarray, shape: tuple[int, ...], path: Path) -> np.ndarray:
    if labels.shape != shape:
        raise EvaluationError(
            f"{path}: annotation size {labels.shape} differs from the first frame's {shape}"
        )
    return labels


def _job(args: tuple[str, str, str, bool, bool]) -> tuple[str, np.ndarray, np.ndarray]:
    sequence, gt_dir, res_dir, single_object, exclude_void = args
    j, f = evaluate_sequence(gt_dir, res_dir, single_object, exclude_void)
    return sequence, j, f


def evaluate_results(
    results_path: str | Path,
    davis_root: str | Path,
    year: int = 2017,
    subset: str = "val",
    sequences: list[str] | None = None,
    workers: int | None = None,
    exclude_void: bool = False,
    progress: bool = True,
) -> DavisResult:
    """Evaluate ``results_path`` against the DAVIS annotations (see the module docstring).

    ``sequences`` defaults to the image set ``ROOT/ImageSets/<year>/<set>.txt``; ``workers`` (default 1)
    is the number of threads.
    """
    results_path, davis_root = Path(results_path), Path(davis_root)
    if not results_path.is_dir():
        raise EvaluationError(f"results folder not found: {results_path}")
    names = sequences if sequences is not None else read_sequence_list(davis_root, year, subset)
    single = int(year) % 100 == 16
    jobs = []
    for seq in names:
        folder = annotation_dir(davis_root, seq)
        if not folder.is_dir():
            raise EvaluationError(f"missing sequence {seq!r}: no annotation folder {folder}")
        jobs.append((seq, str(folder), str(results_path / seq), single, exclude_void))
    workers = max(1, min(workers or 1, len(jobs)))
    bar = tqdm(total=len(jobs), desc="evaluating", unit="seq", disable=not progress)
    outputs = []
    if workers <= 1:
        for job in jobs:
            outputs.append(_job(job))
            bar.update()
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for out in pool.map(_job, jobs):
                outputs.append(out)
                bar.update()
    bar.close()
    objects = [ObjectResult(f"{seq}_{i + 1}", j[i], f[i]) for seq, j, f in outputs for i in range(j.shape[0])]
    return DavisResult(objects)
