"""Character-level corpora for train-snn: two built in, with no download — ``pydoc`` (the English help topics that
ship in Python's own ``pydoc_data`` package, ~465k characters) and ``stdlib`` (the running Python's standard
library sources, ~10.6M characters of real code on 3.11) — any UTF-8 text file, or a ``.npy`` of token ids; a
character vocabulary; and a seeded train/validation/test split.

The split cuts the token stream into blocks of ``block`` tokens and deals whole blocks to the three parts by a
seeded permutation, so every part samples the whole corpus and no window crosses from one part into another.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmkit.core.errors import InputError
from nmkit.core.io import load_npy

STDLIB_SKIPPED = {"test", "tests", "idle_test", "site-packages", "idlelib", "turtledemo", "ensurepip", "lib2to3",
                  "tkinter", "__pycache__"}
"""Folders of the standard library left out of ``stdlib``: test suites, GUI and bundled third-party code."""


@dataclass(frozen=True)
class Corpus:
    tokens: np.ndarray  # int64 ids
    vocabulary: list[str] | None  # characters by id; None for a token .npy

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary) if self.vocabulary is not None else int(self.tokens.max()) + 1


def decode(ids, vocabulary: list[str] | None) -> str:
    """Characters for ids; for a token corpus (no vocabulary), the ids themselves, space-separated."""
    if vocabulary is None:
        return "".join(f"{int(i)} " for i in ids)
    return "".join(vocabulary[int(i)] for i in ids)


def encode(text: str, vocabulary: list[str] | None, vocab_size: int) -> list[int]:
    """Ids for the characters of ``text`` (space-separated ids for a token corpus); unknown symbols are an error."""
    if vocabulary is None:
        try:
            ids = [int(word) for word in text.split()]
        except ValueError:
            raise InputError(f"prompt {text!r}: this model reads token ids; give space-separated integers") from None
        unknown = sorted({i for i in ids if not 0 <= i < vocab_size})
    else:
        index = {c: i for i, c in enumerate(vocabulary)}
        unknown = sorted(set(text) - set(index))
        ids = [index.get(c, -1) for c in text]
    if unknown:
        raise InputError(f"prompt: {unknown[:5]!r} not in the model's vocabulary of {vocab_size} symbols")
    if not ids:
        raise InputError("prompt: empty; give at least one symbol to start from")
    return ids


def pydoc_text() -> str:
    import pydoc_data.topics

    return "".join(pydoc_data.topics.topics[name] for name in sorted(pydoc_data.topics.topics))


def stdlib_text() -> str:
    """The running Python's standard library: every .py file outside STDLIB_SKIPPED, in path order, joined by
    newlines (its size and contents follow the Python version: 562 files, 10.6M characters on 3.11.7)."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if not set(p.relative_to(root).parts[:-1]) & STDLIB_SKIPPED
                   and not p.relative_to(root).parts[0].startswith("config-"))
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in files)


BUILT_IN = {"pydoc": pydoc_text, "stdlib": stdlib_text}


def load_corpus(source: str | Path) -> Corpus:
    """``pydoc``, ``stdlib``, a UTF-8 text file, or a .npy of non-negative integer token ids."""
    if str(source) in BUILT_IN:
        return _characters(BUILT_IN[str(source)](), str(source))
    path = Path(source)
    if not path.is_file():
        raise InputError(f"data {path}: no such file (or use a built-in corpus: {', '.join(BUILT_IN)})")
    if path.suffix == ".npy":
        tokens = load_npy(path)
        if tokens.ndim != 1 or tokens.size == 0 or not np.issubdtype(tokens.dtype, np.integer) or tokens.min() < 0:
            raise InputError(f"data {path}: expected a non-empty 1-D array of non-negative integer token ids")
        return Corpus(tokens.astype(np.int64), None)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"data {path}: not UTF-8 text (byte {exc.start}); pass a UTF-8 file or a token .npy") from None
    return _characters(text, str(path))


def _characters(text: str, name: str) -> Corpus:
    if not text:
        raise InputError(f"data {name}: the corpus is empty")
    vocabulary = sorted(set(text))
    index = {c: i for i, c in enumerate(vocabulary)}
    return Corpus(np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text)), vocabulary)


def split(tokens: np.ndarray, context: int, seed: int, fractions: tuple[float, float] = (0.05, 0.05),
          block: int | None = None) -> dict[str, np.ndarray]:
    """{"train", "valid", "test"}: each a [blocks, block] array of whole blocks (block = 4 x (context + 1) by
    default, so a window plus its next-token target always fits); validation and test get ``fractions``."""
    block = block or 4 * (context + 1)
    count = len(tokens) // block
    held_out = [max(1, round(f * count)) for f in fractions]
    if count < 1 + sum(held_out):
        raise InputError(f"data: {len(tokens):,} tokens make {count} blocks of {block}; need at least "
                         f"{1 + sum(held_out)} (shorten the context, now {context}, or give more text)")
    blocks = tokens[: count * block].reshape(count, block)
    order = np.random.default_rng(seed).permutation(count)
    valid, test = order[: held_out[0]], order[held_out[0] : sum(held_out)]
    return {"train": blocks[np.sort(order[sum(held_out):])], "valid": blocks[np.sort(valid)],
            "test": blocks[np.sort(test)]}
