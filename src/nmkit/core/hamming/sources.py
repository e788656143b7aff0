"""Where texts and patterns come from: inline strings, files (bytes or tokens), .npy arrays, stdin,
and a seeded synthetic generator. Texts are read in chunks, so a text larger than memory streams.

Raw symbols are numpy arrays: uint8 for bytes, unicode strings for tokens, integers for .npy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nmkit.core import io, memory
from nmkit.core.errors import InputError
from nmkit.core.hamming.config import HammingConfig, Synthetic


@dataclass
class TextSource:
    """A text as a stream of raw chunks; ``length`` is known up front except for streams of tokens."""

    kind: str  # bytes | tokens | integers
    chunks: Iterator[np.ndarray]
    length: int | None
    name: str


@dataclass
class Inputs:
    text: TextSource
    pattern: np.ndarray
    kind: str
    planted: list[dict] = field(default_factory=list)


def open_inputs(config: HammingConfig) -> Inputs:
    if config.synthetic is not None:
        memory.require(3.0 * (config.synthetic.length + config.synthetic.pattern_length), "synthetic text")
        text, pattern, planted = synthesize(config.synthetic, config.seed)
        source = TextSource("bytes", slices(text, config.chunk_size), len(text), "synthetic")
        return Inputs(source, pattern, "bytes", planted)
    pattern = _read_pattern(config)
    text = _open_text(config)
    if text.kind != _kind_of_pattern(config):
        raise InputError(f"{text.name} holds {text.kind} but the pattern holds {_kind_of_pattern(config)}; "
                         "give both as .npy, or both as text")
    return Inputs(text, pattern, text.kind)


def synthesize(spec: Synthetic, seed: int) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Random text over ``spec.alphabet`` with the pattern planted at non-overlapping places."""
    rng = np.random.default_rng(seed)
    symbols = np.frombuffer("".join(dict.fromkeys(spec.alphabet)).encode("utf-8"), np.uint8)
    if len(symbols) != len(set(spec.alphabet)):
        raise InputError("synthetic.alphabet: use single-byte (ASCII) characters")
    n, m = spec.length, spec.pattern_length
    if spec.plants * m > n:
        raise InputError(f"synthetic: {spec.plants} plants of length {m} do not fit in a text of length {n}")
    if spec.mutations > m:
        raise InputError(f"synthetic.mutations ({spec.mutations}) exceeds pattern_length ({m})")
    text = rng.choice(symbols, n)
    pattern = rng.choice(symbols, m)
    slack = n - spec.plants * m  # free symbols to spread between non-overlapping plants
    gaps = np.sort(rng.integers(0, slack + 1, spec.plants))
    planted = []
    for index, gap in enumerate(gaps):
        start = int(gap) + index * m
        copy = pattern.copy()
        for j in rng.choice(m, spec.mutations, replace=False):
            copy[j] = rng.choice(symbols[symbols != pattern[j]])
        text[start : start + m] = copy
        planted.append({"position": start, "mismatches": spec.mutations})
    return text, pattern, planted


def _kind_of_pattern(config: HammingConfig) -> str:
    if config.pattern_file is not None and config.pattern_file.suffix == ".npy":
        return "integers"
    return "tokens" if config.tokens else "bytes"


def _read_pattern(config: HammingConfig) -> np.ndarray:
    if config.pattern is not None:
        return _parse_inline(config.pattern, config.tokens)
    path = config.pattern_file
    if path.suffix == ".npy":
        return integer_array(io.load_npy(path), path)
    if str(path) == "-":
        raise InputError("pattern_file: '-' (stdin) is for the text; give the pattern inline or as a file")
    data = _read_bytes(path)
    if not config.keep_newline:
        data = data.removesuffix(b"\r\n") if data.endswith(b"\r\n") else data.removesuffix(b"\n")
    if config.tokens:
        tokens = data.decode("utf-8", errors="replace").split()
        if max(map(len, tokens), default=0) > MAX_TOKEN_BYTES:
            raise InputError(f"pattern_file {path}: a token longer than {MAX_TOKEN_BYTES} characters; --tokens "
                             f"reads whitespace-separated words")
        return np.array(tokens)
    return np.frombuffer(data, np.uint8)


