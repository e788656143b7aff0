"""Frequent/infrequent symbol split (Abrahamson 1987; Kosaraju 1987).

A symbol that occurs often in the pattern is handled by one FFT correlation over the whole text
(cost ~ n log m, whatever its frequency); a rare one by enumerating its occurrence pairs: every
text position i holding c and pattern position j holding c add one match to alignment i - j (cost
occ_T(c) * occ_P(c)). With the classical threshold sqrt(m log m) this is O(n sqrt(m log m)); here
each symbol goes to whichever side the cost model says is cheaper on this machine, which is the
same split with the threshold measured rather than assumed. CJVX (FOCS 2023) improve the bound to
O(n sqrt m) in theory; their algorithm has no practical implementation value on CPUs.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from nmkit.core.compiled import njit
from nmkit.core.hamming import fft
from nmkit.core.hamming.choose import split_by_cost

BLOCK = 1 << 15


@njit(parallel=True)
def _pair_matches(text, starts, occurrences, rare, count, m, out):
    blocks = (count + BLOCK - 1) // BLOCK
    for b in nb.prange(blocks):
        lo = b * BLOCK
        hi = min(count, lo + BLOCK)
        for i in range(lo, min(hi + m - 1, text.shape[0])):
            c = text[i]
            if rare[c]:
                for k in range(starts[c], starts[c + 1]):
                    a = i - occurrences[k]
                    if lo <= a < hi:
                        out[a] += 1
    return out


def split_symbols(text: np.ndarray, pattern: np.ndarray, alphabet_size: int) -> np.ndarray:
    occ_text = np.bincount(text, minlength=alphabet_size)[:alphabet_size]
    occ_pattern = np.bincount(pattern, minlength=alphabet_size)[:alphabet_size]
    return split_by_cost(occ_text, occ_pattern, len(text))


def distances(text: np.ndarray, pattern: np.ndarray, alphabet_size: int) -> np.ndarray:
    """Exact HD; codes >= ``alphabet_size`` in the text never match."""
    m = len(pattern)
    count = len(text) - m + 1
    rare = split_symbols(text, pattern, alphabet_size)
    codes = max(alphabet_size, int(text.max(initial=0)) + 1)  # text may hold codes for "other"
    rare_lookup = np.zeros(codes, np.bool_)
    rare_lookup[:alphabet_size] = rare
    order = np.argsort(pattern, kind="stable")
    starts = np.searchsorted(pattern[order], np.arange(codes + 1)).astype(np.int64)
    matches = _pair_matches(text, starts, order.astype(np.int64), rare_lookup, count, m, np.zeros(count, np.int32))
    frequent = np.flatnonzero(~rare & (np.bincount(pattern, minlength=alphabet_size)[:alphabet_size] > 0))
    if len(frequent):
        matches += fft.correlate_indicators(text, pattern, frequent, count)
    return m - matches
