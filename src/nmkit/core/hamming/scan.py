"""The hamming driver: encode, choose an algorithm, stream the text in overlapping chunks.

Chunk c covers text[s : s + C + m - 1] and yields the C alignments starting in [s, s + C); the last
m - 1 symbols are carried into the next chunk, so memory stays O(C + m) whatever the text length.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nmkit.core.device import resolve_device
from nmkit.core.errors import InputError
from nmkit.core.hamming import choose, direct
from nmkit.core.hamming.alphabet import Alphabet, parse_wildcard
from nmkit.core.hamming.config import HammingConfig
from nmkit.core.hamming.sources import Inputs, TextSource, open_inputs, slices


@dataclass(frozen=True)
class Alignment:
    position: int
    distance: float


@dataclass
class HammingResult:
    mode: str
    algorithm: str
    text_length: int
    pattern_length: int
    pattern_symbols: int
    alignments: int
    best: list[Alignment]
    hits: list[Alignment] | None = None  # k-mismatch: every alignment with <= k mismatches
    samples: int | None = None  # approx: pattern positions sampled per alignment (None: computed exactly)
    exact_recounts: int | None = None  # approx: alignments recounted exactly
    failure_probability: float | None = None
    planted: list[dict] = field(default_factory=list)
    chunks: int = 0
    compute_seconds: float = 0.0  # in the distance computation itself
    seconds: float = 0.0  # in all, reading and encoding included


Sink = Callable[[np.ndarray], None]


def scan(config: HammingConfig, *, sink: Sink | None = None, advance: Callable[[int], None] | None = None,
         inputs: Inputs | None = None) -> HammingResult:
    """Run ``nmkit hamming``; ``sink`` receives the distance array chunk by chunk."""
    start = time.perf_counter()
    inputs = inputs or open_inputs(config)
    if len(inputs.pattern) == 0:
        raise InputError("pattern is empty; give at least one symbol")
    alphabet = Alphabet.from_pattern(inputs.pattern, parse_wildcard(config.wildcard, inputs.kind))
    pattern = alphabet.encode(inputs.pattern)
    m = len(pattern)
    device = resolve_device(config.device)
    rng = np.random.default_rng(config.seed)
    best = BestAlignments(config.top)
    hits: list[Alignment] | None = [] if config.mode == "k-mismatch" else None
    method: _Method | None = None
    carry, offset, text_length, chunks, compute_seconds = pattern[:0], 0, 0, 0, 0.0
    for raw in inputs.text.chunks:
        text_length += len(raw)
        codes = alphabet.encode(raw)
        window = np.concatenate([carry, codes]) if len(carry) else codes
        if len(window) >= m:
            method = method or _plan(config, window, pattern, alphabet, device)
            tick = time.perf_counter()
            distances = method.run(window, chunks, rng)
            compute_seconds += time.perf_counter() - tick
            if sink is not None:
                sink(distances)
            best.update(distances, offset)
            if hits is not None:
                found = np.flatnonzero(distances <= config.max_mismatches)
                hits.extend(Alignment(int(i) + offset, int(distances[i])) for i in found)
            offset += len(distances)
            chunks += 1
            window = window[len(window) - m + 1 :]
        carry = window
        if advance is not None:
            advance(len(raw))
    if offset == 0:
        raise InputError(f"pattern (length {m}) is longer than the text (length {text_length})")
    return HammingResult(
        mode=config.mode, algorithm=method.name, text_length=text_length, pattern_length=m,
        pattern_symbols=alphabet.size, alignments=offset, best=best.alignments(config.max_mismatches), hits=hits,
        samples=method.samples, exact_recounts=method.recounts if method.samples else None,
        failure_probability=config.failure_probability if method.samples else None,
        planted=inputs.planted, chunks=chunks, compute_seconds=compute_seconds,
        seconds=time.perf_counter() - start,
    )


def hamming_distances(text, pattern, **options) -> np.ndarray:
    """All distances as one array; ``text``/``pattern``: str, bytes, token lists or integer arrays.

    ``options`` are :class:`HammingConfig` fields (``max_mismatches``, ``approx``, ``wildcard``,
    ``algorithm``, ``seed``, ``device``, ``chunk_size``, ...).
    """
    kind, text_raw = _raw(text)
    pattern_kind, pattern_raw = _raw(pattern)
    if kind != pattern_kind:
        raise InputError(f"text holds {kind} but the pattern holds {pattern_kind}")
    config = HammingConfig(text="", pattern="", top=0, **options)
    inputs = Inputs(TextSource(kind, slices(text_raw, config.chunk_size), len(text_raw), "text"), pattern_raw, kind)
    parts: list[np.ndarray] = []
    scan(config, sink=parts.append, inputs=inputs)
    return np.concatenate(parts)


def _raw(value) -> tuple[str, np.ndarray]:
    if isinstance(value, str):
        value = value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return "bytes", np.frombuffer(bytes(value), np.uint8)
    if isinstance(value, list | tuple):
        return "tokens", np.array([str(v) for v in value])
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.integer):
        return "integers", array
    if array.dtype.kind == "U":
        return "tokens", array
    raise InputError(f"expected str, bytes, a list of tokens or an integer array, found {array.dtype}")


# -- methods ---------------------------------------------------------------------------------------


@dataclass
class _Method:
    name: str
    compute: Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
    samples: int | None = None
    recounts: int = 0

    def run(self, window: np.ndarray, chunk: int, rng: np.random.Generator) -> np.ndarray:
        return self.compute(window, chunk, rng)


def exact_method(name: str, pattern: np.ndarray, alphabet: Alphabet, device: str):
    wild = alphabet.wild_code  # the compiled methods are imported when chosen: loading them costs ~1 s (choose.py)
    if name == "direct":
        return lambda text: direct.distances(text, pattern, wild)
    if name == "simd":
        from nmkit.core.hamming import simd

        return lambda text: simd.distances(text, pattern, wild)
    if name == "fft":
        from nmkit.core.hamming import fft

        return lambda text: fft.distances(text, pattern, wild)
    if name == "abrahamson":
        if wild >= 0:
            raise InputError("algorithm abrahamson does not support a wildcard; use simd, fft or bitpacked")
        from nmkit.core.hamming import abrahamson

        return lambda text: abrahamson.distances(text, pattern, alphabet.size)
    if name == "bitpacked":
        return lambda text: _bitpacked(text, pattern, wild, device)
    raise InputError(f"algorithm {name} computes k-mismatch only; it needs max_mismatches")


def _bitpacked(text: np.ndarray, pattern: np.ndarray, wild: int, device: str) -> np.ndarray:
    import torch

    from nmkit.kernels.hamming_bitpacked import mismatch_counts

    as_tensor = lambda a: torch.from_numpy(a.astype(np.int32)).to(device)  # noqa: E731
    return mismatch_counts(as_tensor(text), as_tensor(pattern), wild).cpu().numpy()


def _plan(config: HammingConfig, window: np.ndarray, pattern: np.ndarray, alphabet: Alphabet,
          device: str) -> _Method:
    """Pick the method for this run from the first window of text (see ``choose``)."""
    shape = choose.Shape(len(window), len(pattern), alphabet.size, alphabet.wildcard is not None, device)
    exact_name, exact_seconds = choose.choose_exact(shape, window, pattern, alphabet.size)
    if config.algorithm not in ("auto", "kangaroo"):
        exact_name = config.algorithm
    exact = exact_method(exact_name, pattern, alphabet, device)
    if config.mode == "exact":
        return _Method(exact_name, lambda text, chunk, rng: exact(text))
    if config.mode == "k-mismatch":
        auto = config.algorithm == "auto"
        if config.algorithm == "kangaroo" or (auto and choose.kangaroo_pays(shape, exact_seconds)):
            from nmkit.core.hamming import kangaroo

            k, seed = config.max_mismatches, config.seed
            return _Method("kangaroo", lambda text, chunk, rng: kangaroo.bounded_distances(text, pattern, k,
                                                                                            seed + chunk))
        return _Method(exact_name, lambda text, chunk, rng: np.minimum(exact(text), config.max_mismatches + 1))
    return _approximate(config, pattern, exact_name, exact)


def _approximate(config, pattern, exact_name, exact) -> _Method:
    """Sampling when it is cheaper than exact counting; chunk c spends failure budget delta / 2^(c+1)."""
    from nmkit.core.hamming import sampling

    probe = sampling.SamplingPlan.for_bounds(config.chunk_size, config.approx, config.failure_probability / 2)
    if not probe.worthwhile(len(pattern)):
        return _Method(exact_name, lambda text, chunk, rng: exact(text).astype(np.float32))
    method = _Method("sampling", None)

    def compute(text, chunk, rng):
        delta = config.failure_probability / 2 ** (chunk + 1)
        plan = sampling.SamplingPlan.for_bounds(len(text) - len(pattern) + 1, config.approx, delta)
        if not plan.worthwhile(len(pattern)):
            return exact(text).astype(np.float32)
        estimates, recounts = sampling.estimate(text, pattern, plan, rng)
        method.samples = max(method.samples or 0, plan.samples)
        method.recounts += recounts
        return estimates

    method.compute = compute
    return method


class BestAlignments:
    """The ``top`` smallest distances seen so far (ties broken by position)."""

    def __init__(self, top: int) -> None:
        self.top = top
        self.positions = np.empty(0, np.int64)
        self.values = np.empty(0, np.float64)

    def update(self, distances: np.ndarray, offset: int) -> None:
        """Merge a chunk's distances (alignment ``offset + i`` has ``distances[i]``)."""
        if self.top == 0 or len(distances) == 0:
            return
        keep = min(self.top, len(distances))
        kth = np.partition(distances, keep - 1)[keep - 1]
        below = np.flatnonzero(distances < kth)
        local = np.concatenate([below, np.flatnonzero(distances == kth)[: keep - len(below)]])
        self.add(local + offset, distances[local])

    def add(self, positions: np.ndarray, values: np.ndarray) -> None:
        """Merge alignments given by position (k-mismatch hits)."""
        positions = np.concatenate([self.positions, np.asarray(positions, np.int64)])
        values = np.concatenate([self.values, np.asarray(values, np.float64)])
        order = np.lexsort((positions, values))[: self.top]
        self.positions, self.values = positions[order], values[order]

    def alignments(self, limit: float | None = None) -> list[Alignment]:
        """The best alignments, without those above ``limit`` (k-mismatch keeps only hits)."""
        pairs = zip(self.positions, self.values, strict=True)
        return [Alignment(int(p), _number(v)) for p, v in pairs if limit is None or v <= limit]


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 3)
