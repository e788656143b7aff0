"""nmkit relax-sor end to end: outputs, resume, and bad input rejected with exit 2."""

import json
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
import scipy.io
import scipy.sparse
from typer.testing import CliRunner

from nmkit.cli.app import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["relax-sor", *[str(a) for a in args]])


def test_outputs_and_resume(tmp_path):
    out = tmp_path / "run"
    first = invoke("--steps", "30", "--out", out, "--json", "-q")
    assert first.exit_code == 0, first.output
    record = json.loads(first.stdout)["result"]
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "recipe.yaml", "regret.csv", "regret.svg", "result.json", "state.npz", "systems.csv"]
    systems = np.genfromtxt(out / "systems.csv", delimiter=",", names=True)
    assert len(systems) == 30 and systems["iterations"].sum() == record["learner_iterations"]
    rows = np.loadtxt(out / "regret.csv", delimiter=",", skiprows=1)
    assert rows.shape == (30, 4) and rows[-1, 1] == record["learner_iterations"]
    assert ElementTree.parse(out / "regret.svg").getroot().tag.endswith("svg")
    again = invoke("--steps", "30", "--out", out, "--resume", "--json", "-q")  # resumes: nothing left to do
    assert json.loads(again.stdout)["result"]["learner_iterations"] == record["learner_iterations"]
    changed = invoke("--steps", "30", "--n", "40", "--sequence", "heat2d", "--out", out, "--resume", "-q")
    assert changed.exit_code == 2 and "was written with sequence = 'shifted-laplacian'" in changed.output
    fresh = invoke("--steps", "10", "--out", out, "--force", "--json", "-q")  # --force starts over
    assert fresh.exit_code == 0 and json.loads(fresh.stdout)["result"]["steps"] == 10


def test_fixed_learner_uses_its_omega(tmp_path):
    record = json.loads(invoke("--steps", "5", "--learner", "fixed", "--omega", "1.8", "--omegas", "1",
                               "--omega-min", "1.8", "--omega-max", "1.8", "--json", "-q").stdout)["result"]
    assert record["learner_iterations"] == record["best_fixed_iterations"]


@pytest.fixture
def bad_sequences(tmp_path):
    (tmp_path / "empty").mkdir()
    square = tmp_path / "nonsquare"
    square.mkdir()
    scipy.io.mmwrite(square / "A_0.mtx", scipy.sparse.coo_matrix(np.ones((2, 3))))
    np.save(square / "b_0.npy", np.ones(2))
    zero = tmp_path / "zerodiag"
    zero.mkdir()
    scipy.io.mmwrite(zero / "A_0.mtx", scipy.sparse.coo_matrix(np.array([[0.0, 1.0], [1.0, 2.0]])))
    np.save(zero / "b_0.npy", np.ones(2))
    return tmp_path


@pytest.mark.parametrize(("args", "message"), [
    (["--learner", "fixed", "--omega", "2.5"], "field 'omega' expects a value < 2"),
    (["--omega-max", "0"], "field 'omega_max' expects a value > 0"),
    (["--learner", "fixed"], "learner fixed needs omega"),
    (["--sequence", "files", "--path", "{d}/empty"], "empty"),
    (["--sequence", "files", "--path", "{d}/nonsquare"], "expected a square matrix"),
    (["--sequence", "files", "--path", "{d}/zerodiag"], "zero on the diagonal"),
    (["--sequence", "files", "--path", "{d}/missing"], "no such file or folder"),
])
def test_bad_input_gives_one_line_and_exit_2(bad_sequences, args, message):
    result = invoke(*[a.format(d=bad_sequences) for a in args], "--steps", "3")
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
