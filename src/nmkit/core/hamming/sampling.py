"""(1 +/- eps)-approximate distances by position sampling, with exact recounts where it is unsafe.

Draw s pattern positions uniformly with replacement (one draw for all alignments) and count the
sampled mismatches c_i of every alignment with the word-parallel counter. With
mu0 = 3 ln(2N/delta) / eps^2 and s = ceil(3 mu0):

* if c_i >= 2 mu0, report m c_i / s. Its mean mu_i = s HD_i / m is then at least mu0 except with
  probability exp(-mu0/3) <= delta/(2N) (Chernoff, upper tail, the worst case being mu_i = mu0),
  and given mu_i >= mu0 the estimate is within a factor 1 +/- eps with probability at least
  1 - 2 exp(-eps^2 mu0 / 3) = 1 - delta/N (Chernoff, both tails);
* otherwise recount alignment i exactly.

A union bound over the N alignments gives: every reported value is within (1 +/- eps) HD with
probability at least 1 - delta (Karloff 1993 and Kopelowitz-Porat 2015 give the same kind of
guarantee with random projections; sampling costs s/m of an exact count and needs no FFT). Only
when s is well below m is this cheaper than exact counting, so it falls back to exact otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nmkit.core.hamming import simd

WORTHWHILE = 0.5  # sample only while s < WORTHWHILE * m


@dataclass(frozen=True)
class SamplingPlan:
    samples: int
    threshold: float  # c_i below this is recounted exactly

    @classmethod
    def for_bounds(cls, alignments: int, eps: float, delta: float) -> SamplingPlan:
        mu0 = 3.0 * math.log(2.0 * max(alignments, 1) / delta) / eps**2
        return cls(samples=math.ceil(3.0 * mu0), threshold=2.0 * mu0)

    def worthwhile(self, m: int) -> bool:
        return self.samples < WORTHWHILE * m


def estimate(text: np.ndarray, pattern: np.ndarray, plan: SamplingPlan,
             rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Estimates (float32) and how many alignments were recounted exactly."""
    m = len(pattern)
    count = len(text) - m + 1
    offsets = np.sort(rng.integers(0, m, plan.samples))  # sorted: the text windows are read in order
    sampled_mismatches = plan.samples - simd.match_counts(text, offsets, pattern[offsets], count)
    estimates = sampled_mismatches.astype(np.float32) * np.float32(m / plan.samples)
    unsafe = np.flatnonzero(sampled_mismatches < plan.threshold)
    estimates[unsafe] = simd.distances_at(text, pattern, unsafe)
    return estimates, len(unsafe)
