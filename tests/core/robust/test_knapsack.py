"""Robust knapsack: the generator's distributions, the file round trip, and exact CCG against brute force."""

import itertools

import numpy as np
import pytest

from nmkit.core.errors import InputError
from nmkit.core.robust import instances
from nmkit.core.robust.ccg import exact_ccg
from nmkit.core.robust.knapsack import KnapsackProblem

KNAPSACK = KnapsackProblem()


@pytest.mark.parametrize("correlation", instances.CORRELATIONS)
def test_the_generator_follows_the_spec(correlation):
    inst = instances.generate_knapsack(200, correlation, 40, 0.5, 0.1, np.random.default_rng(0))
    assert inst.capacity == pytest.approx(40 / 101 * inst.c.sum()) and inst.gamma == pytest.approx(20)
    assert np.all((1 <= inst.c) & (inst.c <= 1000))
    degradation, rejection = inst.phat / inst.pbar, inst.f / inst.pbar
    assert np.all((0.25 <= degradation) & (degradation <= 0.75)) and np.all((1.1 <= rejection) & (rejection <= 1.5))
    if correlation == "SC":
        np.testing.assert_allclose(inst.pbar, inst.c + 100)
        np.testing.assert_allclose(inst.t, inst.phat / 2 + inst.c / 10)
    if correlation == "WC":
        assert np.all(np.abs(inst.pbar - inst.c) <= 50)


def test_files_round_trip_and_bad_files_are_rejected(tmp_path):
    inst = instances.generate_knapsack(6, "WC", 80, 1.0, 0.2, np.random.default_rng(1))
    (tmp_path / "i.txt").write_text(instances.write_knapsack(inst))
    back = instances.read_knapsack(tmp_path / "i.txt")
    np.testing.assert_array_equal(back.c, inst.c)
    np.testing.assert_array_equal(back.f, inst.f)
    assert back.capacity == inst.capacity and back.gamma == inst.gamma
    (tmp_path / "bad.txt").write_text("3 100 1\n1 2 3 4 5\n")
    with pytest.raises(InputError, match="header says 3 items"):
        instances.read_knapsack(tmp_path / "bad.txt")
    (tmp_path / "neg.txt").write_text("1 100 1\n1 2 3 -4 5\n")
    with pytest.raises(InputError, match="must be positive"):  # an item weight below zero
        instances.read_knapsack(tmp_path / "neg.txt")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_ccg_equals_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    inst = instances.generate_knapsack(6, instances.CORRELATIONS[seed], 40, 0.5, 0.3, rng)
    costs = {x: KNAPSACK.robust_cost(inst, np.array(x, float)) for x in itertools.product((0, 1), repeat=inst.n)}
    result = exact_ccg(KNAPSACK, inst, tol=1e-9)
    assert -result.objective == pytest.approx(min(costs.values()), rel=1e-7, abs=1e-6)
    assert result.bound >= result.objective - 1e-6 and not result.timed_out


def test_the_worst_case_dominates_every_sampled_scenario():
    rng = np.random.default_rng(3)
    inst = instances.generate_knapsack(8, "UN", 40, 1.0, 0.25, rng)
    x = (rng.random(8) < 0.6).astype(float)
    worst = KNAPSACK.worst_case(inst, x)
    assert worst.xi.sum() <= inst.gamma + 1e-9 and np.all((-1e-9 <= worst.xi) & (worst.xi <= 1 + 1e-9))
    assert KNAPSACK.second_stage(inst, x, worst.xi) == pytest.approx(worst.value)
    for _ in range(40):  # spread-out and vertex-like samples
        xi = KNAPSACK.sample_xi(inst, rng)
        assert xi.sum() <= inst.gamma + 1e-9 and np.all((0 <= xi) & (xi <= 1))
        assert KNAPSACK.second_stage(inst, x, xi) <= worst.value + 1e-6
