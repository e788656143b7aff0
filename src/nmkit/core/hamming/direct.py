"""Direct counting: m vectorised compare-and-add passes over the text (NumPy; the benchmark's anchor method).

It needs no compiled code, so it is what a fresh process should use on small inputs: loading numba's cached
machine code costs ~1 s on the first call, more than direct counting needs below ~10^9 symbol comparisons.
Semantics as ``simd.distances``: pattern wildcards are skipped, text wildcards match everything.
"""

from __future__ import annotations

import numpy as np


def distances(text: np.ndarray, pattern: np.ndarray, wildcard: int = -1) -> np.ndarray:
    count = len(text) - len(pattern) + 1
    out = np.zeros(max(count, 0), np.int32)
    if count <= 0:
        return out
    text_cares = text != wildcard if wildcard >= 0 else None
    for j, symbol in enumerate(pattern.tolist()):
        if symbol == wildcard:
            continue
        differs = text[j:j + count] != symbol
        if text_cares is not None:
            differs &= text_cares[j:j + count]
        out += differs
    return out
