"""Dense symbol codes: Hamming distance only asks "equal or not", so the pattern fixes the alphabet.

Each distinct pattern symbol gets a code 0..s-1; every text symbol that is not in the pattern maps
to one code ``other`` = s (it mismatches everything); the wildcard, if any, gets s + 1. Codes then
fit the smallest unsigned type, which is what the compiled counters and the FFT path want, and
the same encoding serves bytes, tokens and integer arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nmkit.core.errors import InputError


@dataclass(frozen=True)
class Alphabet:
    symbols: np.ndarray  # sorted distinct real pattern symbols
    wildcard: object = None  # raw wildcard symbol (same kind as the data), or None

    @classmethod
    def from_pattern(cls, pattern: np.ndarray, wildcard=None) -> Alphabet:
        real = pattern if wildcard is None else pattern[pattern != wildcard]
        return cls(np.unique(real), wildcard)

    @property
    def size(self) -> int:
        """Distinct real symbols in the pattern."""
        return len(self.symbols)

    @property
    def other(self) -> int:
        return self.size

    @property
    def wild_code(self) -> int:
        return self.size + 1 if self.wildcard is not None else -1

    @property
    def dtype(self) -> np.dtype:
        top = self.size + 1
        return np.dtype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int32)

    def encode(self, raw: np.ndarray) -> np.ndarray:
        if raw.dtype == np.uint8 and self.symbols.dtype == np.uint8:
            return np.take(self._lookup_table(), raw)
        if len(self.symbols) == 0:
            codes = np.full(len(raw), self.other, self.dtype)
        else:
            at = np.minimum(np.searchsorted(self.symbols, raw), len(self.symbols) - 1)
            codes = np.where(self.symbols[at] == raw, at, self.other).astype(self.dtype)
        if self.wildcard is not None:
            codes[raw == self.wildcard] = self.wild_code
        return codes

    def _lookup_table(self) -> np.ndarray:
        table = np.full(256, self.other, self.dtype)
        table[self.symbols] = np.arange(self.size, dtype=self.dtype)
        if self.wildcard is not None:
            table[self.wildcard] = self.wild_code
        return table


def parse_wildcard(value: str | None, kind: str):
    """The raw wildcard symbol for data of ``kind`` ('bytes', 'tokens' or 'integers')."""
    if value is None:
        return None
    if kind == "tokens":
        if len(value.split()) != 1:
            raise InputError(f"wildcard {value!r}: in tokens mode it must be one token without spaces")
        return value
    if kind == "integers":
        try:
            return int(value)
        except ValueError:
            raise InputError(f"wildcard {value!r}: .npy inputs hold integers, so it must be an integer") from None
    encoded = value.encode("utf-8")
    if len(encoded) != 1:
        raise InputError(f"wildcard {value!r}: in bytes mode it must be a single byte; use tokens mode for "
                         "longer symbols")
    return encoded[0]
