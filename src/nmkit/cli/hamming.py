"""``nmkit hamming``: flags -> HammingConfig -> core scan -> tables, JSON, distances.npy."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import Command, ExecutorOption, Outcome, RunContext, capability, register
from nmkit.core.hamming.config import ALGORITHM_HELP, HammingConfig

if TYPE_CHECKING:
    from rich.table import Table

    from nmkit.core.hamming.scan import HammingResult

INPUT = "Input"
MODE = "Mode"


def run(config: HammingConfig, ctx: RunContext) -> Outcome:
    from nmkit.core import io
    from nmkit.core.hamming.scan import scan
    from nmkit.core.report import jsonable

    if config.patterns_file is not None:
        return _run_batch(config, ctx)
    artifacts = []
    with contextlib.ExitStack() as stack:
        sink = None
        if ctx.out_dir is not None:
            dtype = "float32" if config.mode == "approx" else "int32"
            writer = stack.enter_context(io.NpyStreamWriter(ctx.out_dir / "distances.npy", dtype))
            sink = writer.write
            artifacts.append("distances.npy")
        advance = stack.enter_context(ctx.progress("hamming", None if config.synthetic else _total(config)))
        result = scan(config, sink=sink, advance=advance)
    if ctx.out_dir is not None and result.hits is not None:
        rows = "".join(f"{a.position},{a.distance}\n" for a in result.hits)
        io.write_text(ctx.out_dir / "hits.csv", "position,distance\n" + rows)
        artifacts.append("hits.csv")
    return Outcome(summary=jsonable(result), tables=[_summary_table(result), _best_table(result)], artifacts=artifacts)


def _run_batch(config: HammingConfig, ctx: RunContext) -> Outcome:
    from rich.table import Table

    from nmkit.core import io
    from nmkit.core.hamming.batch import scan_batch
    from nmkit.core.report import jsonable

    with ctx.progress("hamming tasks", None) as advance:
        result = scan_batch(config, advance, ctx.out_dir)
    artifacts = []
    if ctx.out_dir is not None:
        artifacts.append("tasks.jsonl")
        io.write_text(ctx.out_dir / "matches.csv", _matches_csv(result.matches))
        artifacts.append("matches.csv")
        if config.mode == "k-mismatch":
            rows = "".join(f"{_csv(m.pattern)},{_csv(m.text)},{a.position},{a.distance}\n"
                           for m in result.matches for a in m.hits)
            io.write_text(ctx.out_dir / "hits.csv", "pattern,text,position,distance\n" + rows)
            artifacts.append("hits.csv")
    summary = Table("", "", title="hamming: many patterns", show_header=False)
    for key, value in (("mode", result.mode), ("patterns x texts", f"{result.patterns:,} x {result.texts:,}"),
                       ("tasks (executor)", f"{result.tasks:,} ({result.executor})"),
                       ("text symbols", f"{result.text_symbols:,}"), ("seconds", f"{result.seconds:.3f}"),
                       ("pattern-text symbol pairs / s",
                        f"{result.patterns * result.text_symbols / max(result.seconds, 1e-9):.3g}")):
        summary.add_row(key, value)
    shown = Table("pattern", "text", "best distance", "best positions", title="best alignments (first 20 pairs)")
    for match in result.matches[:20]:
        shown.add_row(match.pattern, match.text, str(match.best[0].distance) if match.best else "-",
                      " ".join(str(a.position) for a in match.best[:5]))
    return Outcome(summary=jsonable(result.summary()), tables=[summary, shown], artifacts=artifacts)


def _matches_csv(matches) -> str:
    """One row per (pattern, text): lengths, the best distance and the best alignments as position:distance."""
    rows = [f"{_csv(m.pattern)},{_csv(m.text)},{m.pattern_length},{m.text_length},"
            f"{m.best[0].distance if m.best else ''},{' '.join(f'{a.position}:{a.distance}' for a in m.best)}"
            + (f",{len(m.hits)}" if m.hits is not None else "") for m in matches]
    hits = ",hits" if matches and matches[0].hits is not None else ""
    return f"pattern,text,pattern_length,text_length,best_distance,best{hits}\n" + "\n".join(rows) + "\n"


def _csv(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text


def _total(config: HammingConfig) -> int | None:
    path = config.text_file
    if path is not None and str(path) != "-" and path.suffix != ".npy" and not config.tokens and path.exists():
        return path.stat().st_size
    return None


def _summary_table(result: HammingResult) -> Table:
    from rich.table import Table

    table = Table("", "", title="hamming", show_header=False)
    rows = [
        ("mode", result.mode),
        ("algorithm", result.algorithm),
        ("text length n", f"{result.text_length:,}"),
        ("pattern length m", f"{result.pattern_length:,}"),
        ("distinct pattern symbols", str(result.pattern_symbols)),
        ("alignments", f"{result.alignments:,}"),
        ("seconds (compute / all)", f"{result.compute_seconds:.4f} / {result.seconds:.3f}"),
        ("symbol pairs / s", f"{result.alignments * result.pattern_length / max(result.compute_seconds, 1e-9):.3g}"),
    ]
    if result.hits is not None:
        rows.append(("alignments within k", f"{len(result.hits):,}"))
    if result.samples is not None:
        rows += [("samples per alignment", f"{result.samples:,}"), ("exact recounts", f"{result.exact_recounts:,}"),
                 ("failure probability", str(result.failure_probability))]
    for key, value in rows:
        table.add_row(key, value)
    return table


def _best_table(result: HammingResult) -> Table:
    from rich.table import Table

    planted = {p["position"]: p["mismatches"] for p in result.planted}
    table = Table("rank", "position", "distance", title="best alignments")
    if planted:
        table.add_column("planted here")
    for rank, alignment in enumerate(result.best, 1):
        row = [str(rank), f"{alignment.position:,}", str(alignment.distance)]
        if planted:
            row.append(f"yes ({planted[alignment.position]} mutations)" if alignment.position in planted else "")
        table.add_row(*row)
    return table


COMMAND = register(Command(
    name="hamming",
    help="Text-to-pattern Hamming distances: exact, k-mismatch, approximate, with wildcards.",
    schema=HammingConfig,
    run=run,
))


@capability(COMMAND, {"Algorithms": ALGORITHM_HELP})
def hamming(
    text: Annotated[str | None, typer.Option(help="The text, inline.", rich_help_panel=INPUT)] = None,
    text_file: Annotated[Path | None, typer.Option(
        help="Text file: bytes (default), tokens with --tokens, or a .npy integer array; - reads stdin.",
        rich_help_panel=INPUT)] = None,
    pattern: Annotated[str | None, typer.Option(help="The pattern, inline.", rich_help_panel=INPUT)] = None,
    pattern_file: Annotated[Path | None, typer.Option(help="Pattern file, same formats as the text; its final "
                                                      "line ending is dropped (see --keep-newline).",
                                                      rich_help_panel=INPUT)] = None,
    patterns_file: Annotated[Path | None, typer.Option(help="Many patterns: one per line, FASTA or FASTQ (names "
                                                       "kept), or a 2-D .npy; against --text-file (a file or a "
                                                       "folder of texts), as tasks on --executor.",
                                                       rich_help_panel=INPUT)] = None,
    executor: ExecutorOption = None,
    resume: Annotated[bool | None, typer.Option("--resume", help="--patterns-file: keep the tasks a stopped run in "
                                                "--out finished; scan the rest.", rich_help_panel=INPUT)] = None,
    keep_newline: Annotated[bool | None, typer.Option("--keep-newline", help="Keep a pattern file's final line "
                                                      "ending as symbols of the pattern.", rich_help_panel=INPUT)]
    = None,
    tokens: Annotated[bool | None, typer.Option("--tokens/--bytes",
                                                help="Whitespace-separated tokens instead of bytes.",
                                                rich_help_panel=INPUT)] = None,
    max_mismatches: Annotated[int | None, typer.Option("--max-mismatches", "-k",
                                                       help="k-mismatch: only alignments with <= k mismatches.",
                                                       rich_help_panel=MODE)] = None,
    approx: Annotated[float | None, typer.Option(metavar="EPS", help="Approximate: (1 +/- EPS) estimates.",
                                                 rich_help_panel=MODE)] = None,
    failure_probability: Annotated[float | None, typer.Option(
        help="Approximate: chance that any estimate misses its bound (default 0.01).", rich_help_panel=MODE)] = None,
    wildcard: Annotated[str | None, typer.Option(help="A symbol that matches anything (exact mode).",
                                                 rich_help_panel=MODE)] = None,
    algorithm: Annotated[str | None, typer.Option(
        metavar="|".join(ALGORITHM_HELP), help="How to compute (default auto); see the list below.",
        rich_help_panel=MODE)] = None,
    top: Annotated[int | None, typer.Option(help="How many best alignments to list (default 10).")] = None,
    chunk_size: Annotated[int | None, typer.Option(
        help="Text symbols per chunk (default 4194304); memory stays O(chunk + m).")] = None,
) -> dict:
    """Hamming distance of the pattern at every alignment of the text; lists the best alignments.

    With --out DIR: distances.npy (all n-m+1 values; k-mismatch stores k+1 for "more than k"), hits.csv
    (k-mismatch), result.json and recipe.yaml. With --patterns-file: matches.csv (one row per pattern and text:
    its best alignments) and, for k-mismatch, hits.csv (every hit of every pair).
    """  # the algorithm list is appended below, from ALGORITHM_HELP
    flags = dict(text=text, text_file=text_file, pattern=pattern, pattern_file=pattern_file, keep_newline=keep_newline,
                 tokens=tokens, patterns_file=patterns_file, executor=executor, resume=resume,
                 max_mismatches=max_mismatches, approx=approx, failure_probability=failure_probability,
                 wildcard=wildcard, algorithm=algorithm, top=top, chunk_size=chunk_size)
    return flags

