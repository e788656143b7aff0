"""nmkit solve-linear end to end: train then solve at another size, outputs, and bad input (exit 2) or a
solve that does not converge (exit 1)."""

import json

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
from typer.testing import CliRunner

from nmkit.cli.app import app
from nmkit.core.linear import problems

runner = CliRunner()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    result = runner.invoke(app, ["solve-linear", "train", "--n", "16", "--steps", "60", "--levels", "2",
                                 "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_a_model_and_histories_and_solve_uses_it_elsewhere(model, tmp_path):
    assert {"model.pt", "history.csv", "history.svg"} <= {p.name for p in model.iterdir()}
    result = runner.invoke(app, ["solve-linear", "solve", "--model", str(model), "--n", "20", "--rhs", "divergence",
                                 "--json", "-q", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["result"]
    assert [s["method"] for s in record["solves"]] == ["cg", "pcg-jacobi", "pcg-ic", "amg", "dcdm"]
    assert all(s["converged"] and s["true_relative_residual"] <= 1e-6 for s in record["solves"])
    assert "applied to 20x20" in " ".join(record["notes"])
    header = (tmp_path / "s" / "history.csv").read_text().splitlines()[0]
    assert header == "iteration,cg,pcg-jacobi,pcg-ic,amg,dcdm"


def test_a_matrix_market_file_and_an_npy_rhs(tmp_path):
    problem = problems.build("poisson2d", 10)
    scipy.io.mmwrite(str(tmp_path / "a.mtx"), problem.matrix)
    np.save(tmp_path / "b.npy", np.arange(100.0))
    result = runner.invoke(app, ["solve-linear", "solve", "--matrix", str(tmp_path / "a.mtx"), "--rhs",
                                 str(tmp_path / "b.npy"), "--method", "pcg-ic", "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["result"]["solves"][0]["true_relative_residual"] <= 1e-6


def write_matrix(folder, name, matrix):
    scipy.io.mmwrite(str(folder / name), sp.csr_matrix(matrix))
    return str(folder / name)


@pytest.mark.parametrize(("case", "message"), [
    ("rectangular", "must be square"),
    ("asymmetric", "must be symmetric"),
    ("indefinite", "not positive definite"),
    ("unreadable", "not a Matrix Market matrix"),
    ("nan", "NaN"),
    ("size", "has 7 entries"),
])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, case, message):
    good = write_matrix(tmp_path, "good.mtx", 4 * np.eye(9) - np.eye(9, k=1) - np.eye(9, k=-1))
    files = {"rectangular": ["--matrix", write_matrix(tmp_path, "r.mtx", np.ones((3, 4)))],
             "asymmetric": ["--matrix", write_matrix(tmp_path, "s.mtx", np.eye(3) + np.eye(3, k=1))],
             "indefinite": ["--matrix", write_matrix(tmp_path, "i.mtx", -np.eye(3))],
             "unreadable": ["--matrix", str(tmp_path / "junk.mtx")]}
    (tmp_path / "junk.mtx").write_text("this is not a matrix\n")
    np.save(tmp_path / "nan.npy", np.full(9, np.nan))
    np.save(tmp_path / "short.npy", np.ones(7))
    files["nan"] = ["--matrix", good, "--rhs", str(tmp_path / "nan.npy")]
    files["size"] = ["--matrix", good, "--rhs", str(tmp_path / "short.npy")]
    result = runner.invoke(app, ["solve-linear", "solve", "--method", "cg", *files[case]])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_solve_that_does_not_converge_exits_1_with_its_last_residual():
    result = runner.invoke(app, ["solve-linear", "solve", "--n", "16", "--method", "cg", "--max-iter", "3"])
    assert result.exit_code == 1
    assert "cg did not reach tol 1e-06 in 3 iterations (last relative residual" in result.stderr
