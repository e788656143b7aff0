"""nmkit robust-opt end to end: generate a family, solve exactly, bad input exits 2."""

import json

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


def test_bad_input_gives_one_line_and_exit_2(tmp_path):
    (tmp_path / "bad.txt").write_text("2 100 1\n1 2 3\n")
    for args, message in ((["exact", str(tmp_path / "bad.txt")], "header says 2 items"),
                          (["exact", str(tmp_path / "none.txt")], "no such file"),
                          (["generate", "-o", str(tmp_path / "x.txt"), "--budget-factor", "1.5"], "budget_factor"),
                          (["generate"], "needs output")):
        result = runner.invoke(app, ["robust-opt", *args])
        assert result.exit_code == 2, result.output
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
