"""Neur2RO pieces: the affine-in-x shortcut, interval bounds, the big-M embedding against torch, the budget
projection, and ML-CCG's reported objective being the exact value of its decision."""

import numpy as np
import pytest
import torch

from nmkit.core.robust import embedding as em
from nmkit.core.robust import instances
from nmkit.core.robust.knapsack import exact_ccg, first_stage_cost, worst_case
from nmkit.core.robust.learning import collect, fit
from nmkit.core.robust.mlccg import _tensor, main_problem, ml_ccg, project_budget, x_embedding_affine
from nmkit.core.robust.network import FeatureScaler, SetEncoder


@pytest.fixture(scope="module")
def setting():
    rng = np.random.default_rng(0)
    family = [instances.generate_knapsack(int(rng.integers(6, 10)), "UN", 40.0, 0.5, 0.2, rng) for _ in range(8)]
    scaler = FeatureScaler.fit(family)
    net, info = fit(collect(family, scaler, 6, 10, rng), epochs=30, lr=1e-3, batch_size=32, seed=0)
    return family, scaler, net, info


def test_the_x_branch_is_affine_in_binary_x(setting):
    family, scaler, net, _ = setting
    instance = family[0]
    s0, slope = x_embedding_affine(net, scaler, instance)
    for x in np.random.default_rng(1).integers(0, 2, (10, instance.n)).astype(float):
        with torch.no_grad():
            direct = net.phi_x(_tensor(scaler.features(instance, x)))[0].sum(0).double().numpy()
        np.testing.assert_allclose(s0 + slope @ x, direct, rtol=1e-5, atol=1e-5)


def test_interval_bounds_contain_every_activation():
    torch.manual_seed(0)
    layer = torch.nn.Linear(5, 7)
    low, high = -np.ones(5), 2 * np.ones(5)
    bound_low, bound_high = em.interval(layer.weight.double().detach().numpy(), layer.bias.double().detach().numpy(),
                                        low, high)
    inputs = torch.rand(2000, 5, dtype=torch.float64) * 3 - 1
    values = (inputs @ layer.weight.double().T + layer.bias.double()).detach().numpy()
    assert np.all(values >= bound_low - 1e-12) and np.all(values <= bound_high + 1e-12)


def test_the_embedded_network_predicts_what_torch_computes_at_the_optimum(setting):
    family, scaler, net, _ = setting
    instance = family[1]
    scenarios = [np.zeros(instance.n), project_budget(torch.rand(instance.n), instance.gamma).double().numpy()]
    solution = main_problem(instance, net, scaler, scenarios)
    with torch.no_grad():
        direct = [float(net(_tensor(scaler.features(instance, solution.x)), _tensor(scaler.features(instance, xi))))
                  for xi in scenarios]
    np.testing.assert_allclose(solution.predictions, direct, rtol=1e-4, atol=1e-5)
    assert solution.chosen == int(np.argmax(direct))


def test_budget_projection_is_the_closest_feasible_point():
    generator = torch.Generator().manual_seed(0)
    for _ in range(20):
        v = torch.randn(6, generator=generator, dtype=torch.float64) + 0.5
        p = project_budget(v, 1.5)
        assert float(p.sum()) <= 1.5 + 1e-9 and float(p.min()) >= 0 and float(p.max()) <= 1
        for _ in range(50):
            other = project_budget(torch.rand(6, generator=generator, dtype=torch.float64) * 2, 1.5)
            assert float((v - p).norm()) <= float((v - other).norm()) + 1e-9


def test_ml_ccg_reports_the_exact_value_of_its_decision_close_to_the_optimum(setting):
    _, scaler, net, info = setting
    instance = instances.generate_knapsack(8, "UN", 40.0, 0.5, 0.2, np.random.default_rng(7))
    result = ml_ccg(instance, net, scaler)
    exact_value = -(first_stage_cost(instance, result.x) + worst_case(instance, result.x).value)
    assert result.objective == pytest.approx(exact_value)
    optimum = exact_ccg(instance, tol=1e-9).objective
    assert result.objective <= optimum + 1e-6 and result.objective >= optimum - 0.25 * abs(optimum)
    assert info["validation_mae"] < info["label_std"]


def test_an_untrained_set_encoder_is_permutation_invariant():
    net = SetEncoder()
    features = torch.rand(1, 9, 7)
    order = torch.randperm(9)
    torch.testing.assert_close(net(features, features), net(features[:, order], features[:, order]))


def test_data_collection_is_the_same_in_worker_processes():
    rng = np.random.default_rng(5)
    family = [instances.generate_knapsack(5, "UN", 40.0, 0.5, 0.2, rng) for _ in range(2)]
    scaler = FeatureScaler.fit(family)
    serial = collect(family, scaler, 2, 3, np.random.default_rng(9))
    parallel = collect(family, scaler, 2, 3, np.random.default_rng(9), workers=2)
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.xi_features, b.xi_features)
