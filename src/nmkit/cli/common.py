"""What every subcommand shares: run options, config layering, the error boundary, output.

A subcommand module defines a :class:`Command` (its schema and a ``run(config, ctx)`` that calls
core and returns an :class:`Outcome`) and a thin typer function that hands its flags to
:func:`execute`. ``nmkit run`` reaches the same ``Command`` through :data:`COMMANDS`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nmkit.core import compiled, memory, threads
from nmkit.core.errors import InputError, Interrupted, NmkitError, RunError, Terminated, reason
from nmkit.core.model_source import ARCHITECTURES
from nmkit.core.recipe import FLAGS, META_KEYS, build_config, parse_set_items, read_recipe, show, to_plain

if TYPE_CHECKING:
    from rich.table import Table

# Heavy modules (torch, numba, scipy, a capability's core) are imported inside the functions that run a command,
# after the thread policy is applied, so that `--help` and `recipes` start fast (tests/cli/test_startup.py).

RUN_PANEL = "Run options"

RecipeOpt = Annotated[
    Path | None, typer.Option("--recipe", help="YAML recipe with this command's fields.", rich_help_panel=RUN_PANEL)
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="Override a field (dotted key, YAML value); repeatable.",
                 rich_help_panel=RUN_PANEL),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Folder for result.json, recipe.yaml and artifacts.", rich_help_panel=RUN_PANEL),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.", rich_help_panel=RUN_PANEL)]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", metavar="auto|cpu|cuda", help="Where to compute.", rich_help_panel=RUN_PANEL)
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed.", rich_help_panel=RUN_PANEL)]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.", rich_help_panel=RUN_PANEL)]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.", rich_help_panel=RUN_PANEL)]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", min=1, help="Threads for every pool (torch, numba, OpenMP, BLAS); default: "
                             "OMP_NUM_THREADS if set, else NMKIT_THREADS, else the CPUs other jobs leave free.",
                             rich_help_panel=RUN_PANEL)
]
ExecutorOption = Annotated[
    str | None, typer.Option("--executor", metavar="local[:N]|dask://HOST:PORT|dask-scheduler-file:PATH",
                             help="Where batch tasks run: local worker processes (default: one per thread of the "
                             "budget; NMKIT_EXECUTOR), or an existing Dask distributed cluster (nmkit[dask]).",
                             rich_help_panel=RUN_PANEL)
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Reuse a non-empty --out folder: nmkit's earlier files there are deleted "
                       "first (an earlier run of the same command is replaced even without it); replace output "
                       "files.", rich_help_panel=RUN_PANEL)
]
MaxMemoryOpt = Annotated[
    str | None, typer.Option("--max-memory", metavar="SIZE", help="Refuse inputs needing more memory than this "
                             "(e.g. 8G); default: NMKIT_MAX_MEMORY, else what the machine has free.",
                             rich_help_panel=RUN_PANEL)
]


@dataclass(frozen=True)
class RunOptions:
    """How to run and report, as opposed to what to compute (the config)."""

    out: Path | None = None
    json: bool = False
    quiet: bool = False
    debug: bool = False
    force: bool = False
    threads: int | None = None
    max_memory: str | None = None


@dataclass
class Outcome:
    """What a command's ``run`` hands back: JSON-able summary, tables for people, files written."""

    summary: dict
    tables: list[Table] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    failure: str | None = None  # the run finished but failed its goal: reported, written, then exit 1
    interrupted: str | None = None  # Ctrl-C ended it early with a usable partial result: reported, then exit 130


@dataclass
class RunContext:
    """What ``run`` may use besides its config: the output folder, the device, progress bars."""

    out_dir: Path | None
    device: str
    show_progress: bool
    force: bool = False  # replace existing output files too, not only write into a non-empty --out
    stream_text: bool = False  # a command may stream text to stdout (not under --json)
    plain_progress: bool = False  # stderr is not a terminal (CI logs, make): a plain line now and then instead

    @contextlib.contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[Callable[..., None]]:
        """Yield ``advance(n, info="")``; draws a rich bar on stderr when allowed, ``info`` (a short status
        such as the current loss) beside it. Off a terminal: one plain line every :data:`PLAIN_EVERY` seconds."""
        if self.plain_progress:
            yield _plain_progress(description, total)
            return
        if not self.show_progress:
            yield lambda n, info="": None
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(description, total=total, info="")
            yield lambda n, info="": bar.update(task, advance=n, **({"info": info} if info else {}))


PLAIN_EVERY = 10.0
"""Seconds between progress lines when stderr is not a terminal."""


