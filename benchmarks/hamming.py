"""nmkit hamming vs the anchors: numpy shift-and-compare (O(nm), vectorised) and SciPy per-symbol FFT
(``scipy.signal.oaconvolve``, overlap-add). Uniform random text and pattern per (m, alphabet) row;
every method's output is checked equal to the numpy anchor before timing. nmkit runs with 1 and
with all numba threads; the anchors are single-threaded by nature (numpy, scipy.signal).

    python -m benchmarks.hamming [--n 1000000] [--m 100 1000] [--sigma 4 26 256] [--repeats 5]
"""

from __future__ import annotations

import argparse

import numba
import numpy as np
from scipy import signal

from benchmarks.harness import median_seconds, print_table
from nmkit.core.hamming import HammingConfig, hamming_distances
from nmkit.core.hamming.scan import scan
from nmkit.core.hamming.sources import Inputs, TextSource


def numpy_shift_compare(text: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    count = len(text) - len(pattern) + 1
    out = np.zeros(count, np.int32)
    for j, symbol in enumerate(pattern):
        out += text[j : j + count] != symbol
    return out


def scipy_per_symbol_fft(text: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    matches = np.zeros(len(text) - len(pattern) + 1)
    for symbol in np.unique(pattern):
        matches += signal.oaconvolve(text == symbol, (pattern == symbol)[::-1].astype(float), mode="valid")
    return len(pattern) - np.rint(matches).astype(np.int32)


def chosen_algorithm(text, pattern, **options) -> str:
    inputs = Inputs(TextSource("integers", iter([text]), len(text), "text"), pattern, "integers")
    return scan(HammingConfig(text="", pattern="", top=0, **options), inputs=inputs).algorithm


def measure_row(text: np.ndarray, pattern: np.ndarray, repeats: int) -> dict:
    """Anchors and nmkit (exact, k = 10, eps = 0.1) on one input, outputs checked against numpy."""
    truth = numpy_shift_compare(text, pattern)

    def ours(**options):
        return hamming_distances(text, pattern, **options)

    np.testing.assert_array_equal(scipy_per_symbol_fft(text, pattern), truth)
    np.testing.assert_array_equal(ours(), truth)
    np.testing.assert_array_equal(ours(max_mismatches=10), np.minimum(truth, 11))
    threads = numba.config.NUMBA_NUM_THREADS
    row = {"m": len(pattern), "sigma": int(text.max()) + 1, "algorithm": chosen_algorithm(text, pattern)}
    row["numpy"], _ = median_seconds(lambda: numpy_shift_compare(text, pattern), repeats)
    row["scipy"], _ = median_seconds(lambda: scipy_per_symbol_fft(text, pattern), repeats)
    numba.set_num_threads(1)
    row["nmkit_1t"], _ = median_seconds(ours, repeats)
    numba.set_num_threads(threads)
    row["nmkit"], _ = median_seconds(ours, repeats)
    row.update(measure_modes(text, pattern, truth, repeats, exact_seconds=row["nmkit"]))
    row["ratio"] = min(row["numpy"], row["scipy"]) / row["nmkit"]
    return row


def measure_modes(text, pattern, truth, repeats: int, exact_seconds: float, eps: float = 0.1) -> dict:
    """k-mismatch (k = 10) and approximate (eps) beside exact; the relative error is measured."""
    row = {"exact": exact_seconds}
    row["kmismatch"], _ = median_seconds(lambda: hamming_distances(text, pattern, max_mismatches=10), repeats)
    row["kmismatch_algorithm"] = chosen_algorithm(text, pattern, max_mismatches=10)
    estimates = hamming_distances(text, pattern, approx=eps)
    row["approx"], _ = median_seconds(lambda: hamming_distances(text, pattern, approx=eps), repeats)
    row["approx_algorithm"] = chosen_algorithm(text, pattern, approx=eps)
    row["approx_max_rel_err"] = float(np.max(np.abs(estimates - truth) / np.maximum(truth, 1)))
    return row


def run(n: int, ms: list[int], sigmas: list[int], repeats: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for m in ms:
        for sigma in sigmas:
            text = rng.integers(0, sigma, n).astype(np.uint8 if sigma <= 256 else np.int32)
            rows.append(measure_row(text, rng.integers(0, sigma, m).astype(text.dtype), repeats))
    return rows


def run_long_patterns(n: int, ms: list[int], repeats: int, eps: float, seed: int = 1) -> list[dict]:
    """Where k-mismatch and sampling pay: long patterns, against nmkit's own exact mode (the numpy
    anchor needs n*m compares, minutes at m = 1e5). The pattern is planted with 5 substitutions."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in ms:
        text = rng.integers(0, 4, n).astype(np.uint8)
        pattern = rng.integers(0, 4, m).astype(np.uint8)
        text[n // 3 : n // 3 + m] = pattern
        text[n // 3 + rng.choice(m, 5, replace=False)] ^= 1
        rows.append(measure_long_row(text, pattern, repeats, eps))
    return rows


def measure_long_row(text: np.ndarray, pattern: np.ndarray, repeats: int, eps: float) -> dict:
    truth = hamming_distances(text, pattern)
    exact, _ = median_seconds(lambda: hamming_distances(text, pattern), repeats)
    row = {"m": len(pattern), "algorithm": chosen_algorithm(text, pattern)}
    row.update(measure_modes(text, pattern, truth, repeats, exact_seconds=exact, eps=eps))
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--m", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--sigma", type=int, nargs="+", default=[4, 26, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--long-m", type=int, nargs="*", default=[10_000, 100_000, 400_000])
    args = parser.parse_args(argv)
    rows = run(args.n, args.m, args.sigma, args.repeats)
    ms = lambda s: f"{s * 1e3:.2f}"  # noqa: E731
    table = [[f"{r['m']}", f"{r['sigma']}", ms(r["numpy"]), ms(r["scipy"]), ms(r["nmkit_1t"]), ms(r["nmkit"]),
              r["algorithm"], f"{r['ratio']:.1f}x", f"{ms(r['kmismatch'])} ({r['kmismatch_algorithm']})",
              f"{ms(r['approx'])} ({r['approx_algorithm']}, err {r['approx_max_rel_err']:.3f})"] for r in rows]
    print_table(f"hamming, n = {args.n:,} (milliseconds, median of up to {args.repeats} after warm-up)",
                ["m", "|S|", "numpy", "scipy fft", "nmkit 1 thread", f"nmkit {numba.config.NUMBA_NUM_THREADS} threads",
                 "auto chose", "speed-up vs best anchor", "k-mismatch k=10", "approx eps=0.1"], table)
    long_rows = run_long_patterns(args.n, args.long_m, args.repeats, eps=0.1) if args.long_m else []
    table = [[f"{r['m']:,}", f"{ms(r['exact'])} ({r['algorithm']})",
              f"{ms(r['kmismatch'])} ({r['kmismatch_algorithm']})", f"{r['exact'] / r['kmismatch']:.1f}x",
              f"{ms(r['approx'])} ({r['approx_algorithm']})", f"{r['exact'] / r['approx']:.1f}x",
              f"{r['approx_max_rel_err']:.4f}"] for r in long_rows]
    if table:
        print_table(f"long patterns, n = {args.n:,}, |S| = 4 (milliseconds; nmkit modes vs nmkit exact)",
                    ["m", "exact", "k-mismatch k=10", "vs exact", "approx eps=0.1", "vs exact", "max rel. error"],
                    table)
    return rows + long_rows


if __name__ == "__main__":
    main()
