"""The direction network and its training: shapes at any resolution, the loss falls, a small trained model
solves to 1e-6 with a residual we recompute independently, and transfers to another grid size."""

import numpy as np
import pytest
import torch

from nmkit.core.linear import problems
from nmkit.core.linear.config import LinearConfig
from nmkit.core.linear.krylov import dcdm, pcg
from nmkit.core.linear.network import DirectionNet, direction_function
from nmkit.core.linear.run import run
from nmkit.core.linear.training import ritz_vectors
from nmkit.core.recipe import build_config


@pytest.fixture(scope="module")
def trained():
    config = build_config(LinearConfig, [("test", {"action": "train", "n": 24, "steps": 150, "levels": 2}, None)])
    return run(config)


@pytest.mark.parametrize(("dim", "shape"), [(2, (1, 1, 17, 9)), (2, (3, 1, 32, 32)), (3, (1, 1, 9, 10, 11))])
def test_the_network_is_fully_convolutional(dim, shape):
    net = DirectionNet(dim, channels=4, levels=2)
    assert net(torch.randn(shape)).shape == shape


def test_ritz_vectors_are_orthonormal_and_start_at_the_smooth_end():
    problem = problems.build("poisson2d", 16)
    ritz = ritz_vectors(problem.matrix, 60, problem.fluid, np.random.default_rng(0))
    np.testing.assert_allclose(ritz.T @ ritz, np.eye(ritz.shape[1]), atol=1e-8)
    rayleigh = np.einsum("ij,ij->j", ritz, problem.matrix @ ritz)
    assert rayleigh[0] < 0.05 * rayleigh[-1] and np.all(np.diff(rayleigh) > -1e-8)


def test_a_small_trained_model_beats_cg_and_reports_its_true_residual(trained):
    rows = {s["method"]: s for s in trained.solves}
    assert trained.training["loss_last_50_mean"] < 0.5 * trained.training["loss_first"]
    assert rows["dcdm"]["converged"] and rows["dcdm"]["iterations"] < rows["cg"]["iterations"]
    net = DirectionNet(2, levels=2)
    net.load_state_dict(trained.model["state_dict"])
    net.eval()
    problem = problems.build("poisson2d", 24)
    b = problems.right_hand_side(problem, "random", np.random.default_rng(1))  # the run's right-hand side
    f = direction_function(net, problem.shape, torch.ones(problem.size))
    result = dcdm(problem.matrix, b, f, tol=1e-6, max_iter=500)
    independent = np.linalg.norm(b - problem.matrix.toarray() @ result.x) / np.linalg.norm(b)
    assert independent <= 1e-6
    assert rows["dcdm"]["true_relative_residual"] == pytest.approx(independent, rel=1e-6)


def test_the_model_transfers_to_a_larger_grid(trained):
    net = DirectionNet(2, levels=2)
    net.load_state_dict(trained.model["state_dict"])
    net.eval()
    problem = problems.build("poisson2d", 40)
    b = problems.right_hand_side(problem, "smooth", np.random.default_rng(3))
    ours = dcdm(problem.matrix, b, direction_function(net, problem.shape, torch.ones(problem.size)), tol=1e-6,
                max_iter=500)
    assert ours.converged and ours.iterations < pcg(problem.matrix, b, tol=1e-6, max_iter=500).iterations
