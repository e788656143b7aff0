"""k-mismatch reports exactly what brute force finds; approximate stays within eps."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmkit.core.hamming import HammingConfig, Synthetic, hamming_distances
from nmkit.core.hamming.sampling import SamplingPlan
from nmkit.core.hamming.scan import scan

from .brute import brute_force
from .test_exact import adversarial_cases, text_and_pattern


@pytest.mark.parametrize("algorithm", ["kangaroo", "simd", "direct", "auto"])
@settings(max_examples=40, deadline=None)
@given(case=text_and_pattern(max_symbol=3), k=st.integers(0, 12), seed=st.integers(0, 5))
def test_k_mismatch_equals_capped_brute_force(algorithm, case, k, seed):
    text, pattern = case
    got = hamming_distances(text, pattern, max_mismatches=k, algorithm=algorithm, seed=seed)
    np.testing.assert_array_equal(got, np.minimum(brute_force(text, pattern), k + 1))


@pytest.mark.parametrize(("name", "text", "pattern"), list(adversarial_cases()))
@pytest.mark.parametrize("k", [0, 2, 40])
def test_kangaroo_on_adversarial_cases(name, text, pattern, k):
    got = hamming_distances(text, pattern, max_mismatches=k, algorithm="kangaroo")
    np.testing.assert_array_equal(got, np.minimum(brute_force(text, pattern), k + 1))


def test_k_mismatch_hits_are_exactly_the_alignments_brute_force_finds():
    config = HammingConfig(synthetic=Synthetic(length=30_000, pattern_length=400, plants=6, mutations=4),
                           max_mismatches=5, algorithm="kangaroo", seed=2)
    from nmkit.core.hamming.sources import synthesize

    text, pattern, planted = synthesize(config.synthetic, config.seed)
    truth = brute_force(text, pattern)
    result = scan(config)
    assert [(a.position, a.distance) for a in result.hits] == [(int(i), int(truth[i])) for i in
                                                             np.flatnonzero(truth <= 5)]
    assert {p["position"] for p in planted} <= {a.position for a in result.hits}


def test_approximate_estimates_stay_within_eps():
    eps, delta = 0.3, 0.01
    rng = np.random.default_rng(0)
    m = 6000
    pattern = rng.integers(0, 4, m)
    text = rng.integers(0, 4, 40_000)
    for start, flips in ((1000, 3), (9000, 300), (20000, 2500)):  # small, middle and large distances
        copy = pattern.copy()
        copy[rng.choice(m, flips, replace=False)] += 1
        text[start : start + m] = copy
    plan = SamplingPlan.for_bounds(len(text) - m + 1, eps, delta)
    assert plan.worthwhile(m), "the test must exercise sampling, not the exact fallback"
    exact = hamming_distances(text, pattern)
    for seed in range(3):
        result_config = HammingConfig(text="", pattern="", approx=eps, failure_probability=delta, seed=seed, top=3)
        estimates = hamming_distances(text, pattern, approx=eps, failure_probability=delta, seed=seed)
        assert result_config.mode == "approx"
        np.testing.assert_array_less(np.abs(estimates - exact), eps * exact + 1e-6)
        np.testing.assert_array_equal(estimates[[1000, 9000]], exact[[1000, 9000]])  # small: recounted exactly


def test_approximate_falls_back_to_exact_when_sampling_cannot_pay():
    rng = np.random.default_rng(1)
    text, pattern = rng.integers(0, 4, 5000), rng.integers(0, 4, 50)
    result = scan(HammingConfig(text="", pattern="", approx=0.1), inputs=_inputs(text, pattern))
    assert result.samples is None
    estimates = hamming_distances(text, pattern, approx=0.1)
    np.testing.assert_array_equal(estimates, brute_force(text, pattern))


def test_synthetic_plants_are_the_best_alignments():
    result = scan(HammingConfig(synthetic=Synthetic(length=50_000, pattern_length=64, plants=4, mutations=2),
                                top=4, seed=1))
    assert sorted(a.position for a in result.best) == sorted(p["position"] for p in result.planted)
    assert all(a.distance == 2 for a in result.best)


def _inputs(text, pattern):
    from nmkit.core.hamming.sources import Inputs, TextSource

    return Inputs(TextSource("integers", iter([text]), len(text), "text"), pattern, "integers")
