"""Start-up guard: building the CLI and printing any help imports no heavy library.

`nmkit --help`, `nmkit <cmd> --help` and `nmkit recipes` must stay near a bare typer app's start-up time (README,
"Start-up"); one module-level `import torch` in a CLI module or a config would cost seconds on every call. The check
runs in a fresh interpreter so that nothing the test session imported hides a regression.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nmkit.cli.app  # noqa: F401 - registers every command in COMMANDS
from nmkit.cli.common import COMMANDS

HEAVY = ("torch", "numba", "scipy", "sklearn", "numpy", "triton", "pydantic")

PROBE = """
import json, sys
from nmkit.cli.app import app
found = {}
for args in json.loads(sys.argv[1]):
    try:
        app(args, standalone_mode=False, prog_name="nmkit")
    except SystemExit:
        pass
    found[" ".join(args)] = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
print(json.dumps(found))
"""


def _heavy_imports(calls: list[list[str]]) -> dict[str, list[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(calls), json.dumps(HEAVY)], capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_help_and_recipes_import_no_heavy_library():
    calls = [["--help"], ["--version"], ["recipes"], ["run", "--help"]] + [[name, "--help"] for name in COMMANDS]
    found = _heavy_imports(calls)
    assert set(found) == {" ".join(c) for c in calls}
    assert {call: modules for call, modules in found.items() if modules} == {}


def test_the_probe_sees_a_heavy_import():
    """The guard itself can fail: a call that does import numpy is reported."""
    found = _heavy_imports([["--help"], ["hamming", "--text", "ACGTACGT", "--pattern", "ACG", "--quiet"]])
    assert found["--help"] == []
    assert "numpy" in found["hamming --text ACGTACGT --pattern ACG --quiet"]


def test_the_first_compilation_is_announced_once(tmp_path):
    """A cold numba cache (a fresh install) compiles; nmkit says so on stderr, once, and not on the next run."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    call = [sys.executable, "-c", "from nmkit.cli.app import main; main()", "hamming", "--text", "ACGTACGTAC" * 50,
            "--pattern", "ACGTTACG", "--algorithm", "simd", "--json"]
    cold = subprocess.run(call, env=env, capture_output=True, text=True, check=True)
    warm = subprocess.run(call, env=env, capture_output=True, text=True, check=True)
    assert cold.stderr.count("nmkit: compiling CPU code") == 1
    assert "compiling" not in warm.stderr
    assert json.loads(cold.stdout)["result"]["best"] == json.loads(warm.stdout)["result"]["best"]
