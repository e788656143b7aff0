"""``nmkit attack``: flags -> AttackConfig -> core run -> table, JSON, adversarials, image grid."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import (
    MODEL,
    Architecture,
    Command,
    ExecutorOption,
    ModelFile,
    Outcome,
    RunContext,
    TrustPickle,
    capability,
    register,
)
from nmkit.core.attack.config import METHOD_HELP, AttackConfig

if TYPE_CHECKING:
    from rich.table import Table

    from nmkit.core.attack.run import AttackResult

ATTACK = "Attack"


def run_command(config: AttackConfig, ctx: RunContext) -> Outcome:
    import numpy as np
    import torch

    from nmkit.core import io
    from nmkit.core.attack.run import run
    from nmkit.core.report import jsonable

    runs = 3 if config.method == "compare" else 1
    with ctx.progress("attack shards", runs * -(-config.count // config.shard)) as advance:
        result = run(config, advance, ctx.out_dir)
    artifacts = []
    if ctx.out_dir is not None:
        io.atomic_write(ctx.out_dir / "adversarial.npy", lambda fh: np.save(fh, result.adversarial))
        io.atomic_write(ctx.out_dir / "adversarial.pt", lambda fh: torch.save(torch.from_numpy(result.adversarial), fh))
        io.atomic_write(ctx.out_dir / "original.npy", lambda fh: np.save(fh, result.original))
        io.write_text(ctx.out_dir / "examples.csv", _examples_csv(result))
        artifacts += ["adversarial.npy", "adversarial.pt", "original.npy", "examples.csv"]
        artifacts += [f"tasks-{m}.jsonl" for m in (("quadattack", "cwk", "ad") if config.method == "compare" else
                                                   (config.method,))]
        if result.original.ndim == 4 and result.original.shape[1] in (1, 3):  # images: a picture says more
            from nmkit.core.attack.grid import image_grid

            io.write_png(ctx.out_dir / "grid.png", image_grid(result))
            artifacts.append("grid.png")
    tables = [_comparison_table(result)] if result.comparison else [_table(result)]
    return Outcome(summary=jsonable(result.summary()), tables=tables, artifacts=artifacts)


def _comparison_table(result: AttackResult) -> Table:
    from rich.table import Table

    table = Table("method", "success rate", "L2 mean / min / max", "seconds per example",
                  title=f"attack comparison: ordered top-{result.k}, budget {result.budget}, {result.examples} images")
    for method, row in result.comparison.items():
        l2 = row["energy"]["l2"]
        table.add_row(method, f"{row['success_rate']:.1%}",
                      f"{l2['mean']:.3f} / {l2['min']:.3f} / {l2['max']:.3f}" if l2 else "-",
                      f"{row['seconds_per_example']:.4f}")
    if result.notes:
        table.caption = "; ".join(result.notes)
    return table


def _examples_csv(result: AttackResult) -> str:
    import numpy as np

    delta = (result.adversarial - result.original).reshape(len(result.original), -1)
    lines = ["index,row,label,targets,success,l1,l2,linf"]
    for i, (data_row, label, targets, ok, row) in enumerate(zip(result.rows, result.labels, result.targets,
                                                                result.success, delta, strict=True)):
        norms = (np.abs(row).sum(), np.linalg.norm(row), np.abs(row).max()) if ok else ("", "", "")
        lines.append(",".join([str(i), str(data_row), str(label), " ".join(map(str, targets)),
                               str(bool(ok)).lower(), *(f"{n:.6g}" if n != "" else "" for n in norms)]))
    return "\n".join(lines) + "\n"


def _table(result: AttackResult) -> Table:
    from rich.table import Table

    table = Table("", "", title=f"attack: {result.method}, ordered top-{result.k}, budget {result.budget}",
                  show_header=False)
    table.add_row("examples attacked", str(result.examples))
    table.add_row("attack success rate (exact ordered top-K)", f"{result.success_rate:.1%}")
    for norm, stats in result.energy.items():
        if stats:
            table.add_row(f"{norm} of successes: mean / min / max",
                          f"{stats['mean']:.4f} / {stats['min']:.4f} / {stats['max']:.4f}")
    table.add_row("seconds per example", f"{result.seconds_per_example:.4f}")
    if result.notes:
        table.caption = "; ".join(result.notes)
    return table


COMMAND = register(Command(name="attack", schema=AttackConfig, run=run_command,
                           help="Ordered top-K targeted attacks: QuadAttacK, CW^K and AD."))


@capability(COMMAND, {"Methods": METHOD_HELP})
def attack(
    model: ModelFile = None,
    architecture: Architecture = None,
    trust_pickle: TrustPickle = None,
    feature_layer: Annotated[str | None, typer.Option(help="Name of the final Linear layer.",
                                                      rich_help_panel=MODEL)] = None,
    data: Annotated[str | None, typer.Option(
        help="digits or mnist (test split), an .npz with x [N, ...] and y [N], or a folder of MNIST IDX files.")]
    = None,
    count: Annotated[int | None, typer.Option(help="Correctly classified test images to attack (default 100).")]
    = None,
    k: Annotated[int | None, typer.Option("--k", "-k", help="Ordered targets per image (default 3).",
                                          rich_help_panel=ATTACK)] = None,
    targets: Annotated[str | None, typer.Option(help="random, or an .npy [N, K] integer array.",
                                                rich_help_panel=ATTACK)] = None,
    method: Annotated[str | None, typer.Option(metavar="|".join(METHOD_HELP), help="Attack (listed below).",
                                               rich_help_panel=ATTACK)] = None,
    budget: Annotated[str | None, typer.Option(help="Binary-search steps x iterations (default 1x60).",
                                               rich_help_panel=ATTACK)] = None,
    lr: Annotated[float | None, typer.Option(help="AdamW learning rate (default 0.05).", rich_help_panel=ATTACK)]
    = None,
    shard: Annotated[int | None, typer.Option(help="Inputs per task on --executor (default 64).")] = None,
    executor: ExecutorOption = None,
    resume: Annotated[bool | None, typer.Option("--resume", help="Keep the shards a stopped run in --out "
                                                "finished; attack the rest.")] = None,
):
    """Make a classifier rank K chosen classes first, in order, with the smallest perturbation.

    The attacked inputs are the first --count rows of the data (digits, mnist: the test split; or an .npz) that the
    model classifies correctly. --targets FILE is an integer .npy with one row of K classes per data row.

    With --out DIR: adversarial.npy and .pt (the best adversarial per input; the original where the attack
    failed), original.npy (the attacked inputs, in the same order), examples.csv (row: the input's row in the data,
    label, targets, success, L1/L2/Linf), grid.png for images, result.json, recipe.yaml.
    Box and normalisation (low, high, mean, std) are recipe/--set fields.
    """
    return dict(data=data, model=model, architecture=architecture, trust_pickle=trust_pickle,
                feature_layer=feature_layer, count=count, k=k, targets=targets, method=method, budget=budget, lr=lr,
                shard=shard, executor=executor, resume=resume)
