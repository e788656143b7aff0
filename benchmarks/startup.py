"""Start-up of whole `nmkit` processes (median wall time of ``--repeats`` after one warm-up), against the goals:
`nmkit --help` <= 0.3 s, every `nmkit <cmd> --help` <= 0.5 s, a one-shot `nmkit hamming --text ... --pattern ...`
<= 1.0 s; a bare typer app with two commands is measured beside them as the floor. Run it alone on the machine.

    python -m benchmarks.startup [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

from benchmarks.harness import print_table
from nmkit.cli.app import app  # noqa: F401 - registers the commands
from nmkit.cli.common import COMMANDS

BARE_TYPER = """
import typer
app = typer.Typer(rich_markup_mode=None)
@app.command()
def a(x: int = 1): pass
@app.command()
def b(x: int = 1): pass
app()
"""


def _nmkit() -> list[str]:
    found = shutil.which("nmkit")
    return [found] if found else [sys.executable, "-c", "from nmkit.cli.app import main; main()"]


def median_wall(command: list[str], repeats: int) -> float:
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    nmkit = _nmkit()
    cases = [("bare typer app --help (floor)", [sys.executable, "-c", BARE_TYPER, "--help"], None),
             ("nmkit --help", [*nmkit, "--help"], 0.3), ("nmkit recipes", [*nmkit, "recipes"], 0.5)]
    cases += [(f"nmkit {name} --help", [*nmkit, name, "--help"], 0.5) for name in COMMANDS]
    cases.append(("nmkit hamming --text ACGTACGTAC --pattern ACG",
                  [*nmkit, "hamming", "--text", "ACGTACGTAC", "--pattern", "ACG"], 1.0))
    rows = [{"call": call, "seconds": median_wall(command, args.repeats), "goal": goal}
            for call, command, goal in cases]
    print_table(f"start-up, whole process (median of {args.repeats})", ["call", "seconds", "goal", "met"],
                [[r["call"], f"{r['seconds']:.3f}", f"<= {r['goal']}" if r["goal"] else "-",
                  ("yes" if r["seconds"] <= r["goal"] else "NO") if r["goal"] else "-"] for r in rows])
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
