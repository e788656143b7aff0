"""The automatic algorithm choice: a cost model in seconds, with constants measured on a 2-core
AVX-512 machine (benchmarks/hamming.py re-measures them). ``--algorithm`` overrides it."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

from nmkit.core import threads

SIMD_SECONDS_PER_COMPARE = 1.1e-11  # per thread
DIRECT_SECONDS_PER_COMPARE = 1.7e-10  # NumPy, one thread (16.8 ms for n = 10^6, m = 100)
PAIR_SECONDS = 1.5e-9  # abrahamson: one scattered increment
FFT_SECONDS_PER_SYMBOL_AND_POSITION = 1.2e-8  # one forward rFFT of an indicator, per text position
# First use in a process: numba loads its cached machine code (and its registries), scipy.fft imports. Measured on
# the development machine from a fresh `nmkit hamming` process; a long-lived library caller pays them once.
COMPILED_LOAD_SECONDS = 0.9
SCIPY_FFT_IMPORT_SECONDS = 0.45
SAMPLE = 1 << 16  # text symbols whose histogram stands for the whole window
KANGAROO_SECONDS_PER_POSITION = 3.5e-8  # hashing + filter, mostly sequential
EXACT_ALGORITHMS = ("direct", "simd", "fft", "abrahamson", "bitpacked")


@dataclass(frozen=True)
class Shape:
    """What the costs depend on, read off the first window of text."""

    n: int
    m: int
    pattern_symbols: int
    wildcard: bool
    device: str


def split_by_cost(occ_text: np.ndarray, occ_pattern: np.ndarray, n: int) -> np.ndarray:
    """Boolean per code: True where enumerating pairs is cheaper than an FFT (the rare side)."""
    pair_cost = occ_text.astype(np.float64) * occ_pattern * PAIR_SECONDS
    return (pair_cost <= FFT_SECONDS_PER_SYMBOL_AND_POSITION * n) & (occ_pattern > 0)


def _compiled_threads() -> int:
    numba = sys.modules.get("numba")
    if numba is not None:
        return numba.get_num_threads()
    return int(os.environ.get("NUMBA_NUM_THREADS") or threads.thread_budget())


_direct_seconds_spent = 0.0  # estimated time this process has spent in direct counting instead of loading


def _load_seconds() -> tuple[float, float]:
    """What the compiled and the FFT methods still have to load in this process, less what direct counting has
    already cost (ski rental: once the rent paid equals the price of loading, load; never worse than 2x)."""
    credit = min(_direct_seconds_spent, COMPILED_LOAD_SECONDS)
    return (0.0 if "numba" in sys.modules else COMPILED_LOAD_SECONDS - credit,
            0.0 if "scipy.fft" in sys.modules else SCIPY_FFT_IMPORT_SECONDS)


def exact_costs(shape: Shape, text: np.ndarray, pattern: np.ndarray, alphabet_size: int) -> dict[str, float]:
    alignments = shape.n - shape.m + 1
    workers = _compiled_threads()
    compiled_load, fft_load = _load_seconds()
    per_symbol = FFT_SECONDS_PER_SYMBOL_AND_POSITION * shape.n
    costs = {
        "direct": alignments * shape.m * DIRECT_SECONDS_PER_COMPARE,
        "simd": alignments * shape.m * SIMD_SECONDS_PER_COMPARE / workers + compiled_load,
        "fft": (shape.pattern_symbols + 2) * per_symbol + fft_load,
    }
    if not shape.wildcard:
        scale = len(text) / min(len(text), SAMPLE)
        occ_text = np.bincount(text[:SAMPLE], minlength=alphabet_size)[:alphabet_size] * scale
        occ_pattern = np.bincount(pattern, minlength=alphabet_size)[:alphabet_size]
        rare = split_by_cost(occ_text, occ_pattern, len(text))
        pairs = float(np.sum(occ_text[rare] * occ_pattern[rare]))
        frequent = np.sum(~rare & (occ_pattern > 0))
        if rare.any():  # with no rare symbol the split is just the FFT method
            costs["abrahamson"] = (pairs * PAIR_SECONDS / workers + (frequent + 1) * per_symbol + compiled_load
                                   + fft_load)
    return costs


def choose_exact(shape: Shape, text: np.ndarray, pattern: np.ndarray, alphabet_size: int) -> tuple[str, float]:
    """The cheapest exact algorithm and its estimated seconds (CUDA: the bit-packed kernel)."""
    if shape.device == "cuda":
        return "bitpacked", 0.0
    global _direct_seconds_spent
    costs = exact_costs(shape, text, pattern, alphabet_size)
    best = min(costs, key=costs.get)
    if best == "direct":
        _direct_seconds_spent += costs[best]
    return best, costs[best]


def kangaroo_pays(shape: Shape, exact_seconds: float) -> bool:
    return shape.device != "cuda" and shape.n * KANGAROO_SECONDS_PER_POSITION + _load_seconds()[0] < exact_seconds
