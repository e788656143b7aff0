"""The portfolio solver and what makes it fast: the second-stage dynamic program against enumeration and the
MILP, the static (committed-plan) decision against its closed form, CCG with a relaxed main problem against brute
force, the portfolio against exact CCG, and the batch rows / reference reading."""

import dataclasses
import itertools

import numpy as np
import pytest

from nmkit.core.errors import InputError
from nmkit.core.robust import batch, instances, portfolio, repair_dp
from nmkit.core.robust.ccg import exact_ccg
from nmkit.core.robust.knapsack import KnapsackProblem, recourse

KNAPSACK = KnapsackProblem()


def whole(instance: instances.Knapsack, halves: bool = False) -> instances.Knapsack:
    """The instance with whole weights (repair weights in halves with ``halves``), as in the benchmark files."""
    t = np.round(instance.t * 2) / 2 if halves else np.round(instance.t)
    return dataclasses.replace(instance, c=np.round(instance.c), t=np.maximum(t, 0.5 if halves else 1.0),
                               capacity=float(np.round(instance.capacity)))


def enumerated_recourse(instance, x, xi) -> float:
    """max gain over every (out, produced, repaired) choice per chosen item: 3^n plans."""
    best = 0.0
    for plan in itertools.product((0, 1, 2), repeat=instance.n):
        plan = np.array(plan) * x
        y, r = (plan >= 1).astype(float), (plan == 2).astype(float)
        if instance.c @ y + instance.t @ r <= instance.capacity + 1e-9:
            best = max(best, (instance.f - instance.phat * xi) @ y + instance.phat * xi @ r)
    return best


