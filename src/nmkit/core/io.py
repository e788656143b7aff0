"""Shared readers and writers: atomic writes, output folders, safe array loading."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from nmkit.core.errors import InputError


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temp file next to ``path`` with the permissions a plain ``open()`` would give (umask)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, tmp


_recorders: dict[Path, Callable[[str], None]] = {}
"""Folders whose written files are reported by name (the run's --out folder keeps a list of its files)."""


@contextlib.contextmanager
def recording_writes(folder: Path, record: Callable[[str], None]) -> Iterator[None]:
    """While active, ``record(name)`` is called for every file this module writes directly into ``folder``."""
    key = Path(folder).resolve()
    _recorders[key] = record
    try:
        yield
    finally:
        _recorders.pop(key, None)


def _written(path: Path) -> None:
    record = _recorders.get(Path(path).parent.resolve())
    if record is not None:
        record(Path(path).name)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None], *, record: bool = True) -> Path:
    """Write through ``write(fileobj)`` into a temp file beside ``path``, then rename over it."""
    path = Path(path)
    if record:
        _written(path)  # listed before it exists: a run killed after the rename still has it on the list
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str, *, record: bool = True) -> Path:
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), record=record)


def write_json(path: Path, data, *, record: bool = True) -> Path:
    """Strict JSON (no bare NaN/Infinity: :func:`nmkit.core.report.jsonable` turns them into null first)."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n", record=record)


def load_npy(path: Path, *, mmap: bool = False) -> np.ndarray:
    """Load a ``.npy`` array without ever unpickling objects."""
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (ValueError, OSError) as exc:
        raise InputError(f"{path}: not a readable .npy array without pickles ({exc})") from None


class NpyStreamWriter:
    """Append 1-D chunks to a ``.npy`` file whose final length is unknown up front.

    The data goes to a temp file after a header slot sized for the largest possible length; on
    ``close()`` the real header is written into that slot (padded with spaces, which the format
    allows) and the file is renamed into place. Nothing appears at ``path`` unless the stream ends
    cleanly.
    """

    def __init__(self, path: Path, dtype) -> None:
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.length = 0
        self._slot = len(self._header(2**63 - 1))
        _written(self.path)
        fd, self._tmp = _temp_beside(self.path)
        self._file = os.fdopen(fd, "wb")
        self._file.write(b"\0" * self._slot)

    def _header(self, length: int, pad_to: int = 0) -> bytes:
        head = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (length,)}
        text = repr(head)
        body_len = max(pad_to - 10, len(text) + 1)
        body_len += -(10 + body_len) % 64  # header + preamble aligned to 64 bytes
        body = (text.ljust(body_len - 1) + "\n").encode("latin1")
        return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body

    def write(self, chunk: np.ndarray) -> None:
        self._file.write(np.ascontiguousarray(chunk, dtype=self.dtype).tobytes())
        self.length += len(chunk)

    def close(self) -> Path:
        self._file.seek(0)
        header = self._header(self.length, pad_to=self._slot)
        assert len(header) == self._slot and ast.literal_eval(header[10:].decode("latin1"))
        self._file.write(header)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        self._file.close()
        Path(self._tmp).unlink(missing_ok=True)

    def __enter__(self) -> NpyStreamWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def load_saved_model(path: Path, name: str = "model.pt") -> tuple[dict, Path]:
    """The dict in a file a train run wrote (``path`` may be the run's folder, holding ``name``), loaded with
    ``weights_only`` so no code is unpickled; returns it and the file's path."""
    import torch

    path = Path(path)
    what = Path(name).stem
    if path.is_dir():
        path = path / name
    if not path.is_file():
        raise InputError(f"{what} {path}: no such file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for foreign files
        raise InputError(f"{what} {path}: cannot be loaded ({str(exc).splitlines()[0][:100]})") from None
    if not isinstance(saved, dict):
        raise InputError(f"{what} {path}: expected a {name} written by a train run")
    return saved, path


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an RGB image ([h, w, 3], floats in [0, 1] or uint8) as an 8-bit PNG (zlib, no extra deps)."""
    pixels = np.asarray(image)
    if pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)
    height, width, _ = pixels.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + \
        chunk(b"IEND", b"")
    return atomic_write(path, lambda fh: fh.write(png))
