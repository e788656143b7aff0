"""nmkit optimal-transport end to end: files in, plan.npz out, bad input rejected with exit 2."""

import json

import numpy as np
import pytest
import scipy.sparse
from typer.testing import CliRunner

from nmkit.cli.app import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["optimal-transport", *[str(a) for a in args]])


@pytest.fixture
def clouds(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(40, 2)))
    np.save(tmp_path / "y.npy", rng.normal(size=(30, 2)) + 1)
    weights = rng.uniform(1, 2, 40)
    np.save(tmp_path / "a.npy", weights)
    np.save(tmp_path / "a1.npy", weights / weights.sum())
    return tmp_path


def test_points_to_sparse_plan_file(clouds):
    out = clouds / "out"
    result = invoke("--source", clouds / "x.npy", "--target", clouds / "y.npy", "--source-weights", clouds / "a.npy",
                    "-k", "3", "--out", out, "--json", "-q")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["result"]
    plan = scipy.sparse.load_npz(out / "plan.npz")
    assert plan.shape == (40, 30) and plan.nnz == record["nnz"]
    assert np.diff(plan.tocsc().indptr).max() <= 3 == record["k"]
    np.testing.assert_allclose(plan.sum(axis=0), np.full(30, 1 / 30), atol=1e-12)


def test_exact_flag_and_batched_cost(clouds):
    np.save(clouds / "c.npy", np.random.default_rng(1).uniform(size=(3, 6, 6)))
    record = json.loads(invoke("--cost", clouds / "c.npy", "--exact", "--json", "-q").stdout)["result"]
    assert record["reg"] == "exact" and record["batch"] == 3 and record["row_marginal_error"] < 1e-12


@pytest.mark.parametrize(("setup", "args", "message"), [
    (lambda d: np.save(d / "neg.npy", -np.ones(40)), ["--source-weights", "neg.npy"], "must be non-negative"),
    (lambda d: None, ["--source-weights", "a.npy", "--no-normalize"], "not 1 (drop --no-normalize"),
    (lambda d: None, ["--source-weights", "a1.npy", "--no-normalize", "-k", "0"], "field 'k' expects a value >= 1"),
    (lambda d: np.save(d / "short.npy", np.ones(7)), ["--source-weights", "short.npy"], "expected shape (40,)"),
    (lambda d: np.save(d / "nan.npy", np.array([[0.0, np.nan]])), ["--cost-only", "nan.npy"], "NaN or infinite"),
    (lambda d: None, ["--target-weights", "missing.npy"], "no such file"),
    (lambda d: None, ["-k", "50"], "exceeds the number of sources"),
    (lambda d: None, ["--reg", "l1"], "field 'reg' expects one of sparsity"),
])
def test_bad_input_gives_one_line_and_exit_2(clouds, monkeypatch, setup, args, message):
    monkeypatch.chdir(clouds)
    setup(clouds)
    if args[0] == "--cost-only":
        base = ["--cost", args[1]]
    else:
        base = ["--source", "x.npy", "--target", "y.npy", *args]
    result = invoke(*base)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
