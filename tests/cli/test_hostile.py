"""Hostile and careless input (issue 17): each case exits 2 (bad input) or 1 (a run that failed) with one line,
never runs code from a file, never echoes a file's contents, never writes outside the run's folder."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nmkit.cli.app import app
from nmkit.cli.common import MAX_MESSAGE

runner = CliRunner()
SECRET = "root:SECRET-HASH-4f2a9:19000:0:99999:7:::"


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def refused(result, *fragments, code=2):
    """One ``error:`` line, the exit code, no traceback, no file content."""
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and "SECRET" not in result.output
    assert len(lines[0]) <= MAX_MESSAGE + len("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "shadow"
    path.write_text(SECRET + "\n")
    return path


class Payload:
    """A pickle that would create a file named PWNED beside itself when unpickled."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


# 1. Trusting executable content is a command-line flag only ------------------------------------------------


def test_a_recipe_or_set_cannot_switch_on_pickle_loading(tmp_path):
    torch.save(Payload(tmp_path / "PWNED"), tmp_path / "evil.pt")
    recipe = tmp_path / "evil.yaml"
    recipe.write_text("command: attack\nmodel: evil.pt\ntrust_pickle: true\n")
    refused(invoke("run", recipe), "field 'trust_pickle' can only be given on the command line")
    refused(invoke("attack", tmp_path / "evil.pt", "--set", "trust_pickle=true"), "only be given on the command line")
    refused(invoke("attack", "--recipe", recipe), "only be given on the command line")
    assert not (tmp_path / "PWNED").exists()
    refused(invoke("attack", tmp_path / "evil.pt"), "--trust-pickle")  # refused without the flag, nothing ran
    assert not (tmp_path / "PWNED").exists()


# 2. YAML bombs, deep nesting and huge values never reach a message --------------------------------------------


def alias_bomb(levels=9, width=9):
    lines = ["command: hamming", "a0: &a0 [" + ",".join(['"x"'] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_at_once(tmp_path):
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(alias_bomb())
    assert recipe.stat().st_size < 600
    start = time.perf_counter()
    refused(invoke("run", recipe), "aliases are expanded")
    refused(invoke("hamming", "--recipe", recipe), "aliases are expanded")
    assert time.perf_counter() - start < 5


def test_deep_nesting_is_refused(tmp_path):
    recipe = tmp_path / "deep.yaml"
    recipe.write_text("command: hamming\ntext: " + "[" * 5000 + "]" * 5000 + "\n")
    refused(invoke("run", recipe), "nested deeper than")
    chain = tmp_path / "chain.yaml"  # depth through aliases, each one level deeper than the last
    chain.write_text("command: hamming\n" + "\n".join(f"k{i}: &k{i} [*k{i - 1}]" if i else "k0: &k0 [1]"
                                                       for i in range(200)) + "\n")
    refused(invoke("run", chain), "nested deeper than")


def test_self_referencing_alias_is_refused(tmp_path):
    recipe = tmp_path / "cycle.yaml"
    recipe.write_text("command: hamming\ntext: &a [*a]\n")
    refused(invoke("run", recipe), "cycle")


def test_huge_values_and_paths_give_short_messages(tmp_path):
    refused(invoke("hamming", "--text-file", "x" * 100_000, "--pattern", "ab"), "text_file")
    refused(invoke("hamming", "--text", "ab", "--pattern", "a", "--set", "top=" + "9" * 5000), "top")
    refused(invoke("hamming", "--text", "ab", "--pattern", "a", "--set", "k" * 100_000 + "=1"), "unknown key")


# 3. Error messages never echo what a file holds -------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["optimal-transport", "--source", "{s}", "--target", "{s}"],
    ["optimal-transport", "--cost", "{s}"],
    ["solve-linear", "--matrix", "{s}"],
    ["relax-sor", "--sequence", "files", "--path", "{s}"],
    ["robust-opt", "exact", "{s}"],
    ["robust-opt", "exact", "{s}", "--problem", "capital_budgeting"],
    ["attack", "{s}"],
    ["compress-pc", "decode", "{s}", "--model", "{s}", "-o", "{d}/x.npy"],
    ["train-snn", "sample", "--checkpoint", "{s}"],
    ["run", "{s}"],
])
def test_file_contents_never_appear_in_messages(secret, args):
    refused(invoke(*[a.format(s=secret, d=secret.parent) for a in args]))


