"""relax-sor: solvers against closed forms and references, learners' guarantees, resumable runs."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg

from nmkit.core.errors import InputError, Interrupted, Terminated
from nmkit.core.sor import learners
from nmkit.core.sor.config import SORConfig
from nmkit.core.sor.run import run, systems_table
from nmkit.core.sor.sequences import from_files, heat2d, jacobi_radius, laplacian_2d, omega_from_jacobi_radius
from nmkit.core.sor.solvers import solve


@pytest.mark.parametrize("side", [10, 31])
def test_omega_star_of_the_model_problem_is_youngs_formula(side):
    h = 1 / (side + 1)
    omega = omega_from_jacobi_radius(jacobi_radius(laplacian_2d(side)))
    np.testing.assert_allclose(omega, 2 / (1 + np.sin(np.pi * h)), rtol=1e-10)


@pytest.mark.parametrize("side", [16, 32])
def test_sor_at_omega_star_converges_within_25_percent_of_theory(side):
    a = laplacian_2d(side)
    h = 1 / (side + 1)
    omega = 2 / (1 + np.sin(np.pi * h))
    b = np.random.default_rng(0).normal(size=side * side)
    result = solve("sor", a, b, omega, rtol=1e-8)
    theory = np.log(1e-8) / np.log(omega - 1)
    assert result.converged and result.iterations <= 1.25 * theory


def test_one_sor_sweep_equals_forward_substitution_with_d_over_omega_plus_l():
    rng = np.random.default_rng(1)
    a = laplacian_2d(6) + scipy.sparse.diags_array(rng.uniform(0, 1, 36))
    b, x0, omega = rng.normal(size=36), rng.normal(size=36), 1.3
    m = scipy.sparse.tril(a, k=-1) + scipy.sparse.diags_array(a.diagonal() / omega)
    expected = x0 + scipy.sparse.linalg.spsolve_triangular(scipy.sparse.csr_matrix(m), b - a @ x0, lower=True)
    np.testing.assert_allclose(solve("sor", a, b, omega, max_iter=1, x0=x0).x, expected, rtol=1e-12)


@pytest.mark.parametrize("method", ["sor", "ssor-pcg"])
@pytest.mark.parametrize("omega", [0.8, 1.0, 1.6])
def test_solvers_reach_the_direct_solution(method, omega):
    a = laplacian_2d(12)
    b = np.random.default_rng(2).normal(size=144)
    result = solve(method, a, b, omega, rtol=1e-10)
    exact = scipy.sparse.linalg.spsolve(scipy.sparse.csc_matrix(a), b)
    assert result.converged
    np.testing.assert_allclose(result.x, exact, rtol=1e-7, atol=1e-9)


def test_ssor_pcg_beats_plain_sor_in_iterations_on_heat_systems():
    instance = next(iter(heat2d(50, 30, np.random.default_rng(0))))
    for instance in heat2d(50, 30, np.random.default_rng(0)):  # a step with a strong diffusion
        if instance.context > 5:
            break
    sor = solve("sor", instance.a, instance.b, 1.5, x0=instance.x0)
    pcg = solve("ssor-pcg", instance.a, instance.b, 1.5, x0=instance.x0)
    assert pcg.converged and pcg.iterations < sor.iterations


def test_the_iteration_cap_is_reported_not_hidden():
    result = solve("sor", laplacian_2d(20), np.ones(400), 1.0, max_iter=5)
    assert result.iterations == 5 and not result.converged


@pytest.mark.parametrize(("a", "b", "omega", "message"), [
    (scipy.sparse.csr_array(np.ones((2, 3))), np.ones(2), 1.0, "expected a square matrix"),
    (scipy.sparse.csr_array(np.array([[0.0, 1.0], [1.0, 2.0]])), np.ones(2), 1.0, "zero on the diagonal"),
    (laplacian_2d(2), np.ones(4), 2.0, "SOR needs 0 < omega < 2"),
])
def test_bad_systems_are_rejected(a, b, omega, message):
    from nmkit.core.sor.solvers import check_system

    with pytest.raises(InputError, match=message):
        check_system(a, b)
        solve("sor", a, b, omega)


@pytest.mark.parametrize("seed", range(5))
def test_tsallis_probabilities_are_a_distribution(seed):
    rng = np.random.default_rng(seed)
    losses = rng.exponential(rng.choice([0.1, 10.0, 1000.0]), 20)
    for t in (1, 10, 10_000):
        p = learners.tsallis_probabilities(losses, 2 / np.sqrt(t))
        assert np.all(p >= 0)
        np.testing.assert_allclose(p.sum(), 1.0, atol=1e-9)
        assert np.argmax(p) == np.argmin(losses)


def test_tsallis_inf_regret_is_sublinear_on_a_known_bandit():
    """Bernoulli-like costs, best arm 3: regret / T must fall as T grows (fixed seeds)."""
    means = np.array([9.0, 7.0, 6.0, 3.0, 8.0])
    ratios = []
    for horizon in (500, 4000):
        learner, rng, regret = learners.TsallisINF(5), np.random.default_rng(7), 0.0
        for _ in range(horizon):
            arm = int(rng.choice(5, p=learner.distribution(0.0)))
            learner.update(arm, 0.0, 1.0 + rng.poisson(means[arm]))
            regret += means[arm] - means.min()
        ratios.append(regret / horizon)
    assert ratios[1] < 0.5 * ratios[0]


@pytest.mark.parametrize("learner", ["tsallis-inf", "chebcb", "tsallis-inf-cb"])
def test_learner_state_round_trips(learner):
    config = SORConfig(learner=learner, steps=5)
    from nmkit.core.sor.run import make_learner

    first = make_learner(config, 20, (-0.15, 0.45))
    for t in range(7):
        first.distribution(0.1 * t - 0.1)
        first.update(t % 20, 0.1 * t - 0.1, 30.0 + t)
    second = make_learner(config, 20, (-0.15, 0.45))
    second.load(first.state())
    np.testing.assert_array_equal(first.distribution(0.2), second.distribution(0.2))


@pytest.mark.parametrize("stop", [KeyboardInterrupt, Terminated])
def test_an_interrupted_run_saves_its_state_and_resumes_exactly(tmp_path, stop):
    config = SORConfig(steps=60, checkpoint_every=20, learner="chebcb")
    whole = run(config)
    state, solved = tmp_path / "state.npz", []

    def interrupt_at_33(n):
        solved.append(n)
        if len(solved) == 33:
            raise stop()  # as the signal would, between two systems' bookkeeping

    with pytest.raises(Interrupted, match="interrupted after 32 of 60 systems") as caught:
        run(config, state_file=state, advance=interrupt_at_33)
    assert caught.value.exit_code == (143 if stop is Terminated else 130)
    resumed = run(dataclasses.replace(config, resume=True), state_file=state)
    assert resumed.records.arms == whole.records.arms
    assert resumed.learner_iterations == whole.learner_iterations


@pytest.mark.parametrize(("change", "field"), [({"learner": "tsallis-inf"}, "learner"), ({"steps": 40}, "steps"),
                                               ({"variance": "low"}, "variance"), ({"rtol": 1e-6}, "rtol")])
def test_resuming_with_other_settings_is_refused(tmp_path, change, field):
    state = tmp_path / "state.npz"
    run(SORConfig(steps=5, learner="chebcb"), state_file=state)
    with pytest.raises(InputError, match=f"was written with {field} = "):
        run(SORConfig(**{"steps": 5, "learner": "chebcb", **change, "resume": True}), state_file=state)


def test_an_existing_state_file_needs_resume(tmp_path):
    state = tmp_path / "state.npz"
    run(SORConfig(steps=3), state_file=state)
    with pytest.raises(InputError, match="exists; pass --resume"):
        run(SORConfig(steps=3), state_file=state)


def test_files_sequence_round_trip(tmp_path):
    import scipy.io

    for t in range(3):
        scipy.io.mmwrite(tmp_path / f"A_{t}.mtx", scipy.sparse.coo_matrix(laplacian_2d(4) * (1 + t)))
        np.save(tmp_path / f"b_{t}.npy", np.ones(16))
    np.save(tmp_path / "context.npy", np.array([1.0, 2.0, 3.0]))
    loaded = from_files(tmp_path)
    assert [i.context for i in loaded] == [1.0, 2.0, 3.0]
    result = run(SORConfig(sequence="files", path=tmp_path, steps=10))
    assert result.steps == 3 and result.best_fixed_iterations <= result.gauss_seidel_iterations
    (tmp_path / "b_2.npy").unlink()
    with pytest.raises(InputError, match="t = 2 has a matrix or a right-hand side but not both"):
        from_files(tmp_path)


def _sequence(count=5, side=6):
    rng = np.random.default_rng(4)
    matrices = [laplacian_2d(side) + c * scipy.sparse.identity(side * side) for c in rng.uniform(0, 0.5, count)]
    return matrices, [rng.standard_normal(side * side) for _ in range(count)], rng.uniform(0, 1, count)


def test_sparse_sequences_match_the_dense_one(tmp_path):
    """The same systems as dense arrays, as a CSR stack in one .npz, and as a folder of scipy .npz files."""
    matrices, rhs, context = _sequence()
    dense = {f"A_{t}": a.toarray() for t, a in enumerate(matrices)}
    stack = {f"A_{t}.{part}": getattr(a.tocsr(), part) for t, a in enumerate(matrices)
             for part in ("data", "indices", "indptr")} | {f"A_{t}.shape": np.array(a.shape)
                                                          for t, a in enumerate(matrices)}
    common = {f"b_{t}": b for t, b in enumerate(rhs)} | {"context": context}
    np.savez(tmp_path / "dense.npz", **dense, **common)
    np.savez(tmp_path / "stack.npz", **stack, **common)
    folder = tmp_path / "folder"
    folder.mkdir()
    for t, (a, b) in enumerate(zip(matrices, rhs, strict=True)):
        scipy.sparse.save_npz(folder / f"A_{t}.npz", a.tocsr())
        np.save(folder / f"b_{t}.npy", b)
    np.save(folder / "context.npy", context)
    results = [run(SORConfig(sequence="files", path=p, learner="chebcb")) for p in
               (tmp_path / "dense.npz", tmp_path / "stack.npz", folder)]
    assert [r.steps for r in results] == [5, 5, 5]  # no steps given: the whole sequence
    assert results[0].records.arms == results[1].records.arms == results[2].records.arms
    assert results[0].fixed_iterations == results[1].fixed_iterations == results[2].fixed_iterations
    cut = run(SORConfig(sequence="files", path=folder, steps=3))
    assert cut.steps == 3 and cut.notes == ["ran the first 3 of the 5 systems in folder (steps 3)"]
    stack["A_2.indptr"] = stack["A_2.indptr"][:-1]
    np.savez(tmp_path / "broken.npz", **stack, **common)
    with pytest.raises(InputError, match="A_2 needs consistent arrays"):
        from_files(tmp_path / "broken.npz")


def test_systems_table_agrees_with_the_totals():
    result = run(SORConfig(steps=30, learner="tsallis-inf"))
    columns, rows = systems_table(result)
    table = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    assert table["t"] == list(range(30)) and sum(table["iterations"]) == result.learner_iterations
    for omega, total in result.fixed_iterations.items():
        assert sum(table[f"omega_{float(omega):.4f}"]) == total
    assert table["gauss_seidel"] == table["omega_1.0000"] and sum(table["gauss_seidel"]) == \
        result.gauss_seidel_iterations
    assert sum(table["optimal"]) == result.instance_optimal_iterations
    chosen = [result.grid.index(float(w)) for w in table["omega"]]
    assert [table[f"omega_{result.grid[a]:.4f}"][t] for t, a in enumerate(chosen)] == table["iterations"]


def test_empty_sequence_is_rejected(tmp_path):
    with pytest.raises(InputError, match="empty"):
        from_files(tmp_path)


@pytest.mark.parametrize("side", [10, 40, 130])
def test_red_black_and_lexicographic_sor_converge_to_the_same_solution(side):
    from nmkit.core.sor.stencil import Stencil, solve_redblack

    a = laplacian_2d(side) + 0.3 * scipy.sparse.identity(side * side)
    b = np.random.default_rng(side).normal(size=side * side)
    omega = omega_from_jacobi_radius(4 * np.cos(np.pi / (side + 1)) / 4.3)
    lexicographic = solve("sor", a, b, omega, rtol=1e-10)
    red_black = solve_redblack(Stencil(side, 4.3, 1.0), b, omega, rtol=1e-10)
    assert lexicographic.converged and red_black.converged
    np.testing.assert_allclose(red_black.x, lexicographic.x, rtol=1e-7, atol=1e-9)


def test_torch_red_black_solve_matches_the_compiled_one():
    from nmkit.core.sor.stencil import Stencil, solve_redblack, solve_redblack_torch

    stencil = Stencil(12, 4.2, 1.0)
    b = np.random.default_rng(5).normal(size=144)
    compiled = solve_redblack(stencil, b, 1.6)
    tensors = solve_redblack_torch(stencil, b, 1.6, device="cpu")
    assert tensors.iterations == compiled.iterations and tensors.converged
    np.testing.assert_allclose(tensors.x, compiled.x, rtol=1e-10, atol=1e-12)
