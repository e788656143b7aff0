"""``nmkit solve-linear ACTION``: train a DCDM direction network, or solve SPD systems beside CG/PCG/AMG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import Command, Outcome, RunContext, capability, register
from nmkit.core.errors import ConfigError
from nmkit.core.linear.config import ACTION_HELP, METHOD_HELP, LinearConfig

if TYPE_CHECKING:
    from rich.table import Table

    from nmkit.core.linear.run import LinearResult

SYSTEM = "System"
TRAINING = "Training"


def run_command(config: LinearConfig, ctx: RunContext) -> Outcome:
    import torch

    from nmkit.core import io
    from nmkit.core.linear.run import run
    from nmkit.core.report import jsonable

    if config.action == "train":
        with ctx.progress("training steps", config.steps) as advance:
            result = run(config, lambda steps, loss: advance(steps, f"loss {loss:.4f}"))
    else:
        result = run(config)
    artifacts, summary = [], jsonable(result.summary())
    if ctx.out_dir is not None:
        if result.model is not None:
            io.atomic_write(ctx.out_dir / "model.pt", lambda fh: torch.save(result.model, fh))
            artifacts.append("model.pt")
        io.write_text(ctx.out_dir / "history.csv", _history_csv(result))
        io.write_text(ctx.out_dir / "history.svg", _history_chart(result))
        artifacts += ["history.csv", "history.svg"]
    if config.action == "solve":
        summary["solutions"] = _write_solutions(result, config, ctx)
        artifacts += [Path(s["file"]).name for s in summary["solutions"].values()
                      if ctx.out_dir is not None and Path(s["file"]).parent == ctx.out_dir]
    # train compares every method on its own operator: only the trained network's failure fails the run
    failed = [s for s in result.solves if not s["converged"] and (config.action == "solve" or s["method"] == "dcdm")]
    failure = "; ".join(f"{s['method']} did not reach tol {config.tol:g} in {s['iterations']} iterations (last "
                        f"relative residual {s['true_relative_residual']:.3g})" for s in failed) or None
    return Outcome(summary=summary, tables=[_table(result)], artifacts=artifacts, failure=failure)


def _write_solutions(result: LinearResult, config: LinearConfig, ctx: RunContext) -> dict[str, dict]:
    """x for each method as .npy (grid-shaped for grid systems, flat for a matrix without --grid), read back and
    checked: the residual reported is ||b - A x|| / ||b|| of the written file, in float64."""
    import numpy as np

    from nmkit.core import io

    methods = list(result.solutions)
    if config.output is not None:
        targets = {methods[0]: config.output}
    elif ctx.out_dir is not None:
        targets = {m: ctx.out_dir / ("x.npy" if len(methods) == 1 else f"x-{m}.npy") for m in methods}
    else:
        return {}
    matrix, b = result.problem.matrix, result.b
    written = {}
    for method, path in targets.items():
        x = result.solutions[method].reshape(result.problem.shape)
        io.atomic_write(path, lambda fh, x=x: np.save(fh, x, allow_pickle=False))
        back = io.load_npy(path, finite=False).astype(np.float64).ravel()
        written[method] = {"file": str(path), "shape": list(x.shape),
                           "true_relative_residual": float(np.linalg.norm(b - matrix @ back) / np.linalg.norm(b))}
    return written


def _history_csv(result: LinearResult) -> str:
    methods = list(result.histories)
    longest = max(len(h) for h in result.histories.values())
    lines = ["iteration," + ",".join(methods)]
    for i in range(longest):
        lines.append(",".join([str(i), *(f"{result.histories[m][i]:.6e}" if i < len(result.histories[m]) else ""
                                         for m in methods)]))
    return "\n".join(lines) + "\n"


def _history_chart(result: LinearResult) -> str:
    import numpy as np

    from nmkit.core.svg import line_chart

    longest = max(len(h) for h in result.histories.values())
    series = {}
    for method, history in result.histories.items():
        padded = np.array(history + [history[-1]] * (longest - len(history)))
        series[method] = -np.log10(np.maximum(padded, 1e-300))
    return line_chart(np.arange(longest), series, x_label="iteration",
                      y_label="digits gained: -log10 ||b - Ax|| / ||b||")


def _table(result: LinearResult) -> Table:
    from rich.table import Table

    table = Table("method", "iterations", "converged", "true rel. residual", "setup s", "solve s",
                  title=f"solve-linear {result.action}: {result.system}, {result.unknowns:,} unknowns, "
                        f"tol {result.tol:g}")
    for s in result.solves:
        name = s["method"] + (f" ({s['fallbacks']} fallback steps)" if s["fallbacks"] else "")
        table.add_row(name, str(s["iterations"]), "yes" if s["converged"] else "NO",
                      f"{s['true_relative_residual']:.2e}", f"{s['setup_seconds']:.3f}", f"{s['solve_seconds']:.3f}")
    notes = list(result.notes)
    if result.training:
        t = result.training
        notes.insert(0, f"trained {t['parameters']:,} parameters for {t['steps']} steps in {t['seconds']:.1f} s "
                        f"(loss {t['loss_first']:.3f} -> {t['loss_last_50_mean']:.3f})")
    if notes:
        table.caption = "; ".join(notes)
    return table


COMMAND = register(Command(name="solve-linear", schema=LinearConfig, run=run_command,
                           help="Solve SPD grid systems with the Deep Conjugate Direction Method beside CG, PCG "
                                "and AMG."))


def _grid(text: str | None) -> list[int] | None:
    try:
        return None if text is None else [int(part) for part in text.lower().split("x")]
    except ValueError:
        raise ConfigError(f"flag --grid expects sizes such as 64x64, found {text!r}") from None


@capability(COMMAND, {"Actions": ACTION_HELP, "Methods": METHOD_HELP})
def solve_linear(
    action: Annotated[str | None, typer.Argument(metavar="train|solve", help="What to do (listed below).")] = None,
    problem: Annotated[str | None, typer.Option(metavar="poisson2d|poisson3d|diffusion2d|diffusion3d",
                                                help="Built-in operator (default poisson2d).",
                                                rich_help_panel=SYSTEM)] = None,
    n: Annotated[int | None, typer.Option("--n", help="Cells per side (default 64).", rich_help_panel=SYSTEM)] = None,
    obstacle: Annotated[str | None, typer.Option(metavar="none|sphere|box", help="Solid cells in the middle.",
                                                 rich_help_panel=SYSTEM)] = None,
    matrix: Annotated[Path | None, typer.Option(help="A Matrix Market SPD matrix (solve).",
                                                rich_help_panel=SYSTEM)] = None,
    grid: Annotated[str | None, typer.Option(help="Grid of a --matrix's unknowns for dcdm, e.g. 64x64.",
                                             rich_help_panel=SYSTEM)] = None,
    rhs: Annotated[str | None, typer.Option(help="random, smooth, divergence, or an .npy vector.",
                                            rich_help_panel=SYSTEM)] = None,
    model: Annotated[Path | None, typer.Option(help="A trained model.pt or its folder (dcdm).")] = None,
    method: Annotated[str | None, typer.Option(metavar="|".join(METHOD_HELP), help="Solver (default all).")] = None,
    tol: Annotated[float | None, typer.Option(help="Relative residual to reach (default 1e-6).")] = None,
    max_iter: Annotated[int | None, typer.Option(help="Iteration limit (default 2000).")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="solve: write x here (.npy), for one "
                                                "method.")] = None,
    steps: Annotated[int | None, typer.Option(help="Adam steps (default 1000).", rich_help_panel=TRAINING)] = None,
    levels: Annotated[int | None, typer.Option(help="Network down/up levels (default 3; the paper's is 1).",
                                               rich_help_panel=TRAINING)] = None,
):
    """Train a network that proposes search directions for one grid operator, then solve with it beside CG,
    Jacobi-PCG, IC(0)-PCG and AMG-PCG; every method stops at the same true relative residual ||b - Ax|| / ||b||.

    Examples: `nmkit solve-linear train --n 64 --out runs/model`, `nmkit solve-linear solve --model runs/model
    --n 128 --rhs divergence --out runs/x`, `nmkit solve-linear solve --matrix A.mtx --method amg`.
    With --out: x.npy (solve; x-<method>.npy for each method under --method all), model.pt (train), history.csv
    and history.svg (residual per iteration per method); -o FILE writes x anywhere. result.json names each x file
    with its true relative residual, recomputed in float64 from the written file. A solve where any requested
    method misses tol exits 1 naming the methods and their last residuals (result.json is still written).
    """
    rhs_value = rhs if rhs in (None, "random", "smooth", "divergence") else Path(rhs)
    return dict(action=action, problem=problem, n=n, obstacle=obstacle, matrix=matrix, grid=_grid(grid),
                rhs=rhs_value, model=model, method=method, tol=tol, max_iter=max_iter, steps=steps, levels=levels,
                output=output)
