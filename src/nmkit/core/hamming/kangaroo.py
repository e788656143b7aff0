"""k-mismatch: every alignment with at most k mismatches, with its exact count.

Two stages, both compiled with numba and parallel over the cores:

1. Pigeonhole filter (Baeza-Yates and Perleberg 1992): cut P into k+1 disjoint pieces of length
   l = floor(m / (k+1)). An alignment with <= k mismatches leaves at least one piece untouched, so
   it is found by exact matching of the pieces (Karp-Rabin hashes of every text window of length l).
2. Kangaroo verification (Landau and Vishkin 1986; Galil and Giancarlo 1986): from each candidate,
   jump over equal stretches with longest-common-extension (LCE) queries and stop after k+1
   mismatches. LCE compares a few symbols directly, then gallops with hash comparisons, so one
   alignment costs O(k log m) even on periodic inputs.

Hashes are pairs modulo two 31-bit primes with random bases (seeded): Monte Carlo, a collision can
only skip a mismatch, with probability about (k+1) n log2(m) / 2**61 for a whole run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from nmkit.core.compiled import njit

PRIMES = (2147483647, 2147483629)
DIRECT = 8  # symbols compared one by one before galloping with hashes


@njit
def _prefix_hashes(seq, bases, primes):
    """[2, n + 1] prefix hashes of ``seq``, one row per (base, prime), in one pass."""
    h = np.zeros((2, seq.shape[0] + 1), np.int64)
    for i in range(seq.shape[0]):
        symbol = np.int64(seq[i]) + 1
        h[0, i + 1] = (h[0, i] * bases[0] + symbol) % primes[0]
        h[1, i + 1] = (h[1, i] * bases[1] + symbol) % primes[1]
    return h


@njit
def _powers(length, base, prime):
    p = np.ones(length + 1, np.int64)
    for i in range(length):
        p[i + 1] = p[i] * base % prime
    return p


@njit
def _window(h, pw, prime, start, length):
    return (h[start + length] - h[start] * pw[length] % prime + prime) % prime


@njit
def _same(ht, hp, pw, prime, x, y, length):
    return _window(ht[0], pw[0], prime[0], x, length) == _window(hp[0], pw[0], prime[0], y, length) and \
        _window(ht[1], pw[1], prime[1], x, length) == _window(hp[1], pw[1], prime[1], y, length)


@njit
def _lce(text, pattern, ht, hp, pw, prime, x, y, limit):
    """Length of the longest common prefix of text[x:] and pattern[y:], at most ``limit``."""
    direct = min(limit, DIRECT)
    for step in range(direct):
        if text[x + step] != pattern[y + step]:
            return step
    if direct == limit:
        return limit
    lo, step = direct, DIRECT  # text[x:x+lo] == pattern[y:y+lo] is known
    hi = limit + 1  # first length known (or assumed) to differ
    while lo + step < hi:
        if _same(ht, hp, pw, prime, x, y, lo + step):
            lo += step
            step *= 2
        else:
            hi = lo + step
            break
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _same(ht, hp, pw, prime, x, y, mid):
            lo = mid
        else:
            hi = mid
    return lo


@njit(parallel=True)
def _verify(text, pattern, ht, hp, pw, prime, candidates, k):
    """Mismatches (k + 1 meaning "more than k") of the alignment at each candidate position."""
    m = pattern.shape[0]
    out = np.empty(candidates.shape[0], np.int32)
    for c in nb.prange(candidates.shape[0]):
        i = candidates[c]
        pos = 0
        mismatches = 0
        while True:
            pos += _lce(text, pattern, ht, hp, pw, prime, i + pos, pos, m - pos)
            if pos >= m:
                break
            mismatches += 1
            if mismatches > k:
                break
            pos += 1
        out[c] = mismatches
    return out


@njit
def _key(h, pw, prime, start, length):
    """The double hash of a window of length ``length`` at ``start`` as one 62-bit key."""
    return _window(h[0], pw[0], prime[0], start, length) * PRIMES[1] + _window(h[1], pw[1], prime[1], start, length)


@njit(parallel=True)
def _mark_candidates(ht, pw, prime, piece_keys, piece_offsets, piece_len, count, marks):
    """marks[a] = True where some piece occurs exactly at text position a + its offset."""
    windows = ht[0].shape[0] - piece_len
    for i in nb.prange(windows):
        key = _key(ht, pw, prime, i, piece_len)
        at = np.searchsorted(piece_keys, key)
        while at < piece_keys.shape[0] and piece_keys[at] == key:
            a = i - piece_offsets[at]
            if 0 <= a < count:
                marks[a] = True
            at += 1
    return marks


@njit
def _mark_many(ht, pw, prime, piece_keys, piece_offsets, piece_owners, piece_len, count):
    """Every (pattern, alignment) that some piece of that pattern places exactly: pattern ids and positions, in
    text order (a pair may repeat when several of its pieces match)."""
    windows = ht[0].shape[0] - piece_len
    owners = np.empty(1024, np.int64)
    positions = np.empty(1024, np.int64)
    found = 0
    for i in range(windows):
        key = _key(ht, pw, prime, i, piece_len)
        at = np.searchsorted(piece_keys, key)
        while at < piece_keys.shape[0] and piece_keys[at] == key:
            a = i - piece_offsets[at]
            if 0 <= a < count:
                if found == owners.shape[0]:
                    owners = np.concatenate((owners, np.empty(found, np.int64)))
                    positions = np.concatenate((positions, np.empty(found, np.int64)))
                owners[found] = piece_owners[at]
                positions[found] = a
                found += 1
            at += 1
    return owners[:found], positions[:found]


@dataclass
class TextHashes:
    """A text's precomputed form for k-mismatch search: Karp-Rabin prefix hashes under two primes with seeded
    bases, and the bases' powers up to the pattern length; shared by every pattern of that length."""

    text: np.ndarray
    bases: list[int]
    prefix: np.ndarray  # [2, n + 1]
    powers: np.ndarray  # [2, m + 1]

    @classmethod
    def of(cls, text: np.ndarray, m: int, seed: int) -> TextHashes:
        rng = np.random.default_rng(seed)
        bases = [int(rng.integers(1 << 16, p - 1)) for p in PRIMES]
        prefix = _prefix_hashes(text, np.array(bases, np.int64), np.array(PRIMES, np.int64))
        powers = np.stack([_powers(m, b, p) for b, p in zip(bases, PRIMES, strict=True)])
        return cls(text, bases, prefix, powers)

    def of_pattern(self, pattern: np.ndarray) -> np.ndarray:
        return _prefix_hashes(pattern, np.array(self.bases, np.int64), np.array(PRIMES, np.int64))

    def piece_keys(self, pattern_hashes: np.ndarray, offsets: np.ndarray, length: int) -> np.ndarray:
        prime = np.array(PRIMES, np.int64)
        return np.array([_key(pattern_hashes, self.powers, prime, o, length) for o in offsets], np.int64)

    def verify(self, pattern: np.ndarray, pattern_hashes: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
        return _verify(self.text, pattern, self.prefix, pattern_hashes, self.powers, np.array(PRIMES, np.int64),
                       candidates.astype(np.int64), k)


def bounded_distances(text: np.ndarray, pattern: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """HD[i] where HD[i] <= k, and k + 1 (meaning "more than k") elsewhere."""
    m = len(pattern)
    count = len(text) - m + 1
    hashes = TextHashes.of(text, m, seed)
    own = hashes.of_pattern(pattern)
    piece_len = m // (k + 1)
    if piece_len >= 1:
        offsets = np.arange(k + 1, dtype=np.int64) * piece_len
        keys = hashes.piece_keys(own, offsets, piece_len)
        order = np.argsort(keys, kind="stable")
        marks = _mark_candidates(hashes.prefix, hashes.powers, np.array(PRIMES, np.int64), keys[order],
                                 offsets[order], piece_len, count, np.zeros(count, np.bool_))
        candidates = np.flatnonzero(marks)
    else:  # more allowed mismatches than symbols: every alignment qualifies
        candidates = np.arange(count)
    out = np.full(count, k + 1, np.int32)
    out[candidates] = hashes.verify(pattern, own, candidates, k)
    return out


def bounded_hits(text: np.ndarray, patterns: list[np.ndarray], k: int, seed: int = 0) -> list[tuple[np.ndarray,
                                                                                                   np.ndarray]]:
    """For each pattern (all of one length m): the alignments with <= k mismatches and their counts, sorted by
    position. The text is hashed once and one pass over its windows finds every pattern's pigeonhole candidates
    (the pieces of all patterns in one sorted table), so many patterns cost one text scan plus their candidates."""
    m = len(patterns[0])
    count = len(text) - m + 1
    hashes = TextHashes.of(text, m, seed)
    pattern_hashes = [hashes.of_pattern(p) for p in patterns]
    piece_len = m // (k + 1)
    if piece_len >= 1:
        offsets = np.arange(k + 1, dtype=np.int64) * piece_len
        keys = np.concatenate([hashes.piece_keys(h, offsets, piece_len) for h in pattern_hashes])
        order = np.argsort(keys, kind="stable")
        owners, positions = _mark_many(hashes.prefix, hashes.powers, np.array(PRIMES, np.int64), keys[order],
                                       np.tile(offsets, len(patterns))[order],
                                       np.repeat(np.arange(len(patterns)), k + 1)[order], piece_len, count)
        pairs = np.unique(owners * count + positions)
        owners, positions = np.divmod(pairs, count)
        bounds = np.searchsorted(owners, np.arange(len(patterns) + 1))
        candidates = [positions[bounds[p]:bounds[p + 1]] for p in range(len(patterns))]
    else:  # more allowed mismatches than symbols: every alignment qualifies
        candidates = [np.arange(count)] * len(patterns)
    found = []
    for pattern, own, where in zip(patterns, pattern_hashes, candidates, strict=True):
        distances = hashes.verify(pattern, own, where, k)
        found.append((where[distances <= k], distances[distances <= k]))
    return found
