"""nmkit attack end to end: outputs, comparison, and bad input rejected with exit 2."""

import json

import numpy as np
from typer.testing import CliRunner

from nmkit.cli.app import app

runner = CliRunner()


def test_attack_writes_adversarials_csv_and_grid(tmp_path):
    out = tmp_path / "a"
    result = runner.invoke(app, ["attack", "-k", "1", "--count", "12", "--out", str(out), "--json", "-q"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)["result"]
    adversarial = np.load(out / "adversarial.npy")
    assert adversarial.shape == (12, 1, 8, 8) and 0 <= adversarial.min() and adversarial.max() <= 1
    rows = (out / "examples.csv").read_text().splitlines()
    assert rows[0].startswith("index,row,label,targets,success")
    assert len(rows) == 13 and sum(r.split(",")[4] == "true" for r in rows[1:]) == round(12 * record["success_rate"])
    assert (out / "grid.png").read_bytes().startswith(b"\x89PNG")
    original = np.load(out / "original.npy")
    from nmkit.core import models

    test_x = models.digits_tensors("test")[0].numpy()
    for line, image in zip(rows[1:], original, strict=True):  # each original is its data row
        np.testing.assert_array_equal(image, test_x[int(line.split(",")[1])])


def test_compare_reports_every_method():
    result = runner.invoke(app, ["attack", "--method", "compare", "-k", "2", "--count", "5", "--budget", "1x5",
                                 "--json", "-q"])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["result"]["comparison"]) == {"quadattack", "cwk", "ad"}


def test_bad_budget_and_missing_model_give_exit_2(tmp_path):
    bad = runner.invoke(app, ["attack", "--budget", "60"])
    assert bad.exit_code == 2 and "expects STEPSxITERATIONS" in bad.stderr
    missing = runner.invoke(app, ["attack", str(tmp_path / "none.pt")])
    assert missing.exit_code == 2 and "no such file" in missing.stderr
