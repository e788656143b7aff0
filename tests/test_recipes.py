"""Every shipped recipe validates and runs end to end (at reduced size where it is large)."""

import json
import math
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nmkit.cli.app import app
from nmkit.cli.common import COMMANDS, config_layers
from nmkit.core.recipe import build_config

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
# recipes that take minutes run here at a reduced size (same fields otherwise)
REDUCED = {"train-snn": ["--set", "steps=30", "--set", "eval_every=10", "--set", "d_model=32", "--set", "ctx=32",
                         "--set", "layers=2"],
           "robust-opt": ["--set", "sample=4", "--set", "evaluate=1", "--set", "epochs=10", "--set", "time_limit=3",
                          "--set", "n_range=[6,7]", "--set", "workers=1", "--set", "decisions=4",
                          "--set", "scenarios=5"],
           "solve-linear": ["--set", "steps=120", "--set", "ritz_steps=150"],
           "compress-pc": ["--set", "latents=4", "--set", "minibatch_epochs=0", "--set", "full_batch_epochs=1",
                           "--set", "augment=none"]}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_validates(recipe):
    data = yaml.safe_load(recipe.read_text())
    assert data.get("description"), "each recipe needs a one-line description"
    command = COMMANDS[data["command"]]
    build_config(command.schema, config_layers(command, recipe, {}, []))


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_recipe_runs_end_to_end(recipe, tmp_path):
    reduced = REDUCED.get(yaml.safe_load(recipe.read_text())["command"], [])
    result = CliRunner().invoke(app, ["run", str(recipe), *reduced, "--json", "-q", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)["result"]
    if "planted" in found:  # hamming: the planted copies are the best alignments
        planted = {p["position"]: p["mismatches"] for p in found["planted"]}
        best = {b["position"]: b["distance"] for b in found["best"]}
        assert planted and all(best.get(position) == mismatches for position, mismatches in planted.items())
    if "max_nnz_per_column" in found:  # optimal-transport: the sparsity promise holds
        assert found["max_nnz_per_column"] <= (found["k"] or found["m"])
    if found.get("runs") and "dense_accuracy" in found:  # prune: every run reaches its sparsity (SAP: at most)
        for run in found["runs"]:
            if found["method"] == "sap":
                assert run["sparsity"] <= run["target"] + 1e-9
            else:
                assert abs(run["sparsity"] - run["target"]) < 2e-3
    if "solves" in found:  # solve-linear: every method reaches the tolerance, checked on the true residual
        assert all(s["converged"] and s["true_relative_residual"] <= found["tol"] for s in found["solves"])
    if "test_bpc" in found:  # train-snn: validation BPC falls from check to check, below the uniform code length
        first, last = found["history"][0]["valid_bpc"], found["history"][-1]["valid_bpc"]
        assert last < first and found["test_bpc"] < math.log2(found["model"]["vocab"])
    if "roundtrip_exact" in found:  # compress-pc: the decoded data is the input, in fewer bits than the raw bytes
        assert found["roundtrip_exact"] and found["actual_bpd"] < 8
    if "evaluation" in found:  # robust-opt: ML-CCG's true objective never beats the exact optimum
        assert all(row["exact_timed_out"] or row["ml_objective"] <= row["exact_objective"] + 1e-6
                   for row in found["evaluation"])
