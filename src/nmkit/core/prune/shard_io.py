"""Safetensors files one tensor at a time, so a checkpoint larger than memory can be read and rewritten.

Reading: the header is checked by safetensors itself (``safe_open``: offsets cover the file exactly, sizes match
dtype x shape), then each tensor is read by offset into its own buffer. Writing: a file with the same tensors
in the layout ``safetensors.torch.save`` produces (tensors ordered by dtype, then name; the JSON header padded
with spaces to 8 bytes), byte for byte, with each tensor written at its offset as soon as it is ready.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO

import torch

from nmkit.core.errors import InputError

SAFETENSORS_ERROR = ("not a readable safetensors file (expected an 8-byte header length, a JSON header of tensors "
                     "with dtypes such as F32, F16, BF16, I64, and their data)")
DTYPES = {name: getattr(torch, attribute) for name, attribute in (
    ("F64", "float64"), ("F32", "float32"), ("F16", "float16"), ("BF16", "bfloat16"), ("I64", "int64"),
    ("I32", "int32"), ("I16", "int16"), ("I8", "int8"), ("U8", "uint8"), ("BOOL", "bool"), ("U16", "uint16"),
    ("U32", "uint32"), ("U64", "uint64"), ("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"))
    if hasattr(torch, attribute)}
"""Safetensors dtype names and the torch dtypes they hold."""
NAMES = {dtype: name for name, dtype in DTYPES.items()}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of a shard: its dtype, shape and byte range in the file."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def numel(self) -> int:
        return (self.end - self.start) // self.dtype.itemsize


@dataclass(frozen=True)
class Shard:
    """A safetensors file's table of contents: tensors in name order (as ``safe_open`` lists them), metadata."""

    path: Path
    entries: list[TensorEntry]
    metadata: dict[str, str] | None

    def tensors(self, names: set[str] | None = None) -> Iterator[tuple[TensorEntry, torch.Tensor]]:
        """Each tensor (of ``names``, if given) in name order, read into a buffer of its own, the next one read
        on a second thread meanwhile (disk and compute overlap; two tensors in memory at a time)."""
        chosen = [entry for entry in self.entries if names is None or entry.name in names]
        with open(self.path, "rb") as handle, ThreadPoolExecutor(1) as reader:
            pending = reader.submit(read_tensor, handle, chosen[0]) if chosen else None
            for index, entry in enumerate(chosen):
                tensor = pending.result()
                pending = reader.submit(read_tensor, handle, chosen[index + 1]) if index + 1 < len(chosen) else None
                yield entry, tensor


def read_shard(path: Path) -> Shard:
    """The shard's table of contents, checked by ``safe_open`` (exit 2 naming the file when it is not valid)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            names, metadata = list(handle.keys()), handle.metadata()
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        entries = [_entry(name, header[name], 8 + length) for name in names]
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError):
        raise InputError(f"model {path}: {SAFETENSORS_ERROR}") from None
    return Shard(Path(path), entries, metadata)


def _entry(name: str, info: dict, data_start: int) -> TensorEntry:
    if info["dtype"] not in DTYPES:
        raise ValueError("dtype")
    begin, end = info["data_offsets"]
    return TensorEntry(name, DTYPES[info["dtype"]], tuple(info["shape"]), data_start + begin, data_start + end)


def read_tensor(handle: IO[bytes], entry: TensorEntry) -> torch.Tensor:
    tensor = torch.empty(entry.shape, dtype=entry.dtype)
    if entry.end > entry.start:
        handle.seek(entry.start)
        if handle.readinto(_bytes_of(tensor)) != entry.end - entry.start:
            raise InputError(f"model {handle.name}: ends inside tensor data (the file changed while being read?)")
    return tensor


def _bytes_of(tensor: torch.Tensor):
    """A writable byte view of a contiguous tensor's storage (for readinto / write without a copy)."""
    return tensor.reshape(-1).view(torch.uint8).numpy().data


class ShardWriter:
    """Writes a safetensors file holding ``entries``' names, dtypes and shapes, laid out as safetensors' ``save``
    would: :meth:`write` each tensor once, in any order (written on a second thread while the caller goes on),
    inside ``with``; leaving the block without an error completes the file."""

    def __init__(self, handle: IO[bytes], entries: list[TensorEntry], metadata: dict[str, str] | None):
        rank = _dtype_rank()
        order = sorted(entries, key=lambda e: (-rank[NAMES[e.dtype]], e.name.encode()))
        header: dict[str, object] = {} if metadata is None else {"__metadata__": dict(sorted(metadata.items()))}
        self.offsets, position = {}, 0
        for entry in order:
            size = entry.end - entry.start
            header[entry.name] = {"dtype": NAMES[entry.dtype], "shape": list(entry.shape),
                                  "data_offsets": [position, position + size]}
            self.offsets[entry.name] = position
            position += size
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        text += b" " * (-len(text) % 8)
        handle.write(struct.pack("<Q", len(text)) + text)
        self.handle, self.data_start, self.size = handle, 8 + len(text), position
        self._writer, self._pending = ThreadPoolExecutor(1), None

    def __enter__(self) -> ShardWriter:
        return self

    def write(self, name: str, tensor: torch.Tensor) -> None:
        self._wait()
        self._pending = self._writer.submit(self._write_at, self.data_start + self.offsets[name], tensor.contiguous())

    def _write_at(self, position: int, tensor: torch.Tensor) -> None:
        self.handle.seek(position)
        self.handle.write(_bytes_of(tensor))

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def __exit__(self, kind, *_) -> None:
        try:
            self._wait()
            if kind is None:
                self.handle.truncate(self.data_start + self.size)  # full length even if the last tensors are empty
        finally:
            self._writer.shutdown()


@cache
def _dtype_rank() -> dict[str, int]:
    """Where safetensors' ``save`` puts each dtype (it sorts tensors by dtype, then name): asked of safetensors
    itself on empty tensors, so a new version's order is followed."""
    from safetensors.torch import save

    blob = save({f"t{i}": torch.empty(0, dtype=dtype) for i, dtype in enumerate(DTYPES.values())})
    (length,) = struct.unpack("<Q", blob[:8])
    placed = [DTYPES[info["dtype"]] for info in json.loads(blob[8:8 + length]).values()]
    return {NAMES[dtype]: len(placed) - i for i, dtype in enumerate(placed)}
