"""Every exact algorithm equals brute force, on random and on adversarial inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmkit.core.errors import InputError
from nmkit.core.hamming import hamming_distances

from .brute import brute_force

EXACT = ["auto", "direct", "simd", "fft", "abrahamson", "bitpacked"]


def check(text, pattern, algorithm, **options):
    got = hamming_distances(np.asarray(text), np.asarray(pattern), algorithm=algorithm, **options)
    np.testing.assert_array_equal(got, brute_force(text, pattern, options.get("wildcard") and
                                                   int(options["wildcard"])))


@st.composite
def text_and_pattern(draw, max_symbol=6, max_n=120):
    symbols = draw(st.integers(1, max_symbol))
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, n))
    text = draw(st.lists(st.integers(0, symbols - 1), min_size=n, max_size=n))
    pattern = draw(st.lists(st.integers(0, symbols - 1), min_size=m, max_size=m))
    return np.array(text, np.int64), np.array(pattern, np.int64)


@pytest.mark.parametrize("algorithm", EXACT)
@settings(max_examples=40, deadline=None)
@given(case=text_and_pattern())
def test_random_cases_equal_brute_force(algorithm, case):
    check(*case, algorithm)


@pytest.mark.parametrize("algorithm", EXACT)
@settings(max_examples=25, deadline=None)
@given(case=text_and_pattern(), chunk=st.integers(1, 40))
def test_chunk_boundaries_do_not_change_results(algorithm, case, chunk):
    text, pattern = case
    got = hamming_distances(text, pattern, algorithm=algorithm, chunk_size=chunk)
    np.testing.assert_array_equal(got, brute_force(text, pattern))


def adversarial_cases():
    rng = np.random.default_rng(11)
    periodic = np.tile([0, 1, 2], 200)
    yield "all-equal", np.zeros(300, np.int64), np.zeros(37, np.int64)
    yield "all-equal-one-off", np.zeros(300, np.int64), np.where(np.arange(37) == 17, 1, 0)
    yield "periodic", periodic, periodic[4:104]
    yield "periodic-shifted-period", periodic, np.tile([0, 1], 30)
    yield "m-equals-n", rng.integers(0, 4, 90), rng.integers(0, 4, 90)
    yield "m-is-1", rng.integers(0, 5, 200), np.array([3])
    yield "alphabet-of-1", np.full(64, 9), np.full(64, 9)
    yield "alphabet-300", rng.integers(0, 300, 700), rng.integers(0, 300, 150)
    yield "pattern-symbol-absent-from-text", rng.integers(0, 3, 200), np.array([7, 7, 0, 7])
    yield "negative-and-huge-integers", rng.choice([-5, 2**40, 3], 200), rng.choice([-5, 2**40, 3], 20)
    yield "word-boundaries", rng.integers(0, 2, 257), rng.integers(0, 2, 65)


@pytest.mark.parametrize("algorithm", EXACT)
@pytest.mark.parametrize(("name", "text", "pattern"), list(adversarial_cases()))
def test_adversarial_cases_equal_brute_force(algorithm, name, text, pattern):
    check(text, pattern, algorithm)


@pytest.mark.parametrize("algorithm", EXACT)
def test_non_ascii_bytes_and_all_256_values(algorithm):
    rng = np.random.default_rng(3)
    text = bytes(rng.integers(0, 256, 3000, dtype=np.uint8))
    pattern = bytes(range(256))[::-1] + text[100:160]
    doubled = text + pattern + text[:50]
    got = hamming_distances(doubled, pattern, algorithm=algorithm)
    np.testing.assert_array_equal(got, brute_force(doubled, pattern))
    assert got[len(text)] == 0


@pytest.mark.parametrize("algorithm", ["auto", "direct", "simd", "fft", "bitpacked"])
@settings(max_examples=30, deadline=None)
@given(case=text_and_pattern(max_symbol=4), wild_rate=st.floats(0, 0.5), seed=st.integers(0, 99))
def test_wildcards_in_text_and_pattern_match_anything(algorithm, case, wild_rate, seed):
    text, pattern = case
    rng = np.random.default_rng(seed)
    wild = 9
    text = np.where(rng.random(len(text)) < wild_rate, wild, text)
    pattern = np.where(rng.random(len(pattern)) < wild_rate, wild, pattern)
    got = hamming_distances(text, pattern, algorithm=algorithm, wildcard=str(wild))
    np.testing.assert_array_equal(got, brute_force(text, pattern, wildcard=wild))


def test_wildcard_string_in_bytes_mode():
    got = hamming_distances("abracadabra", "a?r?", wildcard="?")
    np.testing.assert_array_equal(got, brute_force(b"abracadabra", b"a?r?", wildcard=ord("?")))


def test_tokens_compare_whole_words():
    text = "the cat sat on the mat the cat ran".split()
    np.testing.assert_array_equal(hamming_distances(text, ["the", "cat"]), brute_force(text, ["the", "cat"]))


def test_abrahamson_refuses_wildcards():
    with pytest.raises(InputError, match="abrahamson does not support a wildcard"):
        hamming_distances("abcabc", "a*c", wildcard="*", algorithm="abrahamson")


@pytest.mark.parametrize(("text", "pattern", "message"), [
    ("abc", "", "pattern is empty"),
    ("ab", "abc", "longer than the text"),
    ("abc", "ab", "wildcard 'xy': in bytes mode it must be a single byte"),
])
def test_bad_input_is_rejected_with_a_clear_message(text, pattern, message):
    with pytest.raises(InputError, match=message):
        hamming_distances(text, pattern, wildcard="xy" if "wildcard" in message else None)
