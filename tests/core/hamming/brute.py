"""The oracle: the definition of text-to-pattern Hamming distance, one alignment at a time."""

import numpy as np


def brute_force(text, pattern, wildcard=None) -> np.ndarray:
    text, pattern = list(text), list(pattern)
    n, m = len(text), len(pattern)
    out = []
    for i in range(n - m + 1):
        out.append(sum(1 for j in range(m)
                       if text[i + j] != pattern[j] and wildcard not in (text[i + j], pattern[j])))
    return np.array(out, dtype=np.int64)
