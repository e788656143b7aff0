"""QuadAttacK: the QP against an exact reference, the losses, and attacks on a trained digits model."""

import dataclasses
import itertools

import numpy as np
import pytest
import torch
from torch import nn

from nmkit.core import models
from nmkit.core.attack.config import AttackConfig
from nmkit.core.attack.qp import ordered_topk_constraints, project
from nmkit.core.attack.run import cw_k_loss, ordered_success, run
from nmkit.core.errors import InputError


def exact_projection(z0: np.ndarray, g: np.ndarray, h: np.ndarray) -> np.ndarray:
    """The projection by enumerating active sets and keeping the KKT point (the closest feasible one)."""
    best, best_distance = None, np.inf
    for size in range(len(h) + 1):
        for active in itertools.combinations(range(len(h)), size):
            rows = list(active)
            if rows:
                lam = np.linalg.lstsq(g[rows] @ g[rows].T, h[rows] - g[rows] @ z0, rcond=None)[0]
                if np.any(lam < -1e-10):
                    continue
                z = z0 + g[rows].T @ lam
            else:
                z = z0
            if np.all(g @ z >= h - 1e-9) and np.sum((z - z0) ** 2) < best_distance - 1e-12:
                best, best_distance = z, np.sum((z - z0) ** 2)
    return best


def test_qp_matches_an_exact_solver_on_100_random_instances():
    rng = np.random.default_rng(0)
    for _ in range(100):
        classes = int(rng.integers(3, 7))
        dim = int(rng.integers(classes, classes + 4))  # d >= C keeps the polytope non-empty
        k = int(rng.integers(1, classes))
        weight, bias = torch.from_numpy(rng.normal(size=(classes, dim))), torch.from_numpy(rng.normal(size=classes))
        targets = torch.from_numpy(rng.permutation(classes)[:k]).view(1, k)
        z0 = torch.from_numpy(rng.normal(size=(1, dim)))
        polytope = ordered_topk_constraints(weight, bias, targets, 0.2)
        g, h = polytope.dense()
        z = project(z0, polytope)[0].numpy()
        reference = exact_projection(z0[0].numpy(), g[0].numpy(), h[0].numpy())
        assert np.max(h[0].numpy() - g[0].numpy() @ z) <= 1e-6
        objective, expected = np.sum((z - z0[0].numpy()) ** 2), np.sum((reference - z0[0].numpy()) ** 2)
        np.testing.assert_allclose(objective, expected, rtol=1e-6, atol=1e-12)


def test_qp_matches_goldfarb_idnani_on_batches_of_larger_instances():
    """Many active constraints per instance, so the block additions, step-backs and slot reuse all run."""
    quadprog = pytest.importorskip("quadprog")
    rng = np.random.default_rng(1)
    classes, dim, batch = 80, 48, 24
    weight = torch.from_numpy(rng.normal(size=(classes, dim)) / dim**0.5)
    bias = torch.from_numpy(rng.normal(size=classes) * 0.1)
    targets = torch.from_numpy(np.stack([rng.permutation(classes)[:6] for _ in range(batch)]))
    z0 = torch.from_numpy(rng.normal(size=(batch, dim)))
    polytope = ordered_topk_constraints(weight, bias, targets, 0.2)
    z = project(z0, polytope).numpy()
    g, h = (t.numpy() for t in polytope.dense())
    for i in range(batch):
        reference = quadprog.solve_qp(np.eye(dim), z0[i].numpy(), g[i].T.copy(), h[i])[0]
        assert np.max(h[i] - g[i] @ z[i]) <= 1e-6
        objective, expected = np.sum((z[i] - z0[i].numpy()) ** 2), np.sum((reference - z0[i].numpy()) ** 2)
        np.testing.assert_allclose(objective, expected, rtol=1e-6)
    assert np.mean(np.sum(np.abs(g @ z[..., None] - h[..., None])[..., 0] < 1e-7, 1)) > 10  # a hard batch


def test_feasible_features_are_returned_unchanged_and_the_projection_ranks_the_targets():
    torch.manual_seed(0)
    weight, bias = torch.randn(10, 32, dtype=torch.float64), torch.randn(10, dtype=torch.float64)
    targets = torch.stack([torch.randperm(10)[:4] for _ in range(64)])
    polytope = ordered_topk_constraints(weight, bias, targets, 0.2)
    z = project(torch.randn(64, 32, dtype=torch.float64), polytope)
    assert ordered_success(z @ weight.T + bias, targets).all()
    torch.testing.assert_close(project(z, polytope), z, rtol=0, atol=1e-8)  # on the boundary, to the tolerance
    inside = project(z, ordered_topk_constraints(weight, bias, targets, 0.3))
    assert torch.equal(project(inside, polytope), inside)