def _plain_progress(description: str, total: int | None) -> Callable[..., None]:
    """``advance`` that writes ``description: done/total, rate/s, eta Ns, info`` to stderr every PLAIN_EVERY s."""
    start = last = time.perf_counter()
    done = 0

    def advance(n: int, info: str = "") -> None:
        nonlocal done, last
        done += n
        now = time.perf_counter()
        if now - last < PLAIN_EVERY:
            return
        last = now
        rate = done / (now - start)
        eta = f", eta {(total - done) / rate:.0f} s" if total and rate > 0 else ""
        sys.stderr.write(f"{description}: {done:,}{f'/{total:,}' if total else ''}, {rate:.3g}/s{eta}"
                         f"{', ' + info if info else ''}\n")
        sys.stderr.flush()

    return advance


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    schema: type
    run: Callable[[Any, RunContext], Outcome]


COMMANDS: dict[str, Command] = {}


def register(command: Command) -> Command:
    COMMANDS[command.name] = command
    return command


_RUN_PARAMETERS = [
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
    for name, annotation, default in (
        ("recipe", RecipeOpt, None), ("sets", SetOpt, None), ("out", OutOpt, None), ("json_out", JsonOpt, False),
        ("device", DeviceOpt, None), ("seed", SeedOpt, None), ("quiet", QuietOpt, False),
        ("debug", DebugOpt, False), ("force", ForceOpt, False), ("threads", ThreadsOpt, None),
        ("max_memory", MaxMemoryOpt, None))
]


def capability(command: Command, listings: dict[str, dict[str, str]] | None = None) -> Callable[[Callable], Callable]:
    """Turn ``fn(**own flags) -> config flags`` into a typer command with the shared run options.

    ``fn`` declares only its own options and returns ``{config field: value}`` (or that and a
    replacement ``Command``); the wrapper adds --recipe, --set, --out, --json, --device, --seed,
    --quiet, --debug, --force, --threads and --max-memory to its signature, builds the config and hands it to
    :func:`run_config` inside the error boundary.
    ``listings`` ({"Algorithms": {name: one line}}) are appended to the help text.
    """

    def decorate(fn: Callable) -> Callable:
        own = list(inspect.signature(fn, eval_str=True).parameters.values())

        @functools.wraps(fn)
        def wrapper(**kwargs):
            run = {p.name: kwargs.pop(p.name) for p in _RUN_PARAMETERS}
            options = RunOptions(out=run["out"], json=run["json_out"], quiet=run["quiet"], debug=run["debug"],
                                 force=run["force"], threads=run["threads"], max_memory=run["max_memory"])
            with error_boundary(options.debug):  # flag parsing (--grid 64x64, --sparsity 0.5,0.9) fails here too
                returned = fn(**kwargs)
                flags, chosen = returned if isinstance(returned, tuple) else (returned, command)
                flags.update(device=run["device"], seed=run["seed"])
                config = build_config(chosen.schema, config_layers(chosen, run["recipe"], flags, run["sets"]))
                run_config(chosen, config, options)

        sections = [f"{title}:\n\n" + "\n\n".join(f"{k}: {v}." for k, v in items.items())
                    for title, items in (listings or {}).items()]
        wrapper.__doc__ = "\n\n".join([inspect.cleandoc(fn.__doc__ or ""), *sections])
        parameters = [*own, *_RUN_PARAMETERS]
        wrapper.__signature__ = inspect.Signature(parameters, return_annotation=None)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}  # evaluated: typer reads these
        del wrapper.__wrapped__  # typer must see the combined signature, not fn's
        return wrapper

    return decorate


def config_layers(command: Command, recipe: Path | None, flags: dict, sets: list[str] | None) -> list:
    """Layers in precedence order: recipe < flags < --set (defaults live in the schema)."""
    layers = []
    if recipe is not None:
        raw = read_recipe(recipe)
        named = raw.get("command", command.name)
        if named != command.name:
            raise InputError(f"recipe {recipe}: is for 'nmkit {show(named)}', not 'nmkit {command.name}'")
        body = {k: v for k, v in raw.items() if k not in META_KEYS}
        layers.append((f"recipe {recipe}", body, Path(recipe).resolve().parent))
    given = {k: v for k, v in flags.items() if v is not None}
    layers.append((FLAGS, given, Path.cwd()))
    layers.append(("--set", parse_set_items(sets or []), Path.cwd()))
    return layers


def run_config(command: Command, config, options: RunOptions) -> dict:
    """Run and report. Under torchrun only process 0 (RANK 0) writes and prints; the others compute."""
    budget = threads.configure(options.threads)  # before anything imports numpy, torch or numba
    memory.set_limit(options.max_memory)
    compiled.on_first_compile(None if options.quiet else lambda: sys.stderr.write(
        "nmkit: compiling CPU code for this machine (first run after an install; later runs load it from "
        "numba's cache)\n"))  # None: an earlier run in this process (tests, embedding) may have left one
    from nmkit.core.device import resolve_device
    from nmkit.core.outdir import output_folder

    device = resolve_device(config.device)
    primary = int(os.environ.get("RANK", "0")) == 0
    resuming = getattr(config, "resume", False)  # a resumed run writes into its own, non-empty folder
    with contextlib.ExitStack() as stack:
        stack.enter_context(_terminate_as_interrupt())
        out_dir = options.out
        if out_dir is not None and primary:
            out_dir = stack.enter_context(output_folder(out_dir, force=options.force, resume=resuming,
                                                        command=command.name))
        return _run_and_report(command, config, options, RunContext(
            out_dir, device, show_progress=primary and not options.quiet and sys.stderr.isatty(), force=options.force,
            stream_text=primary and not options.json,
            plain_progress=primary and not options.quiet and not sys.stderr.isatty()), budget, primary)


