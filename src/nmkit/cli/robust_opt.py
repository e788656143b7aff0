"""``nmkit robust-opt ACTION``: generate robust knapsack instances, or solve one exactly by CCG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from nmkit.cli.common import Command, Outcome, RunContext, capability, register
from nmkit.core import io
from nmkit.core.errors import InputError
from nmkit.core.robust import instances
from nmkit.core.robust.config import ACTION_HELP, RobustConfig
from nmkit.core.robust.knapsack import exact_ccg

GENERATOR = "Generator"


def run_command(config: RobustConfig, ctx: RunContext) -> Outcome:
    if config.action == "generate":
        return _generate(config, ctx.force)
    result = exact_ccg(instances.read_knapsack(config.instance), tol=config.tol, time_limit=config.time_limit)
    summary = {"instance": str(config.instance), "robust_profit": result.objective, "bound": result.bound,
               "gap": result.gap, "iterations": result.iterations, "seconds": result.seconds,
               "status": "time limit" if result.timed_out else "optimal", "x": result.x.astype(int).tolist()}
    table = Table("", "", title=f"robust-opt exact: {Path(config.instance).name}", show_header=False)
    for label, value in (("robust profit (exact worst case)", f"{result.objective:.4f}"),
                         ("bound", f"{result.bound:.4f}"), ("relative gap", f"{result.gap:.2e}"),
                         ("status", summary["status"]), ("CCG iterations", str(result.iterations)),
                         ("seconds", f"{result.seconds:.2f}"), ("items selected", str(int(result.x.sum())))):
        table.add_row(label, value)
    return Outcome(summary=summary, tables=[table], artifacts=[])


def _generate(config: RobustConfig, force: bool) -> Outcome:
    paths = [config.output] if config.count == 1 else [
        config.output / f"RKP_{config.correlation}_n{config.n}_R1000_H100_h{config.h:g}_dev{config.budget_factor:g}"
                        f"_d{config.delta:g}_s{config.seed + i}.txt" for i in range(config.count)]
    for i, path in enumerate(paths):
        if path.exists() and not force:
            raise InputError(f"output {path}: exists; pass --force to replace it")
        instance = instances.generate_knapsack(config.n, config.correlation, config.h, config.delta,
                                               config.budget_factor, np.random.default_rng(config.seed + i))
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_text(path, instances.write_knapsack(instance))
    table = Table("instances written", title="robust-opt generate")
    for path in paths:
        table.add_row(str(path))
    return Outcome(summary={"written": [str(p) for p in paths]}, tables=[table], artifacts=[])


COMMAND = register(Command(name="robust-opt", schema=RobustConfig, run=run_command,
                           help="Two-stage robust knapsack: instance generator and exact CCG on HiGHS."))


@capability(COMMAND, {"Actions": ACTION_HELP})
def robust_opt(
    action: Annotated[str | None, typer.Argument(metavar="generate|exact", help="What to do (listed below).")] = None,
    instance: Annotated[Path | None, typer.Argument(help="exact: the instance file.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="generate: file (or folder with --count).")]
    = None,
    n: Annotated[int | None, typer.Option("--n", help="Items (default 20).", rich_help_panel=GENERATOR)] = None,
    correlation: Annotated[str | None, typer.Option(metavar="UN|WC|ASC|SC", help="Profit-weight correlation.",
                                                    rich_help_panel=GENERATOR)] = None,
    h: Annotated[float | None, typer.Option("--h", help="Capacity factor (default 40).",
                                            rich_help_panel=GENERATOR)] = None,
    delta: Annotated[float | None, typer.Option(help="Degradation spread (default 0.5).",
                                                rich_help_panel=GENERATOR)] = None,
    budget_factor: Annotated[float | None, typer.Option(help="Gamma / n (default 0.1).",
                                                        rich_help_panel=GENERATOR)] = None,
    count: Annotated[int | None, typer.Option(help="Instances to write (default 1).", rich_help_panel=GENERATOR)]
    = None,
    time_limit: Annotated[float | None, typer.Option(help="exact: seconds (default 600).")] = None,
):
    """Two-stage robust knapsack with repair: write instances, or solve one exactly (column-and-constraint
    generation; the worst case of every candidate is computed exactly by row generation).

    Examples: `nmkit robust-opt generate --n 10 --correlation WC -o inst.txt`,
    `nmkit robust-opt exact inst.txt --time-limit 60 --json`. Neur2RO's learned solver is not in yet.
    """
    return dict(action=action, instance=instance, output=output, n=n, correlation=correlation, h=h, delta=delta,
                budget_factor=budget_factor, count=count, time_limit=time_limit)
