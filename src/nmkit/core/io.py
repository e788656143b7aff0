"""Shared readers and writers: atomic writes, output folders, safe array loading."""

from __future__ import annotations

import ast
import contextlib
import json
import math
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from nmkit.core import memory
from nmkit.core.errors import InputError, reason


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temp file next to ``path`` with the permissions a plain ``open()`` would give (umask)."""
    if not path.parent.is_dir():
        raise InputError(f"output {path}: the folder {path.parent} does not exist (create it first)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except PermissionError:
        raise InputError(f"output {path}: the folder {path.parent} is not writable") from None
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


NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def load_npy(path: Path, *, mmap: bool = False, allow_complex: bool = False, finite: bool = True) -> np.ndarray:
    """Load a ``.npy`` array as data: never unpickles, refuses complex numbers (nmkit's methods are real) and,
    for floats, NaN or infinities; checks the memory its header declares before reading it. Messages name the
    file and what was wrong, never what the file holds."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if handle.read(6) != NPY_MAGIC:
                raise InputError(f"{path}: not a .npy array file (no NumPy header)")
            handle.seek(0)
            version = np.lib.format.read_magic(handle)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise InputError(f"{path}: .npy format version {version[0]}.{version[1]} is not supported (1.0, 2.0)")
            shape, _, dtype = read_header[version](handle)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected a .npy file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    except (ValueError, SyntaxError, TypeError):
        raise InputError(f"{path}: damaged .npy header") from None
    check_dtype(dtype, path, allow_complex=allow_complex)
    if not mmap:
        memory.require(dtype.itemsize * math.prod(shape), str(path))
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError):
        raise InputError(f"{path}: damaged or truncated .npy file") from None
    if finite and not mmap:
        check_finite(array, path)
    return array