@pytest.mark.parametrize(("seed", "halves"), [(0, False), (1, False), (2, True), (3, True)])
def test_the_dynamic_program_equals_enumeration_and_the_milp(seed, halves):
    rng = np.random.default_rng(seed)
    real = instances.generate_knapsack(7, instances.CORRELATIONS[seed], 40, 1.0, 0.3, rng)
    inst = whole(real, halves)
    assert repair_dp.weight_scale(inst.c, inst.t, inst.capacity) == (2 if halves and np.any(inst.t % 1) else 1)
    assert repair_dp.weight_scale(real.c, real.t, real.capacity) == 0  # real-valued weights: the MILP
    for _ in range(6):
        x, xi = (rng.random(7) < 0.8).astype(float), rng.random(7) * (rng.random(7) < 0.5)
        value, y, r = recourse(inst, x, xi)
        assert -value == pytest.approx(enumerated_recourse(inst, x, xi), abs=1e-9)
        assert np.all(y <= x) and np.all(r <= y) and inst.c @ y + inst.t @ r <= inst.capacity + 1e-9
        milp_value = recourse(dataclasses.replace(inst, c=inst.c * (1 + 1e-12)), x, xi)[0]  # forces the MILP
        assert value == pytest.approx(milp_value, rel=1e-7, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_ccg_with_a_relaxed_main_problem_still_ends_exact(seed):
    rng = np.random.default_rng(seed)
    inst = whole(instances.generate_knapsack(6, instances.CORRELATIONS[seed + 2], 40, 0.5, 0.3, rng))
    costs = [KNAPSACK.robust_cost(inst, np.array(x, float)) for x in itertools.product((0, 1), repeat=inst.n)]
    result = exact_ccg(KNAPSACK, inst, tol=1e-9, main_gap=0.2)
    assert -result.objective == pytest.approx(min(costs), rel=1e-7, abs=1e-6)
    assert result.bound >= result.objective - 1e-6 and not result.timed_out


def static_value(instance, x, y, r) -> float:
    """A committed plan's worst profit: the budgeted adversary takes the largest losses phat (y - r), whole ones
    up to floor(Gamma) and the fraction of the next."""
    losses = np.sort(instance.phat * (y - r))[::-1]
    whole_count = int(np.floor(instance.gamma))
    loss = losses[:whole_count].sum() + (instance.gamma - whole_count) * (losses[whole_count] if whole_count <
                                                                          len(losses) else 0.0)
    return (instance.pbar - instance.f) @ x + instance.f @ y - loss


def test_the_static_decision_is_the_best_committed_plan_and_bounds_its_robust_profit():
    rng = np.random.default_rng(5)
    inst = whole(instances.generate_knapsack(5, "WC", 80, 1.0, 0.5, rng))
    best = -np.inf
    for plan in itertools.product((0, 1, 2, 3), repeat=inst.n):  # 0 not chosen, 1 chosen out, 2 made, 3 repaired
        plan = np.array(plan)
        x, y, r = (plan >= 1).astype(float), (plan >= 2).astype(float), (plan == 3).astype(float)
        if inst.c @ y + inst.t @ r <= inst.capacity + 1e-9:
            best = max(best, static_value(inst, x, y, r))
    [(name, x)] = KNAPSACK.committed_plans(inst, 30.0)
    profit = -KNAPSACK.robust_cost(inst, x)
    assert name == "static" and profit >= best - 1e-4 * abs(best)  # adapting the recourse can only help


def test_the_portfolio_keeps_the_best_exactly_scored_candidate_and_matches_exact_ccg():
    rng = np.random.default_rng(7)
    inst = whole(instances.generate_knapsack(7, "ASC", 40, 0.5, 0.25, rng))
    result = portfolio.solve(KNAPSACK, inst, time_limit=60.0, main_gap=1e-3)
    exact = exact_ccg(KNAPSACK, inst, tol=1e-9)
    assert result.status == "optimal" and result.profit == pytest.approx(exact.objective, rel=1e-6)
    assert result.profit == pytest.approx(-KNAPSACK.robust_cost(inst, result.x), rel=1e-9)
    assert result.profit >= max(result.candidates.values()) - 1e-9 and result.profit >= result.nominal_profit
    assert result.bound >= result.profit - 1e-6


def test_reference_files_keep_dotted_names_and_rows_carry_gaps(tmp_path):
    (tmp_path / "ref.csv").write_text("instance,best_known_profit,neur2ro_gap_percent\n"
                                      "RKP_UN_n6_dev0.1_d1,100,2.5\nRKP_UN_n6_dev0.2_d1,200,x\n")
    found = batch.read_reference(tmp_path / "ref.csv", "best_known_profit")
    assert found == {"RKP_UN_n6_dev0.1_d1": {"best_known_profit": 100.0, "neur2ro_gap_percent": 2.5},
                     "RKP_UN_n6_dev0.2_d1": {"best_known_profit": 200.0}}
    assert batch.instance_name(tmp_path / "RKP_UN_n6_dev0.1_d1") == "RKP_UN_n6_dev0.1_d1"
    assert batch.instance_name("a_dev0.1.txt") == "a_dev0.1" and batch.group_of("RKP_ASC_n80_x") == "ASC"
    with pytest.raises(InputError, match="no column 'profit'"):
        batch.read_reference(tmp_path / "ref.csv", "profit")
    (tmp_path / "nan.csv").write_text("instance,best_known_profit\na,nan\n")
    with pytest.raises(InputError, match="line 2: best_known_profit is not a number"):
        batch.read_reference(tmp_path / "nan.csv", "best_known_profit")


def test_batch_rows_and_summary(tmp_path):
    rng = np.random.default_rng(11)
    for name, correlation in (("RKP_UN_n6_a", "UN"), ("RKP_SC_n6_b", "SC")):
        inst = whole(instances.generate_knapsack(6, correlation, 40, 0.5, 0.3, rng))
        (tmp_path / name).write_text(instances.write_knapsack(inst))
    files = batch.instance_files(tmp_path)
    rows = batch.solve_files(KNAPSACK, files, None, {"RKP_UN_n6_a": {"best_known_profit": 1e9}}, "best_known_profit",
                             {"time_limit": 20.0})
    assert [r.instance for r in rows] == ["RKP_SC_n6_b", "RKP_UN_n6_a"] and [r.group for r in rows] == ["SC", "UN"]
    assert rows[0].gap_percent is None and rows[1].gap_percent == pytest.approx(100 * (1e9 - rows[1].profit) / 1e9)
    text = batch.results_csv(rows).splitlines()
    assert text[0].split(",") == list(batch.CSV_COLUMNS) and len(text) == 3
    groups = {g["group"]: g for g in batch.summary(rows)}
    assert set(groups) == {"n = 6", "UN", "SC", "all"} and groups["all"]["instances"] == 2