# 4. Non-finite and absurd numbers are refused before anything is allocated -------------------------------------


@pytest.mark.parametrize(("args", "fragment"), [
    (["prune", "--set", "end_epoch=.inf"], "field 'end_epoch' expects a finite number"),
    (["prune", "--set", "end_epoch=2", "--set", "update_frequency=1e-300"], "pruning steps"),
    (["hamming", "-k", "99999999999", "--text", "ab", "--pattern", "a"], "field 'max_mismatches' expects a value <="),
    (["hamming", "--seed", str(2**63), "--text", "ab", "--pattern", "a"], "field 'seed' expects a value <="),
    (["optimal-transport", "--size", str(10**18)], "field 'size' expects a value <="),
    (["optimal-transport", "--set", "gamma=nan"], "field 'gamma' expects a finite number"),
    (["optimal-transport", "--problem", "gaussians", "--size", "9000000"], "needs about"),
    (["solve-linear", "--n", "99999"], "needs about"),
    (["relax-sor", "--sequence", "heat2d", "--n", "99999"], "needs about"),
    (["hamming", "--set", "synthetic.length=999999999999"], "needs about"),
    (["attack", "--set", "budget=1x99999999"], "field 'budget' allows at most"),
])
def test_absurd_numbers_are_refused(args, fragment):
    refused(invoke(*args), fragment)


def test_max_memory_flag_caps_what_a_run_may_allocate():
    refused(invoke("optimal-transport", "--problem", "gaussians", "--size", "20000", "--max-memory", "10M"),
            "--max-memory allows")
    refused(invoke("optimal-transport", "--problem", "gaussians", "--max-memory", "lots"),
            "--max-memory: expected a size")


# 5. Sizes declared by files are checked against memory before reading ------------------------------------------


def test_matrix_market_size_is_checked_from_its_header(tmp_path):
    path = tmp_path / "big.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n2000000000 2000000000 2000000000\n1 1 1.0\n")
    start = time.perf_counter()
    refused(invoke("solve-linear", "--matrix", path), "needs about")
    assert time.perf_counter() - start < 5
    sparse = tmp_path / "sparse.mtx"
    sparse.write_text("%%MatrixMarket matrix coordinate real symmetric\n200000000 200000000 1\n1 1 1.0\n")
    refused(invoke("solve-linear", "--matrix", sparse), "positive definite")


def test_optimal_transport_estimates_the_cost_matrix(tmp_path):
    points = tmp_path / "p.npy"
    np.save(points, np.zeros((100_000, 2)))
    refused(invoke("optimal-transport", "--source", points, "--target", points, "--formulation", "dual",
                   "--max-memory", "8G"), "needs about")  # the dual needs the matrix; the semi-dual does not


def test_tokens_without_whitespace_are_refused_without_reading_them_whole(tmp_path):
    text = tmp_path / "blob.txt"
    text.write_bytes(b"x" * 3_000_000)
    refused(invoke("hamming", "--text-file", text, "--pattern", "x", "--tokens"), "token longer than")


# 7. Complex numbers are refused where the method is real ---------------------------------------------------------


def test_complex_inputs_are_refused(tmp_path):
    hermitian = tmp_path / "h.mtx"
    hermitian.write_text("%%MatrixMarket matrix coordinate complex hermitian\n2 2 3\n1 1 4 0\n2 1 1 1\n2 2 4 0\n")
    refused(invoke("solve-linear", "--matrix", hermitian), "complex")
    points, real = tmp_path / "c.npy", tmp_path / "r.npy"
    np.save(points, np.ones((5, 2)) + 1j)
    np.save(real, np.ones((5, 2)))
    refused(invoke("optimal-transport", "--source", points, "--target", real), "complex")


# 8. Non-finite results: exit 1 for a diverged run, strict JSON always, no silent nonsense --------------------------


