"""Capital budgeting: the generator's distributions, the file round trip, the exact worst case under constraint
uncertainty, and exact CCG against brute force."""

import itertools

import numpy as np
import pytest

from nmkit.core.errors import InputError
from nmkit.core.robust import solvers
from nmkit.core.robust.capital_budgeting import (
    CapitalBudgetingProblem,
    generate_capital_budget,
    read_capital_budget,
    write_capital_budget,
)
from nmkit.core.robust.ccg import exact_ccg

BUDGETING = CapitalBudgetingProblem()


def test_the_generator_follows_the_spec():
    inst = generate_capital_budget(300, np.random.default_rng(0))
    assert np.all((1 <= inst.cbar) & (inst.cbar <= 10)) and inst.budget == pytest.approx(inst.cbar.sum() / 2)
    np.testing.assert_allclose(inst.rbar, inst.cbar / 5)
    for loadings in (inst.phi, inst.psi):
        assert loadings.shape == (300, 4) and np.all(loadings >= 0)
        np.testing.assert_allclose(loadings.sum(1), 1.0)
        assert abs(loadings.mean() - 0.25) < 0.02  # gaps of 3 uniform cuts: each has mean 1/4
    xi = np.array([1.0, -1.0, 0.5, 0.0])
    np.testing.assert_allclose(inst.costs(xi), inst.cbar * (1 + inst.phi @ xi / 2))


def test_files_round_trip_and_bad_files_are_rejected(tmp_path):
    inst = generate_capital_budget(5, np.random.default_rng(1))
    (tmp_path / "i.txt").write_text(write_capital_budget(inst))
    back = read_capital_budget(tmp_path / "i.txt")
    np.testing.assert_array_equal(back.phi, inst.phi)
    assert back.budget == inst.budget and back.late_fraction == inst.late_fraction
    (tmp_path / "bad.txt").write_text("1 10 0.8\n2 0.4 0.5 0.5 0.5 0.5 0.25 0.25 0.25 0.25\n")
    with pytest.raises(InputError, match="Phi row must be non-negative and sum to 1"):
        read_capital_budget(tmp_path / "bad.txt")


def test_the_worst_case_dominates_a_grid_and_is_attained():
    inst = generate_capital_budget(6, np.random.default_rng(2))
    x = BUDGETING.sample_x(inst, np.random.default_rng(3))
    assert 1.5 * inst.cbar @ x <= inst.budget
    worst = BUDGETING.worst_case(inst, x)
    assert BUDGETING.second_stage(inst, x, worst.xi) == pytest.approx(worst.value)
    grid = np.linspace(-1, 1, 4)
    for xi in itertools.product(grid, repeat=4):
        assert BUDGETING.second_stage(inst, x, np.array(xi)) <= worst.value + 1e-6


@pytest.mark.parametrize("seed", [0, 1])
def test_exact_ccg_equals_brute_force_enumeration(seed):
    inst = generate_capital_budget(5, np.random.default_rng(seed))
    costs = [BUDGETING.robust_cost(inst, np.array(x, float)) for x in itertools.product((0, 1), repeat=5)
             if 1.5 * inst.cbar @ np.array(x) <= inst.budget]
    result = exact_ccg(BUDGETING, inst, tol=1e-9)
    assert -result.objective == pytest.approx(min(costs), rel=1e-7, abs=1e-7)
    assert 1.5 * inst.cbar @ result.x <= inst.budget + 1e-9 and not result.timed_out


def test_scip_and_highs_agree_and_a_time_limit_is_reported_with_its_bound():
    pytest.importorskip("pyscipopt")
    inst = generate_capital_budget(6, np.random.default_rng(4))
    highs = exact_ccg(BUDGETING, inst, tol=1e-9)
    solvers.use("scip")
    try:
        scip = exact_ccg(BUDGETING, inst, tol=1e-9)
    finally:
        solvers.use("highs")
    assert scip.objective == pytest.approx(highs.objective, rel=1e-6)
    limited = exact_ccg(BUDGETING, inst, tol=1e-9, time_limit=1e-3)  # stops after the first iteration
    assert limited.timed_out and limited.bound >= limited.objective - 1e-9
    assert limited.bound >= highs.objective - 1e-6 >= limited.objective - 1e-6


def test_neur2ro_evaluation_layout_reads_like_nmkit_s_format(tmp_path):
    """'seed n 4 B max_loan', the costs, the revenues, n Phi rows, n Psi rows (Neur2RO's CB_n*_xi4_s* files)."""
    from nmkit.core.robust.capital_budgeting import generate_capital_budget, read_capital_budget

    inst = generate_capital_budget(5, np.random.default_rng(4))
    def numbers(values) -> str:
        return " ".join(repr(float(v)) for v in values)

    lines = [f"7 5 4 {inst.budget!r} {float(inst.cbar.sum())!r}", numbers(inst.cbar), numbers(inst.rbar)]
    lines += [numbers(row) for row in (*inst.phi, *inst.psi)]
    (tmp_path / "CB_n5_xi4_s7").write_text("\n".join(lines) + "\n")
    read = read_capital_budget(tmp_path / "CB_n5_xi4_s7")
    for name in ("cbar", "rbar", "phi", "psi"):
        np.testing.assert_array_equal(getattr(read, name), getattr(inst, name))
    assert read.budget == inst.budget and read.late_fraction == 0.8
    (tmp_path / "short").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(InputError, match="expected 5 costs, 5 revenues, then 10 lines of 4 loadings"):
        read_capital_budget(tmp_path / "short")
    (tmp_path / "dim").write_text(lines[0].replace(" 5 4 ", " 5 3 ") + "\n" + "\n".join(lines[1:]) + "\n")
    with pytest.raises(InputError, match="xi_dim 4"):
        read_capital_budget(tmp_path / "dim")
