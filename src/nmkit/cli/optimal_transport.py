"""``nmkit optimal-transport``: flags -> OTConfig -> core transport -> table, JSON, plan.npz, images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import Command, Outcome, RunContext, capability, register
from nmkit.core.ot.config import PROBLEM_HELP, REG_HELP, OTConfig

if TYPE_CHECKING:
    from rich.table import Table

    from nmkit.core.ot.transport import TransportResult

INPUT = "Input"
METHOD = "Method"


def run(config: OTConfig, ctx: RunContext) -> Outcome:
    from nmkit.core.ot.problems import build_problem
    from nmkit.core.ot.transport import iteration_budget, transport
    from nmkit.core.report import jsonable

    problem = build_problem(config)
    with ctx.progress("L-BFGS iterations", iteration_budget(config, problem)) as advance:
        result = transport(config, problem, advance=advance)
    artifacts = []
    if ctx.out_dir is not None:
        artifacts += _write_plans(result, ctx.out_dir)
        if "source" in result.problem.extras:
            artifacts += _write_images(result, ctx.out_dir)
    return Outcome(summary=jsonable(result.summary()), tables=[_table(result)], artifacts=artifacts)


def _write_plans(result: TransportResult, out: Path) -> list[str]:
    import numpy as np
    import scipy.sparse

    from nmkit.core import io

    plans = result.plans
    if result.batch == 1:  # scipy.sparse.load_npz reads it back
        io.atomic_write(out / "plan.npz", lambda fh: scipy.sparse.save_npz(fh, plans.matrix(0)))
    else:
        io.atomic_write(out / "plan.npz", lambda fh: np.savez(fh, batch=plans.batch, row=plans.rows, col=plans.cols,
                                                               value=plans.values, shape=np.array(plans.shape)))
    return ["plan.npz"]


def _write_images(result: TransportResult, out: Path) -> list[str]:
    from nmkit.core import io
    from nmkit.core.ot.problems import recolor

    plans, images = result.plans, result.problem.extras
    io.write_png(out / "source.png", images["source"])
    io.write_png(out / "target.png", images["target"])
    io.write_png(out / "recolored.png", recolor(result.problem, plans.rows, plans.cols, plans.values))
    return ["source.png", "target.png", "recolored.png"]


def _table(result: TransportResult) -> Table:
    import numpy as np
    from rich.table import Table

    table = Table("", "", title="optimal-transport", show_header=False)
    method = result.reg + (f" (k = {result.k})" if result.k else "") + \
        (f", {result.formulation}" if result.formulation else "")
    size = f"{result.m} x {result.n}" + (f", batch of {result.batch}" if result.batch > 1 else "")
    cost = result.cost[0] if result.batch == 1 else float(np.mean(result.cost))
    rows = [
        ("method", method),
        ("sources x targets", size),
        ("transport cost <T, C>" + (" (mean)" if result.batch > 1 else ""), f"{cost:.6g}"),
        ("non-zeros / max per column", f"{result.nnz:,} / {result.max_nnz_per_column}"),
        ("row / column marginal L1 error", f"{result.row_marginal_error:.3g} / {result.column_marginal_error:.3g}"),
        ("iterations", f"{result.iterations}" + ("" if result.converged else f" (not converged: {result.message})")),
        ("seconds", f"{result.seconds:.3f}"),
    ]
    if result.objective is not None:
        rows.insert(3, ("dual objective (cost / max cost)", f"{np.mean(result.objective):.9g}"))
    if result.routing is not None:
        r = result.routing
        rows += [("tokens per expert: transport (capacity {:g})".format(r["capacity"]),
                  "{} to {}".format(*r["transport_load_min_max"])),
                 ("tokens per expert: greedy top-1", "{} to {}".format(*r["greedy_top1_load_min_max"])),
                 ("tokens kept on their top-1 expert", f"{r['tokens_on_their_top1_expert']:.1%}")]
    for key, value in rows:
        table.add_row(key, value)
    return table


COMMAND = register(Command(name="optimal-transport", schema=OTConfig, run=run,
                           help="Sparsity-constrained optimal transport (at most k non-zeros per column)."))


@capability(COMMAND, {"Regularisers": REG_HELP, "Built-in problems": PROBLEM_HELP})
def optimal_transport(
    source: Annotated[Path | None, typer.Option(help="Source points, .npy [m, d].", rich_help_panel=INPUT)] = None,
    target: Annotated[Path | None, typer.Option(help="Target points, .npy [n, d].", rich_help_panel=INPUT)] = None,
    cost: Annotated[Path | None, typer.Option(help="Cost matrix .npy [m, n] or [batch, m, n], instead of points.",
                                              rich_help_panel=INPUT)] = None,
    source_weights: Annotated[Path | None, typer.Option(help="Source weights .npy [m] (default uniform).",
                                                        rich_help_panel=INPUT)] = None,
    target_weights: Annotated[Path | None, typer.Option(help="Target weights .npy [n] (default uniform).",
                                                        rich_help_panel=INPUT)] = None,
    problem: Annotated[str | None, typer.Option(metavar="|".join(PROBLEM_HELP),
                                                help="A built-in problem instead of files (listed below).",
                                                rich_help_panel=INPUT)] = None,
    size: Annotated[int | None, typer.Option(help="Built-in problems: points, colours or tokens (default 500).",
                                             rich_help_panel=INPUT)] = None,
    experts: Annotated[int | None, typer.Option(help="moe-routing: experts (default 8).",
                                                rich_help_panel=INPUT)] = None,
    groups: Annotated[int | None, typer.Option(help="moe-routing: problems solved as one batch (default 1).",
                                               rich_help_panel=INPUT)] = None,
    metric: Annotated[str | None, typer.Option(metavar="sqeuclidean|euclidean|cityblock",
                                               help="Cost between points (default sqeuclidean).",
                                               rich_help_panel=INPUT)] = None,
    normalize: Annotated[bool | None, typer.Option("--normalize/--no-normalize",
                                                   help="Rescale weights to sum to 1 (default) or require it.",
                                                   rich_help_panel=INPUT)] = None,
    reg: Annotated[str | None, typer.Option(metavar="|".join(REG_HELP), help="Regulariser (default sparsity).",
                                            rich_help_panel=METHOD)] = None,
    exact: Annotated[bool, typer.Option("--exact", help="Same as --reg exact.", rich_help_panel=METHOD)] = False,
    k: Annotated[int | None, typer.Option("--k", "-k", help="At most k non-zeros per column (default 2).",
                                          rich_help_panel=METHOD)] = None,
    gamma: Annotated[float | None, typer.Option(help="Regularisation, relative to max(cost) (default 0.1).",
                                                rich_help_panel=METHOD)] = None,
    formulation: Annotated[str | None, typer.Option(metavar="semi-dual|dual",
                                                    help="Problem L-BFGS maximises (default semi-dual).",
                                                    rich_help_panel=METHOD)] = None,
    tol: Annotated[float | None, typer.Option(help="Tolerance (default 1e-9, as POT).", rich_help_panel=METHOD)] = None,
    stall_tol: Annotated[float | None, typer.Option(
        help="Converged once the dual objective gains less than this (relative) over 50 iterations (default 1e-6).",
        rich_help_panel=METHOD)] = None,
    max_iter: Annotated[int | None, typer.Option(
        help="Iteration cap (default 1,000, x n / 1,000 beyond 1,000 points).", rich_help_panel=METHOD)] = None,
    memory: Annotated[int | None, typer.Option(help="L-BFGS corrections kept (default 30).",
                                               rich_help_panel=METHOD)] = None,
) -> dict:
    """Transport plan with at most k sources per target, beside quadratic, entropic and exact OT.

    With --out DIR: plan.npz (scipy.sparse.load_npz for one problem; COO arrays batch/row/col/value/shape
    for a batch), the colour-transfer images, result.json and recipe.yaml.
    """
    flags = dict(source=source, target=target, cost=cost, source_weights=source_weights, target_weights=target_weights,
                 problem=problem, size=size, experts=experts, groups=groups, metric=metric, normalize=normalize,
                 reg="exact" if exact else reg, k=k, gamma=gamma, formulation=formulation, tol=tol, max_iter=max_iter,
                 memory=memory, stall_tol=stall_tol)
    return flags

