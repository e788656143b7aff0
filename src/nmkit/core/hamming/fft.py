"""Per-symbol FFT correlation (Fischer and Paterson 1974), overlap-save over blocks.

matches[i] = sum_c sum_j 1[T[i+j] = c] 1[P[j] = c]: one correlation per pattern symbol c. The
products are summed in the frequency domain, so each symbol costs one forward real FFT of the
text's indicator and there is a single inverse transform. Blocks of length L ~ 8m overlap by m-1
(cost O(|S_P| n log m) instead of n log n). With a wildcard, the count of positions where both
sides are real symbols is correlated the same way and HD = both_real - matches (Clifford and
Clifford 2007 use the same idea). float64 keeps counts exact after rounding for m up to ~1e7.
"""

from __future__ import annotations

import os

import numpy as np
from scipy import fft as sfft


def block_length(m: int) -> int:
    return sfft.next_fast_len(max(8 * m, 1024), real=True)


def _blocks(text: np.ndarray, m: int, length: int) -> np.ndarray:
    """Rows text[s : s+length] for s = 0, hop, 2 hop, ... (zero-padded), hop = length - m + 1."""
    hop = length - m + 1
    count = len(text) - m + 1
    rows = (count + hop - 1) // hop
    padded = np.zeros(rows * hop + m - 1, text.dtype)
    padded[: len(text)] = text
    return np.lib.stride_tricks.as_strided(
        padded, shape=(rows, length), strides=(hop * padded.itemsize, padded.itemsize), writeable=False
    )


def correlate_indicators(text: np.ndarray, pattern: np.ndarray, symbols, count: int,
                         extra: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """sum over c in ``symbols`` of corr(1[T=c], 1[P=c]) minus corr(extra) , rounded, first ``count``.

    ``extra`` = (text_indicator, pattern_indicator) is subtracted in the frequency domain.
    """
    m = len(pattern)
    length = block_length(m)
    blocks = _blocks(text, m, length)
    workers = os.cpu_count() or 1
    acc = np.zeros((blocks.shape[0], length // 2 + 1), np.complex128)
    terms = [(blocks == c, pattern == c, 1.0) for c in symbols]
    if extra is not None:
        terms.append((_blocks(extra[0], m, length), extra[1], -1.0))
    for text_ind, pattern_ind, sign in terms:
        kernel = sfft.rfft(pattern_ind[::-1].astype(np.float64), length)
        spectrum = sfft.rfft(text_ind.astype(np.float64), axis=1, workers=workers)
        spectrum *= kernel if sign > 0 else -kernel
        acc += spectrum
    corr = sfft.irfft(acc, length, axis=1, workers=workers)[:, m - 1 :]
    return np.rint(corr.ravel()[:count]).astype(np.int32)


def distances(text: np.ndarray, pattern: np.ndarray, wildcard: int = -1) -> np.ndarray:
    """Exact HD for every alignment by per-symbol FFT correlation."""
    count = len(text) - len(pattern) + 1
    symbols = np.unique(pattern[pattern != wildcard]) if wildcard >= 0 else np.unique(pattern)
    if wildcard < 0:
        return len(pattern) - correlate_indicators(text, pattern, symbols, count)
    extra = (text != wildcard, pattern != wildcard)
    return -correlate_indicators(text, pattern, symbols, count, extra=extra)