def test_cw_k_loss_is_zero_exactly_when_the_order_holds():
    targets = torch.tensor([[2, 0, 3]])
    ordered = torch.tensor([[5.0, 1.0, 6.0, 4.0, 0.0]])
    swapped = torch.tensor([[6.0, 1.0, 5.0, 4.0, 0.0]])
    assert float(cw_k_loss(ordered, targets)) == 0.0 and float(cw_k_loss(swapped, targets)) > 0.0


@pytest.fixture(scope="module")
def trained_mlp(tmp_path_factory):
    model, accuracy = models.train_on_digits("mlp", seed=0)
    assert accuracy > 0.9
    path = tmp_path_factory.mktemp("zoo") / "mlp.pt"
    torch.save(model.state_dict(), path)
    return model, path


def test_k1_attacks_succeed_on_nearly_all_examples_and_successes_are_real(trained_mlp):
    model, path = trained_mlp
    result = run(AttackConfig(model=path, architecture="mlp", k=1, count=60, budget="1x60"))
    assert result.success_rate >= 0.95
    adversarial = torch.from_numpy(result.adversarial)
    with torch.no_grad():
        logits = model(adversarial)
    assert ordered_success(logits, torch.from_numpy(result.targets))[torch.from_numpy(result.success)].all()
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0


def test_quadattack_is_at_least_as_strong_as_cw_k_at_k_3(trained_mlp):
    _, path = trained_mlp
    quad = run(AttackConfig(model=path, k=3, count=60, method="quadattack"))
    cwk = run(AttackConfig(model=path, k=3, count=60, method="cwk"))
    assert quad.success_rate >= cwk.success_rate - 0.05


def test_model_formats_and_pickles(trained_mlp, tmp_path):
    model, _ = trained_mlp
    scripted = tmp_path / "m.ts"
    torch.jit.script(model).save(str(scripted))
    x = models.digits_tensors("test")[0][:5]
    torch.testing.assert_close(models.load_model(scripted)(x), model(x))
    pickled = tmp_path / "m.pkl"
    torch.save(model, pickled)
    with pytest.raises(InputError, match="pass --trust-pickle"):
        models.load_model(pickled)
    torch.testing.assert_close(models.load_model(pickled, trust_pickle=True)(x), model(x))


@pytest.mark.parametrize("export", ["script", "trace", "script-cnn"])
def test_torchscript_classifiers_are_attacked_exactly_like_the_eager_model(trained_mlp, tmp_path, export):
    """Defect: every TorchScript model was refused (scripted submodules are not nn.Linear, and ScriptModules take
    no hooks). The scripted, traced and nested-Sequential forms now give the eager model's attack."""
    model, path = trained_mlp
    x = models.digits_tensors("test")[0][:2]
    if export == "script-cnn":
        model = models.ZOO["cnn"]().eval()
        path = tmp_path / "cnn.pt"
        torch.save(model.state_dict(), path)
        x = x.view(2, 1, 8, 8) if x.dim() == 2 else x
    exported = torch.jit.trace(model, x) if export == "trace" else torch.jit.script(model)
    file = tmp_path / "m.ts"
    exported.save(str(file))
    architecture = "cnn" if export == "script-cnn" else "mlp"
    eager = run(AttackConfig(model=path, architecture=architecture, k=3, count=10, budget="1x20"))
    scripted = run(AttackConfig(model=file, k=3, count=10, budget="1x20"))
    np.testing.assert_array_equal(scripted.success, eager.success)
    np.testing.assert_allclose(scripted.adversarial, eager.adversarial, atol=1e-5)


def test_torchscript_models_that_are_not_a_chain_are_refused_with_what_is_supported(tmp_path):
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = nn.Linear(64, 64), nn.Linear(64, 10)

        def forward(self, x):
            x = x.flatten(1)
            return self.head(x + torch.relu(self.body(x)))

    torch.jit.script(Residual()).save(str(tmp_path / "r.ts"))
    with pytest.raises(InputError, match="running its submodules in order does not give its output"):
        run(AttackConfig(model=tmp_path / "r.ts", k=3, count=5, budget="1x5"))
    torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.ReLU())).save(str(tmp_path / "n.ts"))
    with pytest.raises(InputError, match="the last one is a Linear layer"):
        run(AttackConfig(model=tmp_path / "n.ts", k=3, count=5, budget="1x5"))


