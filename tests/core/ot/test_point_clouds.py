"""Point clouds solved without the cost matrix: the same objective, gradient and plan as the dense path, memory
that does not grow with m x n, the stall test, and memory estimates that refuse what will not fit."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.spatial.distance
import torch

from nmkit.core import memory
from nmkit.core.errors import InputError
from nmkit.core.ot import OTConfig, semidual_cpu, smooth
from nmkit.core.ot.problems import Points, Problem, build_problem
from nmkit.core.ot.transport import dense_copies, iteration_budget, matrix_free, transport


def _clouds(m=40, n=30, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(m, d)), rng.normal(size=(n, d)) * 0.7 + 1.5


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cityblock"])
@pytest.mark.parametrize("d", [1, 2, 5])
@pytest.mark.parametrize("k", [1, 2, 4])
def test_costs_on_the_fly_equal_the_dense_semi_dual(metric, d, k):
    source, target = _clouds(d=d)
    cost = scipy.spatial.distance.cdist(source, target, metric)
    scale = float(semidual_cpu.max_pair_cost(source, target, semidual_cpu.METRICS[metric]))
    assert scale == pytest.approx(cost.max(), rel=1e-12)
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.5, 1.5, (1, 40)), rng.uniform(0.5, 1.5, (1, 30))
    a, b = a / a.sum(), b / b.sum()
    alpha = rng.normal(0, 0.2, (1, 40))
    dense = smooth.semi_dual_tensors(*(torch.from_numpy(x) for x in (alpha, a, b, (cost / scale).T[None].copy())),
                                     0.3, k)
    free = semidual_cpu.semi_dual_points(alpha, a, b, source, target, metric, scale, 0.3, k)
    assert free[0] == pytest.approx(dense[0].numpy(), abs=1e-12)
    np.testing.assert_allclose(free[1], dense[1].numpy(), atol=1e-12)
    rebuilt = lambda values, indices: {(j, int(i)): v for j in range(30)  # noqa: E731
                                       for i, v in zip(indices[0, j], values[0, j], strict=True) if v > 0}
    ours, theirs = rebuilt(free[2], free[3]), rebuilt(dense[2].values.numpy(), dense[2].indices.numpy())
    assert ours.keys() == theirs.keys()
    assert all(ours[key] == pytest.approx(theirs[key], abs=1e-12) for key in ours)


def test_point_files_are_solved_matrix_free_and_match_the_cost_matrix_file(tmp_path):
    source, target = _clouds(60, 50)
    np.save(tmp_path / "s.npy", source)
    np.save(tmp_path / "t.npy", target)
    np.save(tmp_path / "c.npy", scipy.spatial.distance.cdist(source, target, "sqeuclidean"))
    from_points = OTConfig(source=tmp_path / "s.npy", target=tmp_path / "t.npy")
    problem = build_problem(from_points)
    assert problem.cost is None and matrix_free(from_points, problem, "cpu")
    free = transport(from_points, problem)
    dense = transport(OTConfig(cost=tmp_path / "c.npy"))
    assert free.converged and dense.converged
    assert free.cost[0] == pytest.approx(dense.cost[0], rel=1e-6)
    assert free.max_nnz_per_column <= 2 and free.column_marginal_error < 1e-12
    assert problem.cost is None  # never formed


def test_the_dense_paths_build_the_matrix_from_points_when_they_need_it():
    config = OTConfig(problem="gaussians", size=30, reg="quadratic")
    problem = build_problem(config)
    assert not matrix_free(config, problem, "cpu")
    result = transport(config, problem)
    expected = scipy.spatial.distance.cdist(problem.points.source, problem.points.target, "sqeuclidean")
    np.testing.assert_array_equal(problem.cost[0], expected)
    assert result.converged


def test_the_stall_test_ends_a_long_solve_and_a_short_budget_says_how_far_it_got():
    config = OTConfig(problem="gaussians", size=300, tol=1e-15)  # L-BFGS-B's own test effectively off
    done = transport(config)
    assert done.converged and "over the last 50 iterations" in done.message
    cut = transport(OTConfig(problem="gaussians", size=300, tol=1e-15, max_iter=60))
    assert not cut.converged and cut.iterations == 60 and "still gained" in cut.message
    assert cut.objective[0] < done.objective[0]


def test_the_iteration_budget_grows_with_the_problem():
    small, large = build_problem(OTConfig(problem="gaussians", size=500)), \
        build_problem(OTConfig(problem="gaussians", size=20_000))
    assert iteration_budget(OTConfig(problem="gaussians"), small) == 1000
    assert iteration_budget(OTConfig(problem="gaussians"), large) == 20_000
    assert iteration_budget(OTConfig(problem="gaussians", max_iter=7), large) == 7


def test_memory_estimates_follow_the_path_and_refuse_a_matrix_that_will_not_fit(monkeypatch):
    problem = Problem(None, np.full((1, 50_000), 2e-5), np.full((1, 50_000), 2e-5),
                      points=Points(np.zeros((50_000, 2)), np.ones((50_000, 2)), "sqeuclidean"), name="clouds.npy")
    assert dense_copies(OTConfig(problem="gaussians"), problem, "cpu") == 2
    assert dense_copies(OTConfig(problem="gaussians", formulation="dual"), problem, "cpu") == 3
    monkeypatch.setattr(memory, "_limit", 8 << 30)
    with pytest.raises(InputError, match=r"clouds.npy .*needs about 37.3 GiB"):
        problem.dense_cost(2)


def test_a_memory_mapped_cost_matrix_with_a_nan_is_refused_and_weights_must_match_its_shape(tmp_path):
    cost = np.ones((300, 200))
    cost[299, 199] = np.nan
    np.save(tmp_path / "c.npy", cost)
    with pytest.raises(InputError, match="c.npy: a cost matrix contain NaN"):
        build_problem(OTConfig(cost=tmp_path / "c.npy"))
    np.save(tmp_path / "c.npy", np.ones((300, 200)))
    np.save(tmp_path / "w.npy", np.ones(200))
    with pytest.raises(InputError, match=r"source_weights .*expected shape \(300,\)"):
        build_problem(OTConfig(cost=tmp_path / "c.npy", source_weights=tmp_path / "w.npy"))


def test_a_subsample_start_reaches_the_same_optimum_in_fewer_iterations(monkeypatch):
    from nmkit.core.ot import multiscale, solve

    problem = build_problem(OTConfig(problem="gaussians", size=600))
    points = problem.points
    scale = float(semidual_cpu.max_pair_cost(points.source, points.target, 0))
    options = {"scale": scale, "gamma": 0.1, "k": 2, "tol": 1e-9, "max_iter": 5000}
    cold = solve.solve_points(points, problem.a, problem.b, coarse=False, **options)
    monkeypatch.setattr(multiscale, "COARSE_BELOW", 200)
    started = []
    original = multiscale.warm_start
    monkeypatch.setattr(multiscale, "warm_start", lambda *args: started.append(original(*args)) or started[-1])
    warm = solve.solve_points(points, problem.a, problem.b, **options)
    assert started[0] is None and started[1].shape == (600,)  # 150 sampled points start cold, then carry over
    assert warm.converged and cold.converged
    assert warm.objective[0] == pytest.approx(cold.objective[0], rel=2e-5)
    assert warm.iterations < cold.iterations
