"""The ``--out`` folder of one run: locked against concurrent runs, its files listed so ``--force`` clears
exactly what nmkit wrote there before, and removed again when a run that created it fails before writing."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from nmkit.core import io
from nmkit.core.errors import InputError

LOCK = ".nmkit.lock"
MANIFEST = ".nmkit-files.json"
OWN = {LOCK, MANIFEST}


@contextlib.contextmanager
def output_folder(path: Path, *, force: bool, resume: bool, command: str | None = None) -> Iterator[Path]:
    """Create (or take over) ``path`` for one run of ``command``; yields it while holding the folder's lock.

    A non-empty folder is refused unless ``force`` (its earlier nmkit files are deleted first), ``resume`` (the
    run continues what is there), or it holds nothing but an earlier run of the same command (a Makefile's
    rerun: that output is replaced). Every file written into the folder through :mod:`nmkit.core.io` is added
    to the folder's manifest, with the command that wrote it.
    """
    path = Path(path)
    created = _create(path)
    lock = _lock(path, created)
    try:
        others = sorted(entry.name for entry in path.iterdir() if entry.name not in OWN)
        earlier = _manifest_of(path)
        rerun = command is not None and earlier["command"] == command and set(others) <= set(earlier["files"])
        if others and not (force or resume or rerun):
            raise InputError(f"--out {path}: folder is not empty ({len(others)} entries that are not an earlier "
                             f"nmkit {command or ''} run's output); pass --force to replace nmkit's earlier output")
        if (force or rerun) and not resume:
            _clear_earlier_output(path)
        with io.recording_writes(path, lambda name: _add_to_manifest(path, name, command)):
            yield path
    except BaseException:
        if created is not None:
            _remove_if_only_own(path, created)
        raise
    finally:
        _unlock(path, lock)


def _create(path: Path) -> Path | None:
    """Make the folder and missing parents; the topmost folder made (None if it existed)."""
    if path.is_symlink() and not path.exists():
        raise InputError(f"--out {path}: is a link to a place that does not exist")
    if path.exists():
        if not path.is_dir():
            raise InputError(f"--out {path}: exists and is not a folder")
        return None
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        raise InputError(f"--out {path}: a part of the path exists and is not a folder") from None
    except NotADirectoryError:
        raise InputError(f"--out {path}: a part of the path is a file, not a folder") from None
    except OSError as exc:
        raise InputError(f"--out {path}: cannot create the folder ({exc.strerror})") from None
    return missing[-1] if missing else None


def _lock(path: Path, created: Path | None) -> int:
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if created is not None:
            _remove_if_only_own(path, created)
        raise InputError(f"--out {path}: cannot write there ({exc.strerror})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        raise InputError(f"--out {path}: another nmkit run{f' (pid {holder})' if holder.isdigit() else ''} is "
                         f"writing there; wait for it or choose another folder") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _unlock(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        (path / LOCK).unlink()
    os.close(fd)


def _manifest(path: Path) -> list[str]:
    """Names of the files nmkit wrote into ``path`` (none known without the list: nothing is deleted)."""
    return _manifest_of(path)["files"]


def _manifest_of(path: Path) -> dict:
    """``{"command": the command that wrote the files (or None), "files": [names]}``."""
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"command": None, "files": []}
    if isinstance(data, list):  # the first format: names only
        data = {"command": None, "files": data}
    files = data.get("files") if isinstance(data, dict) else None
    command = data.get("command") if isinstance(data, dict) else None
    return {"command": command if isinstance(command, str) else None,
            "files": [n for n in files if isinstance(n, str)] if isinstance(files, list) else []}


def _add_to_manifest(path: Path, name: str, command: str | None) -> None:
    names = _manifest(path)
    if name not in names:
        io.write_json(path / MANIFEST, {"command": command, "files": [*names, name]}, record=False)


def _clear_earlier_output(path: Path) -> None:
    """Delete the plain files an earlier run listed (names inside this folder only), then the list."""
    for name in _manifest(path):
        target = path / name
        if name in OWN or Path(name).name != name or target.is_symlink() or not target.is_file():
            continue
        target.unlink()
    (path / MANIFEST).unlink(missing_ok=True)


def _remove_if_only_own(path: Path, created: Path) -> None:
    """Remove a folder this run made when nothing but nmkit's bookkeeping is in it (and the parents it made)."""
    with contextlib.suppress(OSError):
        for name in OWN:
            (path / name).unlink(missing_ok=True)
        folder = path
        while True:
            folder.rmdir()
            if folder == created:
                break
            folder = folder.parent