def _run_and_report(command: Command, config, options: RunOptions, ctx: RunContext, budget: int,
                    primary: bool) -> dict:
    import yaml
    from rich.console import Console

    from nmkit.core import io
    from nmkit.core.report import jsonable, non_finite_paths, package_versions

    out_dir = ctx.out_dir
    start = time.perf_counter()
    outcome = command.run(config, ctx)
    non_finite = non_finite_paths(outcome.summary, "result")
    record = {
        "command": command.name,
        "status": _status(outcome, non_finite),
        "result": jsonable(outcome.summary),
        "seconds": round(time.perf_counter() - start, 6),
        "seed": config.seed,
        "device": ctx.device,
        "threads": budget,
        "versions": package_versions(),
        "config": to_plain(config),
    }
    if not primary:
        return record
    if out_dir is not None:
        recipe_text = yaml.safe_dump({"command": command.name, **to_plain(config, relative_to=out_dir)},
                                     sort_keys=False)
        io.write_text(out_dir / "recipe.yaml", recipe_text)
        io.write_json(out_dir / "result.json", record)
    if options.json:
        sys.stdout.write(json.dumps(record, indent=2, allow_nan=False) + "\n")
    else:
        console = Console() if sys.stdout.isatty() else Console(width=OFF_TERMINAL_WIDTH)  # logs: no truncation
        for table in outcome.tables:
            console.print(table)
        if out_dir is not None:
            files = ", ".join(["result.json", "recipe.yaml", *outcome.artifacts])
            Console(stderr=True).print(f"wrote {files} to {out_dir}", highlight=False)
    if outcome.failure:
        raise RunError(outcome.failure)
    if outcome.interrupted:
        raise Interrupted(outcome.interrupted)
    return record


def _status(outcome: Outcome, non_finite: list[str]) -> str:
    """``ok``, ``failed: why`` (exit 1), ``interrupted: why`` (exit 130), or every place where a non-finite number
    was turned into null."""
    if outcome.failure:
        return f"failed: {outcome.failure}"
    if outcome.interrupted:
        return f"interrupted: {outcome.interrupted}"
    return "non-finite values (null): " + ", ".join(non_finite) if non_finite else "ok"


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGTERM (a CI timeout, ``kill``) stops it the way Ctrl-C does."""
    def handle(signum, frame):
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, handle)
    except ValueError:  # not the main thread (an embedding application): leave signals to it
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


OFF_TERMINAL_WIDTH = 200
"""Columns for tables when stdout is not a terminal (rich would cut them at 80 into 'accura...')."""

MAX_MESSAGE = 400
"""Characters of an error line at most (a 100,000-character path must not make a 200 KB message)."""


@contextlib.contextmanager
def error_boundary(debug: bool) -> Iterator[None]:
    """Turn errors into one line on stderr and an exit code (2 bad input, 1 failure, 130 Ctrl-C, 143 SIGTERM)."""
    try:
        yield
    except typer.Exit:
        raise
    except NmkitError as exc:
        if debug:
            raise
        _fail(str(exc), exc.exit_code)
    except Terminated:
        _fail("terminated (SIGTERM)", 143)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except MemoryError:
        if debug:
            raise
        _fail("out of memory: the input or a size setting needs more memory than is free; reduce it", 2)
    except RecursionError:
        if debug:
            raise
        _fail("input nested too deeply to process", 2)
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if debug:
            raise
        _fail(f"internal error: {type(exc).__name__}: {reason(exc, 200)} (rerun with --debug for the traceback)", 1)


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"error: {one_line(message)}\n")
    raise typer.Exit(code)


def one_line(message: str) -> str:
    """``message`` as one printable line of at most :data:`MAX_MESSAGE` characters."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", message[: MAX_MESSAGE * 2])  # terminal colour codes
    text = "".join(c if c.isprintable() else " " for c in text)
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


# -- flags shared by the subcommands that take a classifier (attack, prune), in the help's "Model" panel --

MODEL = "Model"

ModelFile = Annotated[Path | None, typer.Argument(help="Model file; omit to train the zoo architecture on digits.")]
Architecture = Annotated[str | None, typer.Option(
    metavar="|".join(ARCHITECTURES), help="Zoo architecture (default mlp; resnet takes digits upsampled to 32x32).",
    rich_help_panel=MODEL)]
TrustPickle = Annotated[bool | None, typer.Option("--trust-pickle/--no-trust-pickle",
                                                  help="Allow a pickled nn.Module (runs code from the file).",
                                                  rich_help_panel=MODEL)]
