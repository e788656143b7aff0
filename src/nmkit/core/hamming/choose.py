"""The automatic algorithm choice: a cost model in seconds, with constants measured on a 2-core
AVX-512 machine (benchmarks/hamming.py re-measures them). ``--algorithm`` overrides it."""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from nmkit.core.hamming import abrahamson

SIMD_SECONDS_PER_COMPARE = 1.1e-11  # per thread
SAMPLE = 1 << 16  # text symbols whose histogram stands for the whole window
KANGAROO_SECONDS_PER_POSITION = 3.5e-8  # hashing + filter, mostly sequential
EXACT_ALGORITHMS = ("simd", "fft", "abrahamson", "bitpacked")


@dataclass(frozen=True)
class Shape:
    """What the costs depend on, read off the first window of text."""

    n: int
    m: int
    pattern_symbols: int
    wildcard: bool
    device: str


def exact_costs(shape: Shape, text: np.ndarray, pattern: np.ndarray, alphabet_size: int) -> dict[str, float]:
    alignments = shape.n - shape.m + 1
    threads = numba.get_num_threads()
    per_symbol = abrahamson.FFT_SECONDS_PER_SYMBOL_AND_POSITION * shape.n
    costs = {
        "simd": alignments * shape.m * SIMD_SECONDS_PER_COMPARE / threads,
        "fft": (shape.pattern_symbols + 2) * per_symbol,
    }
    if not shape.wildcard:
        scale = len(text) / min(len(text), SAMPLE)
        occ_text = np.bincount(text[:SAMPLE], minlength=alphabet_size)[:alphabet_size] * scale
        occ_pattern = np.bincount(pattern, minlength=alphabet_size)[:alphabet_size]
        rare = abrahamson.split_by_cost(occ_text, occ_pattern, len(text))
        pairs = float(np.sum(occ_text[rare] * occ_pattern[rare]))
        frequent = np.sum(~rare & (occ_pattern > 0))
        if rare.any():  # with no rare symbol the split is just the FFT method
            costs["abrahamson"] = pairs * abrahamson.PAIR_SECONDS / threads + (frequent + 1) * per_symbol
    return costs


def choose_exact(shape: Shape, text: np.ndarray, pattern: np.ndarray, alphabet_size: int) -> tuple[str, float]:
    """The cheapest exact algorithm and its estimated seconds (CUDA: the bit-packed kernel)."""
    if shape.device == "cuda":
        return "bitpacked", 0.0
    costs = exact_costs(shape, text, pattern, alphabet_size)
    best = min(costs, key=costs.get)
    return best, costs[best]


def kangaroo_pays(shape: Shape, exact_seconds: float) -> bool:
    return shape.device != "cuda" and shape.n * KANGAROO_SECONDS_PER_POSITION < exact_seconds
