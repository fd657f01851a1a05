"""Small checks shared by the command-line tools: output folders that must not hold an earlier run, names
read from files that must not escape their folder, and tensors that must be finite.

Each raises an error naming the path, key or tensor concerned (subclasses of ``ValueError``, so the
entry points print them as one-line messages).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath, PureWindowsPath

import torch

from rhmnet.errors import RHMNetError


class OutputExistsError(RHMNetError, ValueError):
    """An output folder already holds results and ``--overwrite`` was not given, or it is not a folder."""


class DeviceError(RHMNetError, ValueError):
    """A requested torch device that is invalid or not present on this machine."""


class UnsafeNameError(RHMNetError, ValueError):
    """A name read from a file (video, frame) would address a path outside its folder."""


def prepare_output_dir(path: str | Path, overwrite: bool, what: str = "output folder",
                       flag: str = "--overwrite") -> Path:
    """Create ``path`` or check that it is an empty folder; a non-empty one is an error unless ``overwrite``.

    Callers that pass ``overwrite=True`` remove their own earlier outputs (never the whole folder)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{what} {path} exists and is not a folder")
    if path.is_dir() and not overwrite:
        entries = sorted(p.name for p in path.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
            raise OutputExistsError(
                f"{what} {path} is not empty ({shown}); pass {flag} to replace earlier results, or choose "
                "another folder"
            )
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_device(spec: str) -> torch.device:
    """``torch.device(spec)``, checked to exist here (a clear error instead of a CUDA traceback later)."""
    try:
        device = torch.device(spec)
    except (RuntimeError, ValueError) as exc:
        raise DeviceError(f"invalid --device {spec!r}: {exc}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {spec} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"--device {spec}: only {torch.cuda.device_count()} GPU(s) visible")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"--device {spec} requested but MPS is not available on this machine")
    return device


def is_inside(child: str | Path, parent: str | Path) -> bool:
    """Whether ``child`` is ``parent`` or lies below it (after resolving links and ``..``)."""
    child, parent = Path(child).resolve(), Path(parent).resolve()
    return child == parent or parent in child.parents


def safe_name(name: object, source: str | Path, what: str = "name") -> str:
    """``name`` if it is a plain file/folder name (no separators, not ``.``/``..``, not absolute, no NUL);
    otherwise an :class:`UnsafeNameError` naming ``source`` (the file the name came from)."""
    if not isinstance(name, str) or not name:
        raise UnsafeNameError(f"{source}: {what} {name!r} is not a non-empty string")
    bad = (
        name in (".", "..")
        or "\x00" in name
        or "/" in name
        or "\\" in name
        or PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
        or PureWindowsPath(name).drive != ""
    )
    if bad:
        raise UnsafeNameError(
            f"{source}: {what} {name!r} is not a plain name (no path separators, '..' or absolute paths "
            "allowed); refusing to use it as a path"
        )
    return name


def non_finite_tensors(tensors: Mapping[str, torch.Tensor] | Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors that hold a NaN or Inf."""
    items = tensors.items() if isinstance(tensors, Mapping) else tensors
    return [name for name, value in items
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def file_mode(default: int = 0o666) -> int:
    """``default`` reduced by the process umask (what ``open()`` would give a new file)."""
    umask = os.umask(0)
    os.umask(umask)
    return default & ~umask


def load_weights_only(path: str | Path, what: str, error: type[Exception]) -> object:
    """``torch.load`` of a file that may come from elsewhere: tensors and plain containers only (a file
    that would run code on loading is refused); a missing file is FileNotFoundError, any other failure
    ``error`` naming the file and saying it is not a readable ``what``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise error(f"{path}: not a readable {what} ({type(exc).__name__}: {exc})") from None
