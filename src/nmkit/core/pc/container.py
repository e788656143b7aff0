"""The .nmpc container: everything a decoder must check before it trusts a byte.

Layout (little endian):
    b"NMPC" | version u8 | model fingerprint (32 bytes, sha256 of the model's arrays)
    | dtype (u8 length + ASCII numpy descr) | ndim u8 | item shape (ndim x u32) | count u64
    | chunk size u32 | chunk count u32 | words per chunk (u64 each) | sha256 of the original array bytes
    | rANS payload (u32 words, chunk after chunk) | crc32 of everything before it (u32)
The trailing CRC catches any corruption or truncation of the file; the SHA-256 of the data catches a
decoder that went wrong anyway; a wrong model is refused by its fingerprint before decoding starts.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from nmkit.core import memory
from nmkit.core.errors import InputError

MAGIC = b"NMPC"
VERSION = 2  # 2: nmkit's own rANS (64-bit state, 24-bit precision); 1 was constriction's ANS


@dataclass
class Header:
    fingerprint: bytes
    dtype: np.dtype
    item_shape: tuple[int, ...]
    count: int
    chunk: int
    words: list[int]
    digest: bytes


def pack(header: Header, payloads: list[np.ndarray]) -> bytes:
    descr = header.dtype.str.encode("ascii")
    parts = [MAGIC, struct.pack("<B", VERSION), header.fingerprint, struct.pack("<B", len(descr)), descr,
             struct.pack("<B", len(header.item_shape)), struct.pack(f"<{len(header.item_shape)}I", *header.item_shape),
             struct.pack("<QII", header.count, header.chunk, len(payloads)),
             struct.pack(f"<{len(payloads)}Q", *(len(p) for p in payloads)), header.digest]
    parts += [np.asarray(p, "<u4").tobytes() for p in payloads]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def unpack(blob: bytes, name: str) -> tuple[Header, list[np.ndarray]]:
    """Parse and check a container; every failure is one InputError naming the file."""
    if blob[:4] != MAGIC:
        raise InputError(f"{name}: not an nmkit compress-pc file (bad magic)")
    if len(blob) < 5 or blob[4] != VERSION:
        version = blob[4] if len(blob) > 4 else "missing"
        raise InputError(f"{name}: container version {version} is not supported (this nmkit reads {VERSION})")
    if len(blob) < 9 or zlib.crc32(blob[:-4]) != struct.unpack("<I", blob[-4:])[0]:
        raise InputError(f"{name}: corrupted or truncated (checksum mismatch)")
    reader = _Reader(blob[:-4], name, offset=5)
    fingerprint = reader.take(32)
    try:
        dtype = np.dtype(reader.take(reader.unpack("<B")[0]).decode("ascii"))
    except (TypeError, ValueError, UnicodeDecodeError, SyntaxError):
        raise InputError(f"{name}: corrupted (unreadable dtype in the header)") from None
    if dtype.kind not in "iub" or dtype.fields is not None:
        raise InputError(f"{name}: corrupted (the header's dtype is not an integer type)")
    ndim = reader.unpack("<B")[0]
    item_shape = reader.unpack(f"<{ndim}I")
    count, chunk, chunks = reader.unpack("<QII")
    if chunk < 1 or chunks != -(-count // chunk):
        raise InputError(f"{name}: corrupted (chunk size {chunk} and {chunks} chunks do not cover {count} items)")
    memory.require(8.0 * count * math.prod(item_shape), f"{name} ({count} items of shape {tuple(item_shape)})")
    words = list(reader.unpack(f"<{chunks}Q"))
    digest = reader.take(32)
    payloads = [np.frombuffer(reader.take(4 * w), "<u4").astype(np.uint32) for w in words]
    if reader.offset != len(reader.body):
        raise InputError(f"{name}: corrupted (payload length does not match the header)")
    return Header(fingerprint, dtype, tuple(item_shape), count, chunk, words, digest), payloads


def digest_of(array: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).digest()


class _Reader:
    def __init__(self, body: bytes, name: str, offset: int) -> None:
        self.body, self.name, self.offset = body, name, offset

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.body):
            raise InputError(f"{self.name}: corrupted (header or payload ends early)")
        piece = self.body[self.offset : self.offset + size]
        self.offset += size
        return piece

    def unpack(self, layout: str) -> tuple:
        return struct.unpack(layout, self.take(struct.calcsize(layout)))