def test_diverged_training_exits_1_and_leaves_no_result(tmp_path):
    out = tmp_path / "run"
    result = invoke("train-snn", "--set", "lr_init=1e12", "--set", "lr_final=1e12", "--steps", "20", "--layers", "1",
                    "--d-model", "16", "--ctx", "16", "--set", "eval_every=5", "-q", "--out", out, "--json")
    refused(result, "diverged", code=1)
    assert not (out / "result.json").exists() and result.stdout == ""


def test_result_json_is_strict_with_nulls_and_a_status(tmp_path):
    from nmkit.core.report import jsonable, non_finite_paths

    summary = {"bpc": float("nan"), "curve": np.array([1.0, np.inf]), "ok": 1.5}
    assert jsonable(summary) == {"bpc": None, "curve": [1.0, None], "ok": 1.5}
    assert non_finite_paths(summary, "result") == ["result.bpc", "result.curve[1]"]
    record = json.loads(invoke("hamming", "--text", "abcab", "--pattern", "ab", "--json", "-q").stdout)
    assert record["status"] == "ok"


def test_overflowing_points_are_refused(tmp_path):
    big, small = tmp_path / "big.npy", tmp_path / "small.npy"
    np.save(big, np.full((5, 2), 1e200))
    np.save(small, np.random.default_rng(0).random((5, 2)))
    refused(invoke("optimal-transport", "--source", big, "--target", small), "overflow")


# 9. NaN or infinity anywhere in an input file --------------------------------------------------------------------


def test_nan_in_a_knapsack_instance_is_refused(tmp_path):
    path = tmp_path / "k.txt"
    path.write_text("2 10.0 1\n5 1 1 nan 1\n4 1 1 3 1\n")
    refused(invoke("robust-opt", "exact", path), "line 2 holds NaN")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_arrays_are_refused(tmp_path, value):
    points, good = tmp_path / "p.npy", tmp_path / "g.npy"
    np.save(points, np.array([[0.0, value], [1.0, 1.0]]))
    np.save(good, np.ones((2, 2)))
    refused(invoke("optimal-transport", "--source", points, "--target", good), "NaN or infinite")


# 10-11. Output folders: one run at a time; --force replaces only nmkit's own files; failures leave nothing -----------


def test_concurrent_runs_on_one_out_folder(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "nmkit", "relax-sor", "--steps", "400", "--out", str(out), "-q"]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / ".nmkit.lock").exists() and time.time() < deadline:
        time.sleep(0.05)
    second = subprocess.run([*command, "--force"], capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and "another nmkit run" in second.stderr
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert json.loads((out / "result.json").read_text())["result"]["steps"] == 400


def test_force_clears_files_of_an_earlier_mode(tmp_path):
    out = tmp_path / "out"
    assert invoke("hamming", "--text", "abcabc", "--pattern", "ab", "-k", "1", "--out", out, "-q").exit_code == 0
    assert (out / "hits.csv").exists()
    assert invoke("hamming", "--text", "abcabc", "--pattern", "ab", "--out", out, "--force", "-q").exit_code == 0
    assert not (out / "hits.csv").exists() and (out / "distances.npy").exists()


def test_bad_input_leaves_no_output_folder(tmp_path):
    out = tmp_path / "new" / "out"
    refused(invoke("optimal-transport", "--source", tmp_path / "missing.npy", "--target", tmp_path / "missing.npy",
                   "--out", out))
    assert not (tmp_path / "new").exists()


# 12-13. Flags parse inside the error boundary; input-shaped failures are exit 2, not "internal error" -------------


@pytest.mark.parametrize("args", [
    ["solve-linear", "--grid", "axb"],
    ["prune", "--sparsity", "a,b"],
    ["hamming", "--text", "ab", "--pattern", "a", "--set", "alphabet=\x01\x02"],
    ["hamming", "--text", "ab", "--pattern", "a", "--set", "top=1\x01"],
    ["hamming", "--text", "ab", "--pattern", "a", "--out", "{d}/file/out"],
    ["hamming", "--text", "ab", "--pattern", "a", "--out", "{d}/dangling"],
    ["optimal-transport", "--source", "{d}/zero.npy", "--target", "{d}/zero.npy"],
    ["optimal-transport", "--source", "{d}/objects.npy", "--target", "{d}/zero.npy"],
    ["attack", "{d}/empty.pt"],
    ["relax-sor", "--sequence", "files", "--path", "{d}/garbage"],
    ["compress-pc", "decode", "{d}/chunk0.nmpc", "--model", "{d}/model.npz", "-o", "{d}/x.npy"],
    ["compress-pc", "decode", "{d}/chunk0.nmpc", "--model", "{d}/cyclic.npz", "-o", "{d}/x.npy"],
])
def test_input_shaped_failures_exit_2(tmp_path, args, crafted_container):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    np.save(tmp_path / "zero.npy", np.zeros((0, 2)))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "A_0.mtx").write_text("garbage\n1 2\n")
    np.save(tmp_path / "garbage" / "b_0.npy", np.ones(2))
    crafted_container(tmp_path)
    message = refused(invoke(*[a.format(d=tmp_path) for a in args]))
    assert "internal error" not in message


