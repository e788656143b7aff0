"""The README's tour runs as written (at reduced sizes), from a folder holding only the tour's own input files,
and a CPU run of it never imports Triton (so the lean install without the `gpu` extra is enough).

Every command of the tour's code block runs in one fresh interpreter (nmkit's start-up is measured elsewhere);
each size reduction below must match the README text, so a tour edit fails here instead of running at full size.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"

# README fragment -> what the test runs instead (same command and flags, smaller sizes)
REDUCED = {
    "--n 50 --steps 1000": "--n 16 --steps 20",
    "compress-pc train --out runs/pc": "compress-pc train --out runs/pc --set minibatch_epochs=1 "
                                       "--set full_batch_epochs=1 --set latents=8",
    "--method compare --out runs/att": "--method compare --out runs/att --set count=5 --set budget=1x10",
    "--sparsity 0.5,0.8,0.9,0.95,0.99 --fine-tune-epochs 5": "--sparsity 0.5,0.9 --fine-tune-epochs 1",
    "solve-linear train --n 64": "solve-linear train --n 16 --set steps=20 --set ritz_steps=40",
    "--model runs/dcdm --n 256": "--model runs/dcdm --n 32",
    "--steps 1000 --d-model 128 --ctx 128": "--steps 10 --d-model 32 --ctx 32 --set layers=2 --set eval_every=5",
}
# what the tour's comments promise each run writes
WRITTEN = ["runs/h/hits.csv", "runs/ot/plan.npz", "runs/colors/recolored.png", "runs/s/regret.svg", "digits.nmpc",
           "runs/att/grid.png", "runs/p/sweep.svg", "runs/m/model.pt", "runs/dcdm/model.pt", "runs/snn/checkpoint.pt"]

# Runs the calls in one interpreter where `import triton` fails as on a CPU install without the `gpu` extra (torch
# itself probes for Triton and must find none); reports the exit codes and whether nmkit's Triton modules loaded.
RUNNER = """
import importlib.abc, importlib.machinery, json, sys


class NoTriton(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "triton":
            return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec):
        raise ModuleNotFoundError("No module named 'triton'", name="triton")

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, NoTriton())
from nmkit.cli.app import app
codes = []
for args in json.loads(sys.argv[1]):
    try:
        app(args, prog_name="nmkit")
        codes.append(0)
    except SystemExit as stop:
        codes.append(stop.code or 0)
print(json.dumps({"codes": codes, "gpu_modules": sorted(m for m in sys.modules if m.startswith("nmkit.kernels.gpu"))}))
"""


def tour_commands() -> list[str]:
    """The tour's code block, one command per `&&`-separated part, comments dropped."""
    text = README.read_text()
    block = re.search(r"## A tour\n+```bash\n(.*?)```", text, re.S)
    assert block, "README has no '## A tour' bash block"
    commands = []
    for line in block.group(1).splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        commands += [part.strip() for part in line.split("&&") if part.strip()]
    return commands


def reduce_sizes(commands: list[str]) -> list[str]:
    used = set()
    reduced = []
    for command in commands:
        for fragment, smaller in REDUCED.items():
            if fragment in command:
                command = command.replace(fragment, smaller)
                used.add(fragment)
        reduced.append(command)
    assert used == set(REDUCED), f"README tour no longer contains {sorted(set(REDUCED) - used)}"
    return reduced


def write_tour_inputs(folder: Path) -> None:
    """genome.txt, read.txt (one substitution), x.npy / y.npy point clouds, model.ts (a traced digits MLP)."""
    rng = np.random.default_rng(0)
    genome = "".join(rng.choice(list("ACGT"), 5000))
    (folder / "genome.txt").write_text(genome + "\n")
    read = list(genome[1000:1100])
    read[50] = "A" if read[50] != "A" else "C"
    (folder / "read.txt").write_text("".join(read) + "\n")
    np.save(folder / "x.npy", rng.normal(size=(60, 2)))
    np.save(folder / "y.npy", rng.normal(size=(50, 2)) + 1)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    torch.jit.save(torch.jit.trace(net, torch.zeros(1, 1, 8, 8)), str(folder / "model.ts"))


@pytest.mark.slow
def test_every_tour_command_runs_without_triton(tmp_path):
    commands = reduce_sizes(tour_commands())
    assert all(c.startswith("nmkit") for c in commands)
    write_tour_inputs(tmp_path)
    calls = [shlex.split(c)[1:] + (["--quiet"] if shlex.split(c)[1] not in ("--version", "recipes") else [])
             for c in commands]
    done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(calls)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.splitlines()[-1])
    failed = [c for c, code in zip(commands, found["codes"], strict=True) if code != 0]
    assert failed == [], done.stderr[-2000:]
    assert [path for path in WRITTEN if not (tmp_path / path).is_file()] == []
    assert found["gpu_modules"] == [], "a CPU run imported nmkit's Triton kernels"


def test_the_tour_parser_sees_every_line():
    """The parser itself: the tour's first and last commands, and both halves of an `&&` line."""
    commands = tour_commands()
    assert commands[0] == "nmkit --version"
    assert "nmkit compress-pc encode digits --model runs/pc -o digits.nmpc" in commands
    assert commands[-1].startswith("nmkit train-snn sample")
