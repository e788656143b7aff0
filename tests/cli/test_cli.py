"""End-to-end through the typer app: flags, recipes, outputs, errors and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nmkit.cli.app import app
from nmkit.cli.common import COMMANDS

from ..core.hamming.brute import brute_force

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def test_version_and_help_for_every_subcommand():
    assert invoke("--version").stdout.startswith("nmkit ")
    for name in [*COMMANDS, "run", "recipes"]:
        result = invoke(name, "--help")
        assert result.exit_code == 0, result.output
        assert "Usage" in result.stdout


def test_console_script_runs_as_a_process():
    done = subprocess.run([sys.executable, "-m", "nmkit", "hamming", "--text", "abcab", "--pattern", "ab",
                           "--json", "-q"], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["result"]["best"][0] == {"position": 0, "distance": 0}


def test_json_result_has_metrics_versions_seed_device():
    result = invoke("hamming", "--text", "abracadabra", "--pattern", "abra", "--json", "--seed", "4")
    record = json.loads(result.stdout)
    assert record["result"]["alignments"] == 8
    assert [b["position"] for b in record["result"]["best"][:2]] == [0, 7]
    assert record["seed"] == 4 and record["device"] == "cpu" and record["versions"]["numpy"]


def test_out_dir_reproduces_through_run(tmp_path):
    text = tmp_path / "t.txt"
    text.write_bytes(bytes(np.random.default_rng(0).integers(97, 101, 5000, dtype=np.uint8)))
    out = tmp_path / "out"
    first = invoke("hamming", "--text-file", text, "--pattern", "abcdab", "--out", out, "-q")
    assert first.exit_code == 0, first.output
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert written == ["distances.npy", "recipe.yaml", "result.json"]
    distances = np.load(out / "distances.npy")
    np.testing.assert_array_equal(distances, brute_force(text.read_bytes(), b"abcdab"))
    again = invoke("run", out / "recipe.yaml", "--out", tmp_path / "again", "-q")
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(np.load(tmp_path / "again" / "distances.npy"), distances)


def test_non_empty_out_dir_is_refused_unless_forced(tmp_path):
    (tmp_path / "x").write_text("keep")
    args = ["hamming", "--text", "abc", "--pattern", "b", "--out", tmp_path, "-q"]
    refused = invoke(*args)
    assert refused.exit_code == 2 and "pass --force" in refused.stderr
    assert invoke(*args, "--force").exit_code == 0
    assert (tmp_path / "x").read_text() == "keep"


def test_precedence_defaults_recipe_flags_set(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("command: hamming\ntext: abcabcabc\npattern: abc\ntop: 1\nseed: 3\n")
    record = json.loads(invoke("hamming", "--recipe", recipe, "--top", "2", "--set", "top=3", "--json").stdout)
    assert len(record["result"]["best"]) == 3 and record["seed"] == 3
    record = json.loads(invoke("hamming", "--recipe", recipe, "--top", "2", "--json").stdout)
    assert len(record["result"]["best"]) == 2


def test_recipe_paths_resolve_against_recipe_folder(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "text.txt").write_text("xxabxxab")
    recipe = tmp_path / "r.yaml"
    recipe.write_text("command: hamming\ntext_file: data/text.txt\npattern: ab\n")
    monkeypatch.chdir(ROOT)
    record = json.loads(invoke("run", recipe, "--json").stdout)
    assert [b["position"] for b in record["result"]["best"][:2]] == [2, 6]


def test_stdin_streams_in_chunks(tmp_path):
    data = bytes(np.random.default_rng(5).integers(0, 4, 3000, dtype=np.uint8) + 65)
    out = tmp_path / "o"
    result = invoke("hamming", "--text-file", "-", "--pattern", "ABCAB", "--chunk-size", "97", "--out", out, "-q",
                    input=data)
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(out / "distances.npy"), brute_force(data, b"ABCAB"))


def test_token_files_split_across_chunks(tmp_path):
    words = np.random.default_rng(2).choice(["alpha", "beta", "gamma", "delta"], 400).tolist()
    (tmp_path / "t.txt").write_text(" ".join(words[:200]) + "\n" + "\t".join(words[200:]))
    (tmp_path / "p.txt").write_text("beta gamma alpha")
    out = tmp_path / "o"
    result = invoke("hamming", "--text-file", tmp_path / "t.txt", "--pattern-file", tmp_path / "p.txt", "--tokens",
                    "--chunk-size", "13", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(out / "distances.npy"),
                                  brute_force(words, ["beta", "gamma", "alpha"]))


def test_npy_inputs_and_k_mismatch_hits_file(tmp_path):
    rng = np.random.default_rng(9)
    text, pattern = rng.integers(0, 1000, 4000), rng.integers(0, 1000, 50)
    text[700:750] = pattern
    text[705] += 1
    np.save(tmp_path / "t.npy", text)
    np.save(tmp_path / "p.npy", pattern)
    out = tmp_path / "o"
    result = invoke("hamming", "--text-file", tmp_path / "t.npy", "--pattern-file", tmp_path / "p.npy", "-k", "2",
                    "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert (out / "hits.csv").read_text() == "position,distance\n700,1\n"


@pytest.mark.parametrize(("args", "message"), [
    (["--text", "abc", "--pattern", ""], "pattern is empty"),
    (["--text", "ab", "--pattern", "abc"], "longer than the text"),
    (["--text-file", "/no/such/file", "--pattern", "a"], "text_file /no/such/file: cannot be read"),
    (["--text", "abc", "--pattern", "a", "-k", "-1"], "field 'max_mismatches' expects a value >= 0"),
    (["--text", "abc", "--pattern", "a", "--approx", "1.5"], "field 'approx' expects a value < 1"),
    (["--text", "abc", "--pattern", "a", "--wildcard", "**"], "must be a single byte"),
    (["--text", "a b", "--pattern", "a", "--tokens", "--wildcard", "x y"], "must be one token"),
    (["--text", "abc", "--pattern", "a", "-k", "1", "--wildcard", "*"], "wildcard works in the exact mode only"),
    (["--text", "abc", "--pattern", "a", "--algorithm", "fastest"], "expects one of auto, direct, simd"),
    (["--text", "abc", "--pattern", "a", "--set", "topp=3"], "unknown key 'topp' at 'topp'; did you mean 'top'?"),
    (["--text", "abc"], "give exactly one of pattern, pattern_file"),
])
def test_bad_input_gives_one_line_and_exit_2(args, message):
    result = invoke("hamming", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_debug_shows_the_traceback():
    result = invoke("hamming", "--text", "ab", "--pattern", "abc", "--debug")
    assert result.exit_code != 0 and result.exception is not None


def test_run_rejects_recipe_for_unknown_command(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("command: hammign\n")
    result = invoke("run", recipe)
    assert result.exit_code == 2 and "field 'command' must name one of: attack, compress-pc, hamming" in result.stderr


def test_recipes_lists_shipped_recipes_with_descriptions():
    result = runner.invoke(app, ["recipes", str(ROOT / "recipes")], env={"COLUMNS": "300"})
    assert result.exit_code == 0
    for path in (ROOT / "recipes").glob("*.yaml"):
        assert path.stem in result.stdout
        assert yaml.safe_load(path.read_text())["description"][:30] in result.stdout


@pytest.mark.parametrize("command", ["hamming", "optimal-transport", "relax-sor"])
def test_cuda_request_without_a_gpu_is_a_clear_input_error(command, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = {"hamming": ["--text", "ab", "--pattern", "a"], "optimal-transport": ["--problem", "gaussians"],
            "relax-sor": ["--steps", "2"]}[command]
    result = invoke(command, *args, "--device", "cuda")
    assert result.exit_code == 2 and "no CUDA device is available" in result.stderr


def test_run_several_recipes_into_one_out_folder(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("command: hamming\ntext: abcabc\npattern: bc\n")
    second.write_text("command: optimal-transport\nproblem: gaussians\nsize: 20\n")
    result = invoke("run", first, second, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a" / "distances.npy").exists() and (tmp_path / "out" / "b" / "plan.npz").exists()


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_a_pattern_files_final_line_ending_is_not_part_of_the_pattern(tmp_path, ending):
    text = tmp_path / "text.txt"
    text.write_bytes(b"xxACGTTGCAxx")
    pattern = tmp_path / "p.txt"
    pattern.write_bytes(b"ACGTAGCA" + ending)  # one substitution away from the text at position 2
    record = json.loads(invoke("hamming", "--text-file", text, "--pattern-file", pattern, "--json", "-q").stdout)
    assert record["result"]["best"][0] == {"position": 2, "distance": 1}
    kept = json.loads(invoke("hamming", "--text-file", text, "--pattern-file", pattern, "--keep-newline", "--json",
                             "-q").stdout)
    assert kept["result"]["pattern_length"] == 8 + len(ending)


def test_run_takes_seed_and_device_like_the_subcommands():
    recipe = ROOT / "recipes" / "hamming.yaml"
    record = json.loads(invoke("run", recipe, "--seed", "7", "--device", "cpu", "--json", "-q").stdout)
    assert record["seed"] == 7 and record["device"] == "cpu" and record["config"]["seed"] == 7


def test_help_keeps_every_bracket_of_the_option_texts():
    """Help text is plain: '[m, d]' in an option's help must not vanish as markup (issue 22)."""
    import inspect
    import re

    from nmkit.cli.app import app as cli_app

    checked = 0
    for info in cli_app.registered_commands:
        name = info.name or info.callback.__name__
        shown = re.sub(r"\s+", " ", invoke(name, "--help").stdout)
        for parameter in inspect.signature(info.callback).parameters.values():
            for meta in getattr(parameter.annotation, "__metadata__", ()):
                text = getattr(meta, "help", None) or ""
                for bracketed in re.findall(r"\[[^\]]*\]", text):
                    assert bracketed in shown, (name, bracketed)
                    checked += 1
    assert checked >= 3


def test_run_finds_shipped_recipes_by_name_and_recipes_lists_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no local recipes/ folder here
    record = json.loads(invoke("run", "hamming", "--json", "-q").stdout)
    assert record["command"] == "hamming"
    assert json.loads(invoke("run", "recipes/hamming.yaml", "--json", "-q").stdout)["command"] == "hamming"
    listing = invoke("recipes").stdout
    assert "hamming-kmismatch" in listing and "recipes/hamming-kmismatch.yaml" not in listing


def test_off_a_terminal_progress_is_plain_lines_and_tables_are_not_cut(monkeypatch):
    from nmkit.cli import common

    monkeypatch.setattr(common, "PLAIN_EVERY", 0.0)
    result = invoke("relax-sor", "--steps", "5", "--no-baselines")
    assert result.exit_code == 0, result.output
    assert "relax-sor: 5/5" in result.stderr and "\x1b[" not in result.stderr
    assert "learner tsallis-inf" in result.stdout and "…" not in result.stdout