def load_npz(path: Path, text_keys: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` archive, with :func:`load_npy`'s rules (no pickles, no complex, finite); the
    arrays named in ``text_keys`` may hold strings instead."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != ZIP_MAGIC:
                raise InputError(f"{path}: not an .npz archive")
        with np.load(path, allow_pickle=False) as data:
            arrays = {}
            for key in data.files:
                arrays[key] = data[key]
                if key in text_keys and arrays[key].dtype.kind in "SU":
                    continue
                check_dtype(arrays[key].dtype, f"{path} [{key[:40]}]", allow_complex=False)
                check_finite(arrays[key], f"{path} [{key[:40]}]")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected an .npz file") from None
    except InputError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error):
        raise InputError(f"{path}: damaged .npz archive, or one holding pickled objects") from None
    return arrays


def array_to_text(array: np.ndarray) -> str:
    """An array as base64 of its .npy bytes: exact and compact inside JSON (task logs)."""
    import base64
    import io as bytes_io

    buffer = bytes_io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def array_from_text(text: str) -> np.ndarray:
    import base64
    import io as bytes_io

    return np.load(bytes_io.BytesIO(base64.b64decode(text)), allow_pickle=False)


def check_dtype(dtype: np.dtype, where, *, allow_complex: bool = False) -> None:
    if dtype.hasobject:
        raise InputError(f"{where}: holds Python objects (pickles); nmkit loads numbers only and never unpickles")
    if dtype.kind == "c" and not allow_complex:
        raise InputError(f"{where}: holds complex numbers; this method works on real data")
    if dtype.kind not in "biufc" or dtype.fields is not None:
        raise InputError(f"{where}: expected numbers, found dtype {str(dtype)[:40]}")


def check_finite(array: np.ndarray, where) -> None:
    if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
        raise InputError(f"{where}: contains NaN or infinite values")


def read_sparse_npz(path: Path, what: str = "matrix"):
    """A sparse matrix saved with ``scipy.sparse.save_npz`` (no pickles), checked like :func:`load_npz`: real,
    finite, and a declared size that fits in memory."""
    import scipy.sparse

    name = f"{what} {path}"
    arrays = load_npz(path, text_keys=("format",))
    if "format" not in arrays or "shape" not in arrays or arrays["shape"].shape != (2,):
        raise InputError(f"{name}: not a scipy sparse .npz (save it with scipy.sparse.save_npz)")
    rows, cols = (int(v) for v in arrays["shape"])
    stored = sum(a.nbytes for a in arrays.values())
    memory.require(stored * 3 + max(rows, cols) * 8 * 12, name)
    try:
        matrix = scipy.sparse.load_npz(path)
    except (ValueError, OSError, KeyError, TypeError):
        raise InputError(f"{name}: damaged scipy sparse .npz (its arrays do not fit its shape)") from None
    check_sparse_structure(matrix, name)
    return matrix


def read_number_lines(path: Path, name: str, expected: str, *, limit: float = math.inf) -> list[list[float]]:
    """The whitespace-separated numbers on each non-empty line of a text file. Errors give the line number and
    ``expected``, never the line's text; NaN, infinities and magnitudes beyond ``limit`` are refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{name}: no such file")
    memory.require(path.stat().st_size * 40, name)  # Python floats in lists
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{name}: not a text file; expected {expected}") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = [float(v) for v in line.split()]
        except ValueError:
            raise InputError(f"{name}: line {number} is not all numbers; expected {expected}") from None
        if not all(math.isfinite(v) for v in row):
            raise InputError(f"{name}: line {number} holds NaN or an infinite value")
        if any(abs(v) > limit for v in row):
            raise InputError(f"{name}: line {number} holds a number beyond {limit:g} in magnitude")
        rows.append(row)
    if not rows:
        raise InputError(f"{name}: empty; expected {expected}")
    return rows


def read_matrix_market(path: Path, what: str = "matrix", *, spd: bool = False):
    """A real Matrix Market file as a scipy sparse array (coordinate) or dense array (array format).

    The banner and the declared size are checked before anything is read: complex and Hermitian matrices are
    refused (nmkit's solvers are real), and so is a size whose vectors alone would not fit in memory. ``spd``:
    the matrix must be square with room for a full diagonal (fewer entries than rows cannot be positive definite).
    """
    import scipy.io
    import scipy.sparse

    name = f"{what} {path}"
    try:
        with open(path, "rb") as handle:
            banner = handle.readline(200).decode("ascii", "replace").split()
            line = b"%"
            while line.startswith(b"%") or not line.strip():
                line = handle.readline(200)
                if not line:
                    break
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a folder, expected a .mtx file") from None
    except OSError as exc:
        raise InputError(f"{name}: cannot be read ({exc.strerror})") from None
    if len(banner) != 5 or banner[0].lower() != "%%matrixmarket" or banner[1].lower() != "matrix" or \
            banner[2].lower() not in ("coordinate", "array"):
        raise InputError(f"{name}: not a Matrix Market matrix (expected a '%%MatrixMarket matrix coordinate ...' "
                         f"first line)")
    field, symmetry = banner[3].lower(), banner[4].lower()
    if field == "complex" or symmetry == "hermitian":
        raise InputError(f"{name}: is a complex matrix; this method solves real systems")
    if field not in ("real", "integer", "pattern", "double") or \
            symmetry not in ("general", "symmetric", "skew-symmetric"):
        raise InputError(f"{name}: unsupported Matrix Market type '{field} {symmetry}'")
    try:
        sizes = [int(v) for v in line.split()]
    except ValueError:
        sizes = []
    coordinate = banner[2].lower() == "coordinate"
    if len(sizes) != (3 if coordinate else 2) or min(sizes) < 0:
        raise InputError(f"{name}: the size line must give rows, columns" + (" and entries" if coordinate else ""))
    rows, cols = sizes[:2]
    entries = sizes[2] if coordinate else rows * cols
    if spd and (rows != cols or entries < rows):
        shape = f"{rows} x {cols} with {entries} entries"
        raise InputError(f"{name}: is {shape}; a positive definite matrix must be square with a non-zero diagonal")
    if symmetry != "general":
        entries *= 2
    # the matrix in CSR (value, index) plus the handful of length-n vectors a solver keeps
    memory.require(entries * 24 + max(rows, cols) * 8 * 12, name)
    try:
        matrix = scipy.io.mmread(str(path))
    except (OSError, ValueError, IndexError, TypeError, OverflowError):
        raise InputError(f"{name}: damaged Matrix Market data (entries do not match the declared size and "
                         f"type)") from None
    data = matrix.data if scipy.sparse.issparse(matrix) else np.asarray(matrix)
    check_finite(np.asarray(data), name)
    if coordinate and symmetry != "general":
        _refuse_repeated_entries(matrix, name)
    return matrix


def _refuse_repeated_entries(matrix, name: str) -> None:
    """A symmetric Matrix Market file stores one triangle; the reader mirrors it, so an entry given twice, or given
    in both triangles, would be silently summed (doubling the off-diagonals)."""
    rows, cols = matrix.shape
    keys = np.minimum(matrix.row, matrix.col).astype(np.int64) * max(rows, cols) + \
        np.maximum(matrix.row, matrix.col)
    offdiagonal = matrix.row != matrix.col
    unique, counts = np.unique(keys, return_counts=True)
    limit = np.where(np.isin(unique, keys[offdiagonal]), 2, 1)  # an off-diagonal entry and its mirror
    if np.any(counts > limit):
        key = int(unique[np.argmax(counts > limit)])
        i, j = divmod(key, max(rows, cols))
        raise InputError(f"{name}: entry ({j + 1}, {i + 1}) is given more than once (in both triangles, or "
                         f"repeated); a symmetric file stores each entry of one triangle once")


def check_sparse_structure(matrix, name: str) -> None:
    """Refuse a compressed sparse matrix whose index arrays are inconsistent (lengths, a non-monotone ``indptr``,
    column numbers outside the shape) before compiled code indexes memory with them."""
    if matrix.format in ("csr", "csc", "bsr"):
        try:
            matrix.check_format(full_check=True)
        except (ValueError, TypeError):
            raise InputError(f"{name}: inconsistent sparse structure (indptr must rise from 0 to the number of "
                             f"entries, indices must lie inside the shape)") from None


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
        raise InputError(f"{what} {path}: cannot be loaded ({reason(exc)})") from None
    if not isinstance(saved, dict):
        raise InputError(f"{what} {path}: expected a {name} written by a train run")
    check_finite_tensors(saved, f"{what} {path}")
    return saved, path


def check_finite_tensors(value, name: str) -> None:
    """Refuse NaN or infinite values in any floating-point tensor inside ``value`` (dicts and lists walked)."""
    import torch

    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        for item in value:
            check_finite_tensors(item, name)
    elif isinstance(value, torch.Tensor) and value.is_floating_point() and value.numel():
        value = value.detach() if value.dtype.itemsize > 1 else value.detach().to(torch.float16)  # float8: no aminmax
        if not bool(torch.isfinite(torch.stack(torch.aminmax(value))).all()):  # NaN propagates; no mask is made
            raise InputError(f"{name}: holds NaN or infinite weights")


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
