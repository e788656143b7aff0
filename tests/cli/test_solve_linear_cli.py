"""nmkit solve-linear end to end: train then solve at another size, outputs, and bad input (exit 2) or a
solve that does not converge (exit 1)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import torch
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
    ("plain-npz", "not a scipy sparse .npz"),
    ("asymmetric-npz", "must be symmetric"),
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
    np.savez(tmp_path / "plain.npz", a=np.eye(3))
    sp.save_npz(tmp_path / "asym.npz", sp.csr_matrix(np.eye(3) + np.eye(3, k=1)))
    files["plain-npz"] = ["--matrix", str(tmp_path / "plain.npz")]
    files["asymmetric-npz"] = ["--matrix", str(tmp_path / "asym.npz")]
    result = runner.invoke(app, ["solve-linear", "solve", "--method", "cg", *files[case]])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_solve_that_does_not_converge_exits_1_with_its_last_residual():
    result = runner.invoke(app, ["solve-linear", "solve", "--n", "16", "--method", "cg", "--max-iter", "3"])
    assert result.exit_code == 1
    assert "cg did not reach tol 1e-06 in 3 iterations (last relative residual" in result.stderr


def real_systems(folder):
    """SPD matrices nobody here wrote: PyAMG's airfoil mesh and elastic bar (its gallery's stored examples), a
    rotated anisotropic diffusion (epsilon 1e-3) from PyAMG's stencil; saved as .mtx and as scipy .npz."""
    pyamg = pytest.importorskip("pyamg")
    systems = {"airfoil.mtx": pyamg.gallery.load_example("airfoil")["A"],
               "bar.npz": pyamg.gallery.load_example("bar")["A"],
               "anisotropic.mtx": pyamg.gallery.stencil_grid(
                   pyamg.gallery.diffusion_stencil_2d(epsilon=1e-3, theta=np.pi / 6, type="FE"), (60, 60))}
    for name, matrix in systems.items():
        if name.endswith(".npz"):
            sp.save_npz(folder / name, sp.csr_matrix(matrix))
        else:
            scipy.io.mmwrite(str(folder / name), sp.csr_matrix(matrix))
    return {name: sp.csr_matrix(matrix) for name, matrix in systems.items()}


@pytest.mark.parametrize("name", ["airfoil.mtx", "bar.npz", "anisotropic.mtx"])
def test_real_spd_matrices_solve_to_1e8_and_every_written_x_checks_out(tmp_path, name):
    matrix = real_systems(tmp_path)[name]
    b = np.random.default_rng(3).standard_normal(matrix.shape[0])
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "out"
    result = runner.invoke(app, ["solve-linear", "solve", "--matrix", str(tmp_path / name), "--rhs",
                                 str(tmp_path / "b.npy"), "--tol", "1e-8", "--max-iter", "20000", "--out", str(out),
                                 "--json", "-q"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    solutions = record["result"]["solutions"]
    assert sorted(solutions) == ["amg", "cg", "pcg-ic", "pcg-jacobi"] and record["status"] == "ok"
    for method, entry in solutions.items():
        x = np.load(out / f"x-{method}.npy")
        assert x.shape == (matrix.shape[0],)  # no grid given: flat
        residual = np.linalg.norm(b - matrix @ x) / np.linalg.norm(b)
        assert residual <= 1e-8 and residual == pytest.approx(entry["true_relative_residual"], rel=1e-9)


def test_contrast_1e4_diffusion_writes_a_grid_shaped_x(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["solve-linear", "solve", "--problem", "diffusion2d", "--n", "48", "--set",
                                 "contrast=1e4", "--method", "pcg-ic", "--tol", "1e-8", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    x = np.load(out / "x.npy")
    problem = problems.build("diffusion2d", 48, contrast=1e4)
    b = problems.right_hand_side(problem, "random", np.random.default_rng(1))
    assert x.shape == (48, 48)
    assert np.linalg.norm(b - problem.matrix @ x.ravel()) / np.linalg.norm(b) <= 1e-8


def test_output_flag_writes_x_anywhere_and_all_fails_when_one_method_fails(tmp_path):
    target = tmp_path / "elsewhere" / "x.npy"
    target.parent.mkdir()
    done = runner.invoke(app, ["solve-linear", "solve", "--n", "16", "--method", "cg", "-o", str(target), "-q"])
    assert done.exit_code == 0 and np.load(target).shape == (16, 16)
    out = tmp_path / "out"
    failed = runner.invoke(app, ["solve-linear", "solve", "--n", "32", "--max-iter", "10", "--out", str(out), "-q"])
    error = failed.stderr.strip().splitlines()[-1]
    assert failed.exit_code == 1 and error.startswith("error: cg did not reach tol") and "amg" not in error
    record = json.loads((out / "result.json").read_text())
    assert record["status"].startswith("failed: cg did not reach") and (out / "x-cg.npy").exists()
    refused = runner.invoke(app, ["solve-linear", "solve", "--n", "16", "-o", str(target)])
    assert refused.exit_code == 2 and "with method all" in refused.stderr


def test_dcdm_on_a_matrix_needs_its_grid(model, tmp_path):
    good = write_matrix(tmp_path, "p.mtx", problems.build("poisson2d", 12).matrix)
    explicit = runner.invoke(app, ["solve-linear", "solve", "--matrix", good, "--method", "dcdm", "--model",
                                   str(model)])
    assert explicit.exit_code == 2 and "--grid" in explicit.stderr
    everything = runner.invoke(app, ["solve-linear", "solve", "--matrix", good, "--model", str(model), "--json", "-q"])
    assert everything.exit_code == 0, everything.output
    assert "dcdm left out: the matrix's grid is unknown" in " ".join(json.loads(everything.stdout)["result"]["notes"])
    gridded = runner.invoke(app, ["solve-linear", "solve", "--matrix", good, "--grid", "12x12", "--method", "dcdm",
                                  "--model", str(model), "--out", str(tmp_path / "g"), "-q"])
    assert gridded.exit_code == 0, gridded.output
    assert np.load(tmp_path / "g" / "x.npy").shape == (12, 12)


def test_two_torchrun_processes_train_like_one_process_with_their_global_batch(tmp_path):
    """Data parallel: 2 processes with batch 4 each equal 1 process with batch 8 (same draws, averaged grads)."""
    args = ["solve-linear", "train", "--set", "n=12", "--steps", "12", "--set", "ritz_steps=20", "--json", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          "-m", "nmkit", *args, "--set", "batch_size=4", "--out", str(tmp_path / "ddp")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    one = subprocess.run([sys.executable, "-m", "nmkit", *args, "--set", "batch_size=8", "--out",
                          str(tmp_path / "one")], capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    trained = {name: json.loads(run.stdout)["result"]["training"] for name, run in (("ddp", ddp), ("one", one))}
    assert (trained["ddp"]["processes"], trained["ddp"]["global_batch"]) == (2, 8) == (
        2 * trained["one"]["processes"], trained["one"]["global_batch"])
    assert trained["ddp"]["loss_last_50_mean"] == pytest.approx(trained["one"]["loss_last_50_mean"], rel=1e-5)
    weights = [torch.load(tmp_path / name / "model.pt", weights_only=True)["state_dict"] for name in ("ddp", "one")]
    for key in weights[1]:
        torch.testing.assert_close(weights[0][key], weights[1][key], atol=1e-5, rtol=1e-4)
