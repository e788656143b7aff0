"""``nmkit robust-opt ACTION``: generate instances, solve one exactly by CCG, train a value network, solve by
ML-CCG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import Command, Outcome, RunContext, capability, register
from nmkit.core.errors import InputError
from nmkit.core.robust.config import ACTION_HELP, RobustConfig

if TYPE_CHECKING:
    from rich.table import Table

GENERATOR = "Generator"


def run_command(config: RobustConfig, ctx: RunContext) -> Outcome:
    if config.action == "generate":
        return _generate(config, ctx.force)
    import torch
    from rich.table import Table

    from nmkit.core import io
    from nmkit.core.report import jsonable
    from nmkit.core.robust import run as learned

    if config.action == "train":
        count = len(list(Path(config.instances).glob("*.txt"))) if config.instances else config.sample
        with ctx.progress("instances solved for data", count) as advance:
            summary, model = learned.train(config, advance)
        artifacts = []
        if ctx.out_dir is not None:
            io.atomic_write(ctx.out_dir / "model.pt", lambda fh: torch.save(model.to_file(), fh))
            artifacts.append("model.pt")
        return Outcome(summary=jsonable(summary), tables=[_training_table(summary)], artifacts=artifacts)
    if config.action == "solve":
        summary = learned.solve(config)
        return Outcome(summary=jsonable(summary), tables=[_comparison_table([summary], "robust-opt solve")],
                       artifacts=[])
    result = learned.exact(config)
    summary = {"instance": str(config.instance), "problem": config.problem, "robust_profit": result.objective,
               "bound": result.bound,
               "gap": result.gap, "iterations": result.iterations, "seconds": result.seconds,
               "status": "time limit" if result.timed_out else "optimal", "x": result.x.astype(int).tolist()}
    table = Table("", "", title=f"robust-opt exact ({config.problem}): {Path(config.instance).name}",
                  show_header=False)
    for label, value in (("robust profit (exact worst case)", f"{result.objective:.4f}"),
                         ("bound", f"{result.bound:.4f}"), ("relative gap", f"{result.gap:.2e}"),
                         ("status", summary["status"]), ("CCG iterations", str(result.iterations)),
                         ("seconds", f"{result.seconds:.2f}"), ("items selected", str(int(result.x.sum())))):
        table.add_row(label, value)
    return Outcome(summary=summary, tables=[table], artifacts=[])


def _training_table(summary: dict) -> Table:
    table = _comparison_table(summary["evaluation"], f"robust-opt train: {summary['instances']} instances, "
                                                     f"{summary['second_stage_solves']:,} second-stage solves")
    table.caption = (f"data {summary['data_seconds']:.1f} s, training {summary['train_seconds']:.1f} s; validation "
                     f"MAE {summary['validation_mae']:.4f} (label std {summary['label_std']:.4f})")
    return table


def _comparison_table(rows: list[dict], title: str) -> Table:
    from rich.table import Table

    table = Table("n", "ML-CCG profit (exact)", "ML-CCG s", "exact CCG profit", "exact s", "relative error",
                  title=title)
    for row in rows:
        exact = "exact_objective" in row
        table.add_row(str(row["n"]), f"{row['ml_objective']:.2f}", f"{row['ml_seconds']:.2f}",
                      f"{row['exact_objective']:.2f}" + (" (time limit)" if row.get("exact_timed_out") else "")
                      if exact else "-", f"{row['exact_seconds']:.2f}" if exact else "-",
                      f"{row['relative_error']:.2%}" if exact else "-")
    return table


def _generate(config: RobustConfig, force: bool) -> Outcome:
    import numpy as np
    from rich.table import Table

    from nmkit.core import io
    from nmkit.core.robust import run as learned
    from nmkit.core.robust.problems import PROBLEMS

    stem = f"CB_n{config.n}" if config.problem == "capital_budgeting" else \
        f"RKP_{config.correlation}_n{config.n}_R1000_H100_h{config.h:g}_dev{config.budget_factor:g}_d{config.delta:g}"
    paths = [config.output] if config.count == 1 else [
        config.output / f"{stem}_s{config.seed + i}.txt" for i in range(config.count)]
    for i, path in enumerate(paths):
        if path.exists() and not force:
            raise InputError(f"output {path}: exists; pass --force to replace it")
        instance = learned.generate(config, config.n, np.random.default_rng(config.seed + i))
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_text(path, PROBLEMS[config.problem].write(instance))
    table = Table("instances written", title="robust-opt generate")
    for path in paths:
        table.add_row(str(path))
    return Outcome(summary={"written": [str(p) for p in paths]}, tables=[table], artifacts=[])


COMMAND = register(Command(name="robust-opt", schema=RobustConfig, run=run_command,
                           help="Two-stage robust optimisation (knapsack, capital budgeting): instances, exact "
                                "CCG and Neur2RO's ML-CCG on HiGHS."))


@capability(COMMAND, {"Actions": ACTION_HELP})
def robust_opt(
    action: Annotated[str | None, typer.Argument(metavar="generate|exact|train|solve",
                                                 help="What to do (listed below).")] = None,
    instance: Annotated[Path | None, typer.Argument(help="exact, solve: the instance file.")] = None,
    problem: Annotated[str | None, typer.Option(metavar="knapsack|capital_budgeting",
                                                help="The problem (default knapsack).")] = None,
    solver: Annotated[str | None, typer.Option(metavar="highs|scip", help="MILP backend (default highs; scip "
                                               "needs PySCIPOpt).")] = None,
    adversary: Annotated[str | None, typer.Option(metavar="milp|pga|exact", help="solve: how ML-CCG finds the "
                                                  "worst scenario (default pga).")] = None,
    model: Annotated[Path | None, typer.Option(help="solve: a trained model.pt or its folder.")] = None,
    instances_dir: Annotated[Path | None, typer.Option("--instances", help="train: a folder of instance files "
                                                       "(default: sample --sample of them).")] = None,
    sample: Annotated[int | None, typer.Option(help="train: instances to sample (default 30).")] = None,
    compare_exact: Annotated[bool | None, typer.Option("--compare-exact/--no-compare-exact",
                                                       help="solve: also run exact CCG.")] = None,
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
    """Two-stage robust optimisation (knapsack with repair, capital budgeting): write instances, solve one exactly
    (column-and-constraint generation, every candidate's worst case exact by row generation), or learn the
    second-stage value and solve by ML-CCG.

    Examples: `nmkit robust-opt generate --n 10 --correlation WC -o inst.txt`,
    `nmkit robust-opt exact inst.txt --time-limit 60 --json`, `nmkit robust-opt train --sample 30 --out runs/m`,
    `nmkit robust-opt solve inst.txt --model runs/m --adversary milp --compare-exact`. Every ML-CCG answer is
    scored by the exact worst case, so its reported profit is true, not predicted.
    """
    return dict(action=action, instance=instance, problem=problem, solver=solver, adversary=adversary, model=model,
                instances=instances_dir, sample=sample,
                compare_exact=compare_exact, output=output, n=n, correlation=correlation, h=h, delta=delta,
                budget_factor=budget_factor, count=count, time_limit=time_limit)