@pytest.mark.parametrize(("make", "config", "message"), [
    (None, {"k": 10}, "field 'k' expects a value below the number of classes"),
    (lambda p: torch.save(nn.Sequential(nn.Flatten(), nn.ReLU()), p), {"trust_pickle": True}, "no Linear layer"),
    (lambda p: torch.save(nn.Sequential(nn.Flatten(), nn.Linear(16, 10)), p), {"trust_pickle": True},
     "its forward fails on digits inputs of shape"),
])
def test_bad_models_and_settings_are_rejected(trained_mlp, tmp_path, make, config, message):
    path = trained_mlp[1]
    if make is not None:
        path = tmp_path / "bad.pt"
        make(path)
    with pytest.raises(InputError, match=message):
        run(AttackConfig(model=path, count=5, **config))


def test_a_target_list_holding_the_true_class_is_rejected(trained_mlp, tmp_path):
    labels = models.digits_tensors("test")[1]
    targets = np.stack([labels.numpy(), (labels.numpy() + 1) % 10], axis=1)
    np.save(tmp_path / "t.npy", targets)
    with pytest.raises(InputError, match="true class"):
        run(AttackConfig(model=trained_mlp[1], k=2, count=5, targets=tmp_path / "t.npy"))


def test_targets_and_outputs_pair_with_their_data_rows(trained_mlp, tmp_path):
    """The attacked inputs are the first correctly classified rows; each keeps its row index, and --targets row i
    belongs to data row i whichever rows end up attacked."""
    model, path = trained_mlp
    x, labels = models.digits_tensors("test")
    with torch.no_grad():
        correct = (model(x).argmax(1) == labels).nonzero().view(-1)
    targets = np.stack([(labels.numpy() + 1) % 10, (labels.numpy() + 2) % 10, (labels.numpy() + 3) % 10], axis=1)
    np.save(tmp_path / "t.npy", targets)
    result = run(AttackConfig(model=path, architecture="mlp", k=3, count=8, budget="1x10", targets=tmp_path / "t.npy"))
    np.testing.assert_array_equal(result.rows, correct[:8].numpy())
    np.testing.assert_array_equal(result.targets, targets[result.rows])
    np.testing.assert_array_equal(result.original, x[result.rows].numpy())
    np.save(tmp_path / "short.npy", targets[:10])
    with pytest.raises(InputError, match="one row per input of the data"):
        run(AttackConfig(model=path, k=3, count=8, targets=tmp_path / "short.npy"))


class TinyTransformer(nn.Module):
    """Rows of an 8x8 digit as 8 tokens, one encoder layer, mean pooling, a Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 32)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True), 1)
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.encoder(self.embed(x.view(-1, 8, 8))).mean(1))


def test_attacks_transformers_and_npz_data_with_normalisation(tmp_path):
    torch.manual_seed(0)
    model = TinyTransformer()
    x, y = models.digits_tensors("train")
    mean, std = 0.3, 0.4
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(15):
        for batch in torch.randperm(len(x)).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model((x[batch] - mean) / std), y[batch]).backward()
            optimiser.step()
    path = tmp_path / "vit.pt"
    torch.save(model.eval(), path)
    test_x, test_y = models.digits_tensors("test")
    np.savez(tmp_path / "data.npz", x=test_x.numpy(), y=test_y.numpy())
    result = run(AttackConfig(model=path, trust_pickle=True, data=tmp_path / "data.npz", k=2, count=40,
                              mean=[mean], std=[std]))
    assert result.success_rate >= 0.8
    adversarial = torch.from_numpy(result.adversarial)
    with torch.no_grad():
        logits = model((adversarial - mean) / std)
    assert ordered_success(logits, torch.from_numpy(result.targets))[torch.from_numpy(result.success)].all()


def test_shards_give_the_same_adversarials_in_worker_processes():
    config = AttackConfig(count=12, shard=5, budget="1x15", executor="local:1")
    one = run(config)
    two = run(dataclasses.replace(config, executor="local:2"))
    np.testing.assert_array_equal(one.adversarial, two.adversarial)
    np.testing.assert_array_equal(one.success, two.success)


def test_a_resumed_attack_runs_only_the_shards_not_logged(tmp_path, monkeypatch):
    from nmkit.core.attack import run as attack_run

    config = AttackConfig(count=12, shard=5, budget="1x10", executor="local:1")
    first = run(config, log_dir=tmp_path)
    lines = (tmp_path / "tasks-quadattack.jsonl").read_text().splitlines()
    (tmp_path / "tasks-quadattack.jsonl").write_text("\n".join(lines[:2]) + "\n")  # shard 0 done
    attacked = []
    original = attack_run._attack_shard
    monkeypatch.setattr(attack_run, "_attack_shard", lambda *task: attacked.append(len(task[1])) or original(*task))
    again = run(dataclasses.replace(config, resume=True), log_dir=tmp_path)
    assert attacked == [5, 2]
    np.testing.assert_array_equal(first.adversarial, again.adversarial)
