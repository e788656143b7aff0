"""``nmkit relax-sor``: flags -> SORConfig -> core run -> table, JSON, regret.csv, regret.svg, state."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import Command, Outcome, RunContext, capability, register
from nmkit.core.sor.config import LEARNER_HELP, SORConfig

if TYPE_CHECKING:
    from rich.table import Table

    from nmkit.core.sor.run import SORResult

SEQUENCE = "Sequence"
METHOD = "Method"


def run_command(config: SORConfig, ctx: RunContext, state: Path | None = None) -> Outcome:
    from nmkit.core import io
    from nmkit.core.report import jsonable
    from nmkit.core.sor.run import regret_curve, run, systems_table
    from nmkit.core.svg import line_chart

    state_file = state or (ctx.out_dir / "state.npz" if ctx.out_dir is not None else None)
    with ctx.progress("relax-sor", config.length) as advance:
        result = run(config, state_file=state_file, advance=advance)
    artifacts = ["state.npz"] if state_file is not None and ctx.out_dir is not None and state is None else []
    if ctx.out_dir is not None:
        columns, rows = systems_table(result)
        io.write_text(ctx.out_dir / "systems.csv", ",".join(columns) + "\n" + "".join(
            ",".join(map(str, row)) + "\n" for row in rows))
        artifacts.append("systems.csv")
    if ctx.out_dir is not None and result.best_fixed_omega is not None:
        curve = regret_curve(result)
        header = "t,learner,best_fixed,oracle\n"
        io.write_text(ctx.out_dir / "regret.csv", header + "".join(",".join(map(str, map(int, row))) + "\n"
                                                                   for row in curve))
        series = {result.learner: curve[:, 1], f"best fixed omega {result.best_fixed_omega:.3f}": curve[:, 2],
                  "best grid omega per system": curve[:, 3]}
        io.write_text(ctx.out_dir / "regret.svg", line_chart(curve[:, 0], series, x_label="systems solved",
                                                             y_label="cumulative iterations"))
        artifacts += ["regret.csv", "regret.svg"]
    return Outcome(summary=jsonable(result.summary()), tables=[_table(result)], artifacts=artifacts)


def _table(result: SORResult) -> Table:
    from rich.table import Table

    table = Table("policy", "total iterations", "vs learner", title=f"relax-sor: {result.sequence}, {result.solver}, "
                                                                     f"{result.steps:,} systems")
    rows = [(f"learner {result.learner}", result.learner_iterations)]
    if result.best_fixed_omega is not None:
        rows += [(f"best fixed omega in hindsight ({result.best_fixed_omega:.3f})", result.best_fixed_iterations),
                 ("best grid omega per system (oracle)", result.oracle_iterations)]
    if result.instance_optimal_iterations is not None:
        rows.append(("omega*(A_t) per system (Young's formula)", result.instance_optimal_iterations))
    if result.gauss_seidel_iterations is not None:
        rows.append(("Gauss-Seidel (omega = 1)", result.gauss_seidel_iterations))
    for name, total in rows:
        table.add_row(name, f"{total:,}", f"{total / result.learner_iterations:.3f}")
    captions = [*result.notes, *([f"{result.learner_capped} learner solves hit the iteration cap"]
                                 if result.learner_capped else [])]
    if captions:
        table.caption = "; ".join(captions)
    return table


COMMAND = register(Command(name="relax-sor", schema=SORConfig, run=run_command,
                           help="Learn the SOR relaxation omega online across a sequence of linear systems."))


@capability(COMMAND, {"Learners": LEARNER_HELP})
def relax_sor(
    sequence: Annotated[str | None, typer.Option(metavar="shifted-laplacian|heat2d|files",
                                                 help="Built-in sequence or files (default shifted-laplacian).",
                                                 rich_help_panel=SEQUENCE)] = None,
    path: Annotated[Path | None, typer.Option(help="files: folder of A_<t>.mtx or .npz + b_<t>.npy, or one .npz.",
                                              rich_help_panel=SEQUENCE)] = None,
    n: Annotated[int | None, typer.Option("--n", help="heat2d: grid points per side (default 50).",
                                          rich_help_panel=SEQUENCE)] = None,
    variance: Annotated[str | None, typer.Option(metavar="high|low", help="shifted-laplacian context law.",
                                                 rich_help_panel=SEQUENCE)] = None,
    steps: Annotated[int | None, typer.Option(help="Systems in the sequence (default 1000; files: all).",
                                              rich_help_panel=SEQUENCE)] = None,
    learner: Annotated[str | None, typer.Option(metavar="|".join(LEARNER_HELP), help="How omega is chosen.",
                                                rich_help_panel=METHOD)] = None,
    omega: Annotated[float | None, typer.Option(help="fixed learner: its omega.", rich_help_panel=METHOD)] = None,
    omegas: Annotated[int | None, typer.Option(help="Grid size (default 20).", rich_help_panel=METHOD)] = None,
    omega_min: Annotated[float | None, typer.Option(help="Grid start (default 1).", rich_help_panel=METHOD)] = None,
    omega_max: Annotated[float | None, typer.Option(help="Grid end (default 1.95).", rich_help_panel=METHOD)] = None,
    solver: Annotated[str | None, typer.Option(metavar="sor|ssor-pcg", help="Solver (default sor).",
                                               rich_help_panel=METHOD)] = None,
    ordering: Annotated[str | None, typer.Option(metavar="auto|lexicographic|red-black",
                                                 help="SOR sweep order (default auto: red-black on stencils).",
                                                 rich_help_panel=METHOD)] = None,
    rtol: Annotated[float | None, typer.Option(help="Relative residual target (default 1e-8).",
                                               rich_help_panel=METHOD)] = None,
    max_iter: Annotated[int | None, typer.Option(help="Iteration cap per solve (default 10000).",
                                                 rich_help_panel=METHOD)] = None,
    baselines: Annotated[bool | None, typer.Option("--baselines/--no-baselines",
                                                   help="Solve every system with every grid omega too.",
                                                   rich_help_panel=METHOD)] = None,
    state: Annotated[Path | None, typer.Option(help="Resumable state file (default OUT/state.npz).")] = None,
    resume: Annotated[bool | None, typer.Option(
        "--resume", help="Continue the run in --out (or --state) from its "
                                                "state file; every setting must match.")] = None,
) -> dict:
    """Choose omega for each system online; compare with every fixed omega and the per-system optimum.

    With --out DIR: result.json, recipe.yaml, systems.csv (per system: t, context, the learner's omega, its
    iterations, cap hits, Gauss-Seidel, omega*(A_t) where known, then every grid omega's iterations), regret.csv
    and regret.svg (cumulative iterations of the learner, the best fixed omega and the oracle), state.npz (an
    interrupted run continues with --resume; Ctrl-C and SIGTERM save it first).
    """
    flags = dict(sequence=sequence, path=path, n=n, variance=variance, steps=steps, learner=learner, omega=omega,
                 omegas=omegas, omega_min=omega_min, omega_max=omega_max, solver=solver, ordering=ordering, rtol=rtol,
                 max_iter=max_iter, baselines=baselines, resume=resume)
    command = COMMAND if state is None else Command(COMMAND.name, COMMAND.help, COMMAND.schema,
                                                    lambda config, ctx: run_command(config, ctx, state))
    return flags, command

