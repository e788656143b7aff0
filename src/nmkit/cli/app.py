"""The ``nmkit`` entry point: one subcommand per capability, plus ``run`` and ``recipes``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

import nmkit
from nmkit.cli import (
    attack,
    compress_pc,
    hamming,
    optimal_transport,
    prune,
    relax_sor,
    robust_opt,
    solve_linear,
    train_snn,
)
from nmkit.cli.common import (
    COMMANDS,
    DebugOpt,
    DeviceOpt,
    ForceOpt,
    JsonOpt,
    MaxMemoryOpt,
    OutOpt,
    QuietOpt,
    RunOptions,
    SeedOpt,
    SetOpt,
    ThreadsOpt,
    config_layers,
    error_boundary,
    run_config,
)
from nmkit.core.errors import InputError
from nmkit.core.recipe import build_config, field_names, read_recipe, show

app = typer.Typer(
    name="nmkit",
    help="Numerical-ML research methods as command-line tools, driven by YAML recipes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: typer's rich help imports markdown-it and rich (~0.15 s per call)
)
app.command("hamming")(hamming.hamming)
app.command("optimal-transport")(optimal_transport.optimal_transport)
app.command("relax-sor")(relax_sor.relax_sor)
app.command("compress-pc")(compress_pc.compress_pc)
app.command("attack")(attack.attack)
app.command("prune")(prune.prune)
app.command("solve-linear")(solve_linear.solve_linear)
app.command("robust-opt")(robust_opt.robust_opt)
app.command("train-snn")(train_snn.train_snn)

RECIPE_FOLDERS = (Path(__file__).resolve().parents[3] / "recipes",  # a source checkout or editable install
                  Path(sys.prefix) / "share" / "nmkit" / "recipes")  # a wheel install (data-files)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nmkit {nmkit.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Numerical-ML research methods as command-line tools, driven by YAML recipes."""


@app.command("run")
def run(
    recipes: Annotated[list[Path], typer.Argument(help="Recipe files (each names its command with `command:`), or "
                                                       "names of shipped recipes (nmkit recipes lists them).")],
    sets: SetOpt = None,
    out: OutOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    force: ForceOpt = False,
    threads: ThreadsOpt = None,
    max_memory: MaxMemoryOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    trust_pickle: Annotated[bool, typer.Option(
        "--trust-pickle", help="Let recipes that load a model accept a pickled nn.Module (runs code from the file); "
        "a recipe itself can never switch this on.")] = False,
) -> None:
    """Run recipes. With several recipes and --out, each writes to OUT/<recipe name>."""
    for recipe in recipes:
        with error_boundary(debug):
            recipe = shipped_recipe(recipe)
            command_name = read_recipe(recipe).get("command")
            if not isinstance(command_name, str) or command_name not in COMMANDS:
                known = ", ".join(sorted(COMMANDS))
                raise InputError(f"recipe {recipe}: field 'command' must name one of: {known}; "
                                 f"found {show(command_name)}")
            command = COMMANDS[command_name]
            flags = {"trust_pickle": True} if trust_pickle and "trust_pickle" in field_names(command.schema) else {}
            flags |= {k: v for k, v in (("seed", seed), ("device", device)) if v is not None}
            config = build_config(command.schema, config_layers(command, recipe, flags, sets))
            target = out / recipe.stem if out is not None and len(recipes) > 1 else out
            run_config(command, config, RunOptions(target, json_out, quiet, debug, force, threads, max_memory))


@app.command("recipes")
def recipes(
    folder: Annotated[Path | None, typer.Argument(help="Folder to list (default: the shipped recipes).")] = None,
) -> None:
    """List recipes with their command and one-line description."""
    from rich.console import Console
    from rich.table import Table

    with error_boundary(debug=False):
        folder = folder or next((f for f in (Path("recipes"), *RECIPE_FOLDERS) if f.is_dir()), RECIPE_FOLDERS[-1])
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder of recipes")
        table = Table("recipe", "command", "description", title=f"recipes in {folder} (nmkit run NAME runs one)")
        for path in sorted(folder.glob("*.yaml")):
            data = read_recipe(path)
            table.add_row(path.stem, str(data.get("command", "?")), str(data.get("description", "")))
        Console().print(table)


def shipped_recipe(recipe: Path) -> Path:
    """``recipe`` itself when it exists; else a shipped recipe of that name (``hamming``, ``hamming.yaml`` or
    ``recipes/hamming.yaml``), so ``nmkit run hamming`` works from a wheel install too."""
    if recipe.exists():
        return recipe
    for folder in RECIPE_FOLDERS:
        candidate = folder / (recipe.name if recipe.suffix == ".yaml" else f"{recipe.name}.yaml")
        if candidate.is_file():
            return candidate
    return recipe


def main() -> None:
    app()
