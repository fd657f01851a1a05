"""Small checks shared by the command-line tools: output folders that must not hold an earlier run, names
read from files that must not escape their folder, and tensors that must be finite; and the one way
results are written: into a hidden staging folder, moved into place only once the run has succeeded.

Each raises an error naming the path, key or tensor concerned (subclasses of ``ValueError``, so the
entry points print them as one-line messages); a write that fails (read-only folder, full disk) is an
:class:`OutputWriteError` (exit status 1: the run failed).
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from types import TracebackType
from typing import Optional

import torch

from rhmnet.errors import RHMNetError


class OutputExistsError(RHMNetError, ValueError):
    """An output folder already holds results and ``--overwrite`` was not given, or it is not a folder."""


class DeviceError(RHMNetError, ValueError):
    """A requested torch device that is invalid or not present on this machine."""


class UnsafeNameError(RHMNetError, ValueError):
    """A name read from a file (video, frame) would address a path outside its folder."""


class OutputWriteError(RHMNetError, OSError):
    """Results could not be written (read-only folder, full disk): the run failed, earlier results stay."""

    exit_code = 1


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


def safe_name(name: object, source: str | Path, what: str = "name", line: Optional[int] = None) -> str:
    """``name`` if it is a plain file/folder name (no separators, not ``.``/``..``, not absolute, no NUL);
    otherwise an :class:`UnsafeNameError` naming ``source`` (the file the name came from, or the option)
    and its ``line``. The one rule for every name that comes from data and becomes part of a path."""
    if line is not None:
        source = f"{source}, line {line}"
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
    except pickle.UnpicklingError:
        raise error(
            f"{path}: not a readable {what} (it holds Python objects other than tensors and plain containers, "
            "which could run code when loaded: refused)"
        ) from None
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0]  # torch's explanations run over many lines
        raise error(f"{path}: not a readable {what} ({type(exc).__name__}: {reason})") from None


def read_name_list(path: str | Path, what: str = "sequence name") -> list[str]:
    """The names listed one per line in ``path`` (blank lines skipped, surrounding spaces removed), each
    checked by :func:`safe_name` (an error naming the file and the line)."""
    path = Path(path)
    names = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            names.append(safe_name(line.strip(), path, what, number))
    return names


def _symlink_on_the_way(folder: Path, item: str) -> Optional[Path]:
    """The first symbolic link among ``folder/item`` and the folders between ``folder`` and it."""
    path = folder
    for part in Path(item).parts:
        path = path / part
        if path.is_symlink():
            return path
    return None


def check_output(folder: str | Path, overwrite: bool, items: Optional[Sequence[str]] = None,
                 what: str = "output folder", flag: str = "--overwrite") -> Path:
    """Check, before any work, that results may be written to ``folder``: it is a folder (or absent);
    without ``overwrite`` it holds no earlier result: nothing at all, or, when ``items`` (paths relative to
    ``folder``) are given, none of them; none of ``items`` is or lies behind a symbolic link."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputExistsError(f"{what} {folder} exists and is not a folder")
    if not folder.is_dir():
        return folder
    for item in items or ():
        link = _symlink_on_the_way(folder, item)
        if link is not None:
            raise OutputExistsError(f"{link} is a symbolic link; refusing to replace it or write through it")
    if overwrite:
        return folder
    existing = sorted(p.name for p in folder.iterdir()) if items is None else [
        item for item in items if (folder / item).exists()]
    if existing:
        shown = ", ".join(existing[:5]) + (", ..." if len(existing) > 5 else "")
        held = "is not empty" if items is None else "already holds results"
        raise OutputExistsError(
            f"{what} {folder} {held} ({shown}); pass {flag} to replace earlier results, or choose another folder"
        )
    return folder


def prepare_output_dir(path: str | Path, overwrite: bool, what: str = "output folder",
                       flag: str = "--overwrite") -> Path:
    """Create ``path`` or check that it is an empty folder (:func:`check_output`); a non-empty one is an
    error unless ``overwrite``. Callers that pass ``overwrite=True`` remove their own earlier outputs (never
    the whole folder); prefer :class:`StagedOutput`, which replaces them only after success."""
    path = check_output(path, overwrite, what=what, flag=flag)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write_failed(path: Path, exc: OSError) -> OutputWriteError:
    return OutputWriteError(f"cannot write {path}: {exc.strerror or exc}; earlier results were left as they were")