@pytest.fixture
def crafted_container():
    """A compressed file whose header says chunk size 0, with a valid checksum (an attacker recomputes it)."""
    import struct
    import zlib

    from nmkit.core.pc import container

    def write(folder):
        header = container.Header(b"\0" * 32, np.dtype("<u1"), (4,), 3, 0, [1], b"\0" * 32)
        blob = container.pack(header, [np.zeros(1, np.uint32)])
        (folder / "chunk0.nmpc").write_bytes(blob)
        np.savez(folder / "model.npz", format=np.array(1))
        ones = np.ones
        np.savez(folder / "cyclic.npz", format=np.array(1), parent=np.array([-1, 2, 1]), order=np.array([0, 1, 2]),
                 prior=ones(2) / 2, transition=ones((3, 2, 2)) / 2, emission=ones((3, 2, 2)) / 2)
        body = blob[:-4]
        assert struct.unpack("<I", blob[-4:])[0] == zlib.crc32(body)

    return write


# 14. SIGTERM stops like Ctrl-C; a recipe's output stays inside its folder -------------------------------------------


def test_sigterm_saves_state_and_exits_143(tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "nmkit", "relax-sor", "--steps", "100000", "--out", str(out),
                                "--set", "checkpoint_every=1000000", "-q"], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (out / ".nmkit.lock").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(3)  # into the loop
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 143
    message = process.stderr.read()
    assert "continue with --resume" in message and "Traceback" not in message
    assert (out / "state.npz").exists() and not (out / ".nmkit.lock").exists()


def test_recipe_output_cannot_leave_its_folder(tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    for output in ("../escape.nmpc", "/tmp/escape.nmpc", "sub/../../escape.nmpc"):
        recipe = folder / "r.yaml"
        recipe.write_text(f"command: compress-pc\naction: encode\ninput: digits\nmodel: m.npz\noutput: {output}\n")
        refused(invoke("run", recipe), "field 'output' expects a path inside")
    os.symlink(tmp_path, folder / "link")
    recipe.write_text("command: robust-opt\naction: generate\noutput: link/escape.txt\n")
    refused(invoke("run", recipe), "field 'output' expects a path inside")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipes"]
    recipe.write_text("command: robust-opt\naction: generate\noutput: inside.txt\n")
    typed = invoke("run", recipe, "--set", f"output={tmp_path}/chosen.txt", "-q")  # typed by the user: allowed
    assert typed.exit_code == 0 and (tmp_path / "chosen.txt").exists()


@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_models_with_nan_weights_are_refused(tmp_path, fmt):
    from nmkit.core.models import ZOO

    model = ZOO["mlp"]()
    with torch.no_grad():
        next(model.parameters())[0, 0] = float("nan")
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path) if fmt == "state_dict" else torch.jit.save(torch.jit.script(model), path)
    refused(invoke("attack", path, "--architecture", "mlp"), "NaN or infinite weights")