def _parse_inline(value: str, tokens: bool) -> np.ndarray:
    if tokens:
        return np.array(value.split())
    return np.frombuffer(value.encode("utf-8"), np.uint8)


def _open_text(config: HammingConfig) -> TextSource:
    size = config.chunk_size
    if config.text is not None:
        raw = _parse_inline(config.text, config.tokens)
        return TextSource("tokens" if config.tokens else "bytes", slices(raw, size), len(raw), "text")
    return open_text_file(config.text_file, config.tokens, size)


def open_text_file(path: Path, tokens: bool, size: int) -> TextSource:
    """A text file (bytes, or tokens with ``tokens``; a ``.npy`` of integers; ``-``: stdin) as chunks of ``size``."""
    if path.suffix == ".npy":
        array = integer_array(io.load_npy(path, mmap=True), path)
        return TextSource("integers", slices(array, size), len(array), str(path))
    if str(path) == "-":
        stream, length, name = sys.stdin.buffer, None, "stdin"
    else:
        try:
            stream, length, name = open(path, "rb"), path.stat().st_size, str(path)  # noqa: SIM115 (closed by reader)
        except OSError as exc:
            raise InputError(f"text_file {path}: cannot be read ({exc.strerror or exc})") from None
    if tokens:
        return TextSource("tokens", _token_chunks(stream, size, name), None, name)
    return TextSource("bytes", _byte_chunks(stream, size, name), length, name)


def slices(array: np.ndarray, size: int) -> Iterator[np.ndarray]:
    """Consecutive pieces of at most ``size`` symbols (memory-mapped arrays are read piece by piece)."""
    for start in range(0, len(array), size):
        yield np.asarray(array[start : start + size])


def _byte_chunks(stream: BinaryIO, size: int, name: str) -> Iterator[np.ndarray]:
    with _closing(stream):
        while block := _read_block(stream, size, name):
            yield np.frombuffer(block, np.uint8)


MAX_TOKEN_BYTES = 4096
"""Longest token ``--tokens`` accepts: a file without whitespace is not a token stream."""


def _token_chunks(stream: BinaryIO, size: int, name: str) -> Iterator[np.ndarray]:
    """Whitespace-separated tokens; a token cut by a block boundary is carried to the next block."""
    tail, offset = b"", 0
    with _closing(stream):
        while block := _read_block(stream, size, name):
            data, offset = tail + block, offset + len(block)
            cut = max(data.rfind(c) for c in (b" ", b"\n", b"\t", b"\r", b"\f", b"\v"))
            tail = data[cut + 1 :]
            if len(tail) > MAX_TOKEN_BYTES:
                raise InputError(f"{name}: a token longer than {MAX_TOKEN_BYTES} bytes ends after byte {offset:,}; "
                                 f"--tokens reads whitespace-separated words")
            if cut >= 0:
                yield from _token_arrays(data[: cut + 1].decode("utf-8", errors="replace").split(), 4 * size)
        if tail:
            yield np.array(tail.decode("utf-8", errors="replace").split())


def _token_arrays(tokens: list[str], budget: int) -> Iterator[np.ndarray]:
    """``tokens`` as fixed-width string arrays of at most about ``budget`` bytes each (one long token beside
    many short ones would otherwise widen every slot to its length)."""
    width = max(map(len, tokens), default=0)
    if len(tokens) <= 1 or len(tokens) * width * 4 <= max(budget, 1 << 20):
        yield np.array(tokens)
        return
    half = len(tokens) // 2
    yield from _token_arrays(tokens[:half], budget)
    yield from _token_arrays(tokens[half:], budget)


def _read_block(stream: BinaryIO, size: int, name: str) -> bytes:
    try:
        return stream.read(size)
    except OSError as exc:
        raise InputError(f"{name}: read failed ({exc.strerror or exc})") from None


class _closing:
    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def __enter__(self) -> BinaryIO:
        return self.stream

    def __exit__(self, *exc) -> None:
        if self.stream is not sys.stdin.buffer:
            self.stream.close()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def integer_array(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{path}: expected a 1-D integer array, found {array.ndim}-D {array.dtype}")
    return array