class StagedOutput:
    """Results of one run written into a hidden staging folder inside ``folder`` (``with ... as stage``) and
    moved into place when the block ends without an error: each of ``items`` (paths relative to ``folder``)
    replaces its earlier version (an earlier one that the run did not write again is removed: no stale
    result stays). On an error the staging folder is removed and every earlier result is left untouched.
    Symbolic links are never followed: an item that is or lies behind one is an error. Check the folder
    with :func:`check_output` before the work starts."""

    def __init__(self, folder: str | Path, items: Sequence[str]) -> None:
        self.folder, self.items = Path(folder), list(items)
        self.stage: Optional[Path] = None
        self.created = False

    def __enter__(self) -> Path:
        check_output(self.folder, True, self.items)
        self.created = not self.folder.exists()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.stage = Path(tempfile.mkdtemp(prefix=".partial-", dir=self.folder))
        except OSError as exc:
            raise _write_failed(self.folder, exc) from None
        return self.stage

    def __exit__(self, exc_type: Optional[type[BaseException]], exc: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        assert self.stage is not None
        try:
            if exc_type is None:
                self._commit(self.stage)
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
            if self.created and not any(self.folder.iterdir()):  # a failed first run leaves no empty folder
                self.folder.rmdir()

    def _commit(self, stage: Path) -> None:
        check_output(self.folder, True, self.items)  # no link appeared while the run was going
        try:
            replaced = Path(tempfile.mkdtemp(prefix=".replaced-", dir=self.folder))
        except OSError as exc:
            raise _write_failed(self.folder, exc) from None
        moved: list[tuple[Path, Optional[Path]]] = []  # (result, its earlier version set aside)
        try:
            for number, item in enumerate(dict.fromkeys(self.items)):
                new, old = stage / item, self.folder / item
                backup = replaced / str(number) if old.exists() else None
                if backup is not None:
                    os.replace(old, backup)
                moved.append((old, backup))
                if new.exists():
                    old.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(new, old)
        except OSError as exc:
            for old, backup in reversed(moved):  # put every earlier result back
                _remove(old)
                if backup is not None:
                    os.replace(backup, old)
            replaced.rmdir()  # empty again (kept, with the earlier results, if putting one back failed)
            raise _write_failed(self.folder / item, exc) from None
        shutil.rmtree(replaced, ignore_errors=True)


def _remove(path: Path) -> None:
    """Remove a file, link or folder tree (never what a link points to)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def replaced_on_success(folder: str | Path) -> Iterator[None]:
    """For a run that writes straight into ``folder`` (whose outputs record their own paths): the earlier
    contents are set aside in a hidden folder inside it for the block, removed when the block succeeds and
    put back, after whatever the block wrote is removed, when it fails. Links are moved, never followed."""
    folder = Path(folder)
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    if not entries:
        yield
        return
    try:
        aside = Path(tempfile.mkdtemp(prefix=".previous-", dir=folder))
        for path in entries:
            os.replace(path, aside / path.name)
    except OSError as exc:
        raise _write_failed(folder, exc) from None
    try:
        yield
    except BaseException:
        for path in folder.iterdir():
            if path != aside:
                _remove(path)
        for path in aside.iterdir():
            os.replace(path, folder / path.name)
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)


def replace_file(path: str | Path, write: Callable[[Path], None]) -> Path:
    """``write(temporary)`` into a hidden sibling of ``path``, then replace ``path`` with it atomically; a
    failed write leaves ``path`` as it was. ``path`` must not be a symbolic link."""
    path = Path(path)
    if path.is_symlink():
        raise OutputExistsError(f"{path} is a symbolic link; refusing to replace it or write through it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.partial-", dir=path.parent)
        os.close(handle)
    except OSError as exc:
        raise _write_failed(path, exc) from None
    temporary = Path(name)
    try:
        write(temporary)
        os.chmod(temporary, file_mode())
        os.replace(temporary, path)
    except OSError as exc:
        raise _write_failed(path, exc) from None
    finally:
        temporary.unlink(missing_ok=True)
    return path
