"""nmkit robust-opt end to end: generate a family, solve exactly, bad input exits 2."""

import json

import pytest
from typer.testing import CliRunner

from nmkit.cli.app import app

runner = CliRunner()


def test_generate_then_solve_exactly(tmp_path):
    result = runner.invoke(app, ["robust-opt", "generate", "--n", "7", "--correlation", "WC", "--count", "2",
                                 "-o", str(tmp_path / "family"), "-q"])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "family").iterdir())
    assert [f.name for f in files] == [f"RKP_WC_n7_R1000_H100_h40_dev0.1_d0.5_s{i}.txt" for i in (0, 1)]
    solved = runner.invoke(app, ["robust-opt", "exact", str(files[0]), "--json", "-q"])
    assert solved.exit_code == 0, solved.output
    record = json.loads(solved.stdout)["result"]
    assert record["status"] == "optimal" and record["gap"] <= 1e-4 and len(record["x"]) == 7


def test_capital_budgeting_generate_then_solve_exactly(tmp_path):
    result = runner.invoke(app, ["robust-opt", "generate", "--problem", "capital_budgeting", "--n", "6", "-o",
                                 str(tmp_path / "cb.txt"), "-q"])
    assert result.exit_code == 0, result.output
    solved = runner.invoke(app, ["robust-opt", "exact", str(tmp_path / "cb.txt"), "--problem", "capital_budgeting",
                                 "--json", "-q"])
    assert solved.exit_code == 0, solved.output
    record = json.loads(solved.stdout)["result"]
    assert record["status"] == "optimal" and record["robust_profit"] > 0 and len(record["x"]) == 6
    wrong = runner.invoke(app, ["robust-opt", "exact", str(tmp_path / "cb.txt")])  # read as a knapsack
    assert wrong.exit_code == 2 and "without 5 numbers" in wrong.stderr


def test_bad_input_gives_one_line_and_exit_2(tmp_path):
    (tmp_path / "bad.txt").write_text("2 100 1\n1 2 3\n")
    for args, message in ((["exact", str(tmp_path / "bad.txt")], "without 5 numbers"),
                          (["exact", str(tmp_path / "none.txt")], "no such file"),
                          (["generate", "-o", str(tmp_path / "x.txt"), "--budget-factor", "1.5"], "budget_factor"),
                          (["generate"], "needs output")):
        result = runner.invoke(app, ["robust-opt", *args])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_train_then_solve_with_the_learned_value_and_reject_foreign_models(tmp_path):
    import torch

    trained = runner.invoke(app, ["robust-opt", "train", "--sample", "4", "--set", "n_range=[6,8]", "--set",
                                  "decisions=4", "--set", "scenarios=5", "--set", "epochs=10", "--set", "evaluate=1",
                                  "--out", str(tmp_path / "m"), "--json", "-q"])
    assert trained.exit_code == 0, trained.output
    record = json.loads(trained.stdout)["result"]
    assert record["second_stage_solves"] == 4 * 4 * 5
    row = record["evaluation"][0]
    assert row["ml_objective"] <= row["exact_objective"] + 1e-6  # the exact optimum bounds every true objective
    runner.invoke(app, ["robust-opt", "generate", "--n", "7", "-o", str(tmp_path / "i.txt"), "-q"])
    solved = runner.invoke(app, ["robust-opt", "solve", str(tmp_path / "i.txt"), "--model", str(tmp_path / "m"),
                                 "--json", "-q"])
    assert solved.exit_code == 0, solved.output
    [row] = json.loads(solved.stdout)["result"]["instances"]
    assert len(row["x"]) == 7 and row["profit"] >= row["nominal_profit"] - 1e-9
    saved = torch.load(tmp_path / "m" / "model.pt", weights_only=True)
    torch.save({**saved, "problem": "capital-budgeting"}, tmp_path / "other.pt")
    foreign = runner.invoke(app, ["robust-opt", "solve", str(tmp_path / "i.txt"), "--model",
                                  str(tmp_path / "other.pt")])
    assert foreign.exit_code == 2 and "trained for capital-budgeting, not knapsack" in foreign.stderr


def test_solve_a_folder_against_a_reference_writes_results_csv(tmp_path):
    folder = tmp_path / "set"
    runner.invoke(app, ["robust-opt", "generate", "--n", "6", "--count", "2", "-o", str(folder), "-q"])
    names = sorted(p.name.removesuffix(".txt") for p in folder.iterdir())
    (tmp_path / "ref.csv").write_text("instance,best\n" + "".join(f"{name},1000\n" for name in names))
    solved = runner.invoke(app, ["robust-opt", "solve", str(folder), "--reference", str(tmp_path / "ref.csv"),
                                 "--reference-column", "best", "--time-limit", "5", "--out", str(tmp_path / "out"),
                                 "--json", "-q"])
    assert solved.exit_code == 0, solved.output
    record = json.loads(solved.stdout)["result"]
    assert [r["instance"] for r in record["instances"]] == names and record["unmatched"] == []
    for row in record["instances"]:
        assert row["gap_percent"] == pytest.approx(100 * (1000 - row["profit"]) / 1000)
        assert row["profit"] >= row["nominal_profit"] - 1e-9 and row["bound"] >= row["profit"] - 1e-6
    lines = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert lines[0].startswith("instance,n,group,profit,seconds,reference,gap_percent,nominal_profit") and \
        len(lines) == 3
    missing = runner.invoke(app, ["robust-opt", "solve", str(folder), "--reference", str(tmp_path / "ref.csv")])
    assert missing.exit_code == 2 and "no column 'best_known_profit'" in missing.stderr
