"""``nmkit robust-opt ACTION``: generate instances, solve one exactly by CCG, train a value network, solve by
ML-CCG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import Command, ExecutorOption, Outcome, RunContext, capability, register
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
            summary, model = learned.train(config, advance, ctx.out_dir)
        artifacts = []
        if ctx.out_dir is not None:
            io.atomic_write(ctx.out_dir / "model.pt", lambda fh: torch.save(model.to_file(), fh))
            artifacts += ["model.pt", learned.TASK_LOG]
        return Outcome(summary=jsonable(summary), tables=[_training_table(summary)], artifacts=artifacts)
    if config.action == "solve":
        from nmkit.core.robust import batch

        folder = Path(config.instance).is_dir()
        count = len(batch.instance_files(config.instance)) if folder else 1
        with ctx.progress("instances solved", count) as advance:
            summary, rows = learned.solve(config, advance, ctx.out_dir)
        artifacts = []
        if ctx.out_dir is not None:
            io.write_text(ctx.out_dir / "results.csv", batch.results_csv(rows))
            artifacts += ["results.csv", learned.TASK_LOG]
        tables = [_summary_table(summary)] if folder else [_solve_table(summary)]
        return Outcome(summary=jsonable(summary), tables=tables, artifacts=artifacts)
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


def _solve_table(summary: dict) -> Table:
    from rich.table import Table

    row = summary["instances"][0]
    table = Table("", "", title=f"robust-opt solve ({summary['problem']}): {row['instance']}", show_header=False)
    entries = [("robust profit (exact worst case)", f"{row['profit']:.4f}"), ("found by", row["source"]),
               ("bound", f"{row['bound']:.4f}"), ("status", row["status"]),
               ("nominal decision's profit", f"{row['nominal_profit']:.4f}"),
               ("seconds (one exact scoring)", f"{row['seconds']:.2f} ({row['scoring_seconds']:.2f})"),
               ("items selected", str(sum(row["x"])))]
    if row["gap_percent"] is not None:
        entries.append(("gap to the reference",
                        f"{row['gap_percent']:.2f}% (nominal {row['nominal_gap_percent']:.2f}%)"))
    if "exact" in summary:
        entries.append(("exact CCG profit (relative error)", f"{summary['exact']['profit']:.4f} "
                                                             f"({summary['exact']['relative_error']:.2%})"))
    for label, value in entries:
        table.add_row(label, value)
    table.caption = f"value network: {summary['model'] or 'none'}; time limit {summary['time_limit']:g} s"
    return table


def _summary_table(summary: dict) -> Table:
    from rich.table import Table

    published = sorted({k for group in summary["summary"] for k in group if k.endswith("_gap_percent_mean")})

    def percent(value) -> str:
        return "-" if value is None else f"{value:.2f}%"

    table = Table("group", "instances", "gap mean / median / max", "nominal gap", *[
        name.removesuffix("_gap_percent_mean") + " gap" for name in published], "seconds median / max",
        title=f"robust-opt solve ({summary['problem']}): {len(summary['instances'])} instances, gap to the reference")
    for group in summary["summary"]:
        table.add_row(group["group"], str(group["instances"]),
                      " / ".join(percent(group[k]) for k in ("gap_mean", "gap_median", "gap_max")),
                      percent(group["nominal_gap_mean"]), *[percent(group.get(name)) for name in published],
                      f"{group['seconds_median']:.1f} / {group['seconds_max']:.1f}")
    table.caption = (f"value network: {summary['model'] or 'none'}; time limit {summary['time_limit']:g} s per "
                     f"instance; negative gap: better than the reference")
    return table


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
    instance: Annotated[Path | None, typer.Argument(help="exact, solve: the instance file (solve: or a folder).")]
    = None,
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
    reference: Annotated[Path | None, typer.Option(help="solve: a CSV of known profits per instance (column "
                                                   "'instance' and --reference-column) for gaps.")] = None,
    reference_column: Annotated[str | None, typer.Option(help="solve: the reference's profit column (default "
                                                         "best_known_profit).")] = None,
    workers: Annotated[int | None, typer.Option(help="Local worker processes (short for --executor local:N).")]
    = None,
    executor: ExecutorOption = None,
    resume: Annotated[bool | None, typer.Option("--resume", help="train, solve: keep the tasks a stopped run in "
                                                "--out finished; run the rest.")] = None,
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
    time_limit: Annotated[float | None, typer.Option(help="exact, solve: seconds per instance (default: exact 600, "
                                                     "solve 12).")] = None,
):
    """Two-stage robust optimisation (knapsack with repair, capital budgeting): write instances, solve one exactly
    (column-and-constraint generation, every candidate's worst case exact by row generation), learn the
    second-stage value, or solve instances and folders with the portfolio (nominal, static, ML-CCG and CCG
    candidates, the best exactly scored kept).

    Examples: `nmkit robust-opt generate --n 10 --correlation WC -o inst.txt`,
    `nmkit robust-opt exact inst.txt --time-limit 60 --json`, `nmkit robust-opt train --sample 30 --out runs/m`,
    `nmkit robust-opt solve inst.txt` (the shipped value network), `nmkit robust-opt solve instances/ --reference
    reference.csv --out runs/x` (results.csv and a gap table by n and class; instances run as tasks on
    --executor: local worker processes by default, or a Dask cluster). Every answer is scored
    by the exact worst case, so its reported profit is true, not predicted.
    """
    return dict(action=action, instance=instance, problem=problem, solver=solver, adversary=adversary, model=model,
                instances=instances_dir, sample=sample,
                compare_exact=compare_exact, reference=reference, reference_column=reference_column,
                workers=workers, executor=executor, resume=resume, output=output, n=n, correlation=correlation, h=h,
                delta=delta, budget_factor=budget_factor, count=count, time_limit=time_limit)
