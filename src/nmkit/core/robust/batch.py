"""``robust-opt solve FOLDER``: every instance of a folder through the portfolio solver (one task per instance on
the run's executor, each with its own time limit), one results row each, and the gap to a reference file's column.

Reference files are CSV with an ``instance`` column (file names, with or without .txt/.dat) and a profit column
(``best_known_profit`` by default, as in Arslan and Detienne's benchmark); other ``*_gap_percent`` columns it
carries (e.g. Neur2RO's published gaps) are averaged beside ours in the summary.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nmkit.core.errors import InputError
from nmkit.core.executor import ExecutorSpec, TaskLog, run_tasks
from nmkit.core.robust import portfolio, solvers
from nmkit.core.robust.network import ValueModel
from nmkit.core.robust.problem import RobustProblem

MAX_REFERENCE_BYTES = 64 << 20


@dataclass
class Row:
    instance: str
    n: int
    group: str  # the knapsack correlation class from the file name (UN, WC, ASC, SC), else "-"
    profit: float
    seconds: float
    reference: float | None
    gap_percent: float | None  # 100 (reference - profit) / |reference|; negative: better than the reference
    nominal_profit: float
    nominal_gap_percent: float | None
    source: str
    status: str
    bound: float
    scoring_seconds: float
    published: dict[str, float]  # the reference file's other *_gap_percent columns for this instance
    x: list[int]


NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
"""A number as CSV files write them (no Python literal forms such as 1_000, inf or nan)."""
MAX_PROFIT = 1e15


def read_reference(path: Path, column: str, instances: set[str] | None = None) -> dict[str, dict[str, float]]:
    """instance name (extension dropped) -> {column: value, and every *_gap_percent column it has a number in},
    for the ``instances`` named (every row when None; other rows are only scanned, so a large file costs its
    reading time, not memory). A UTF-8 byte-order mark is skipped; a repeated column, a row with a field count
    other than the header's, a profit that is not a number in (0, 1e15], and one instance listed twice with
    different values are refused, naming the line."""
    path = Path(path)
    name = f"reference {path}"
    if not path.is_file():
        raise InputError(f"{name}: no such file")
    if path.stat().st_size > MAX_REFERENCE_BYTES:
        raise InputError(f"{name}: larger than {MAX_REFERENCE_BYTES >> 20} MiB")
    found: dict[str, dict[str, float]] = {}
    first_line: dict[str, int] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = next(reader, [])
            columns = _reference_columns(header, column, name)
            key = header.index("instance")
            for record in reader:
                if not record:
                    continue
                number = reader.line_num
                if len(record) != len(header):
                    raise InputError(f"{name}: line {number} has {len(record)} fields, the header {len(header)}")
                instance = instance_name(record[key].strip())
                if instances is not None and instance not in instances:
                    continue
                values = _reference_values(record, columns, column, f"{name}: line {number}")
                if instance in found and found[instance] != values:
                    raise InputError(f"{name}: lines {first_line[instance]} and {number} give different values for "
                                     f"one instance")
                found[instance], first_line[instance] = values, first_line.get(instance, number)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{name}: not a CSV file ({exc.__class__.__name__})") from None
    return found


def _reference_columns(header: list[str], column: str, name: str) -> dict[str, int]:
    """The profit column and every *_gap_percent column, by position; each column name must be unique."""
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise InputError(f"{name}: column {repeated[0][:60]!r} appears more than once in the header")
    for needed in ("instance", column):
        if needed not in header:
            raise InputError(f"{name}: no column {needed!r} (expected a header line with 'instance' and {column!r})")
    wanted = [column] + sorted(c for c in header if c.endswith("_gap_percent") and c != column)
    return {c: header.index(c) for c in wanted}


def _reference_values(record: list[str], columns: dict[str, int], column: str, where: str) -> dict[str, float]:
    """The row's profit (required, in (0, 1e15]) and the gap columns that hold a number (finite, |g| <= 1e15)."""
    values = {}
    for name, position in columns.items():
        text = record[position].strip()
        if not NUMBER.fullmatch(text):
            if name == column:
                raise InputError(f"{where}: {column} is not a number (expected digits, a point, an exponent)")
            continue  # a gap column may be empty or say 'n/a'
        value = float(text)
        if name == column and not 0 < value <= MAX_PROFIT:
            raise InputError(f"{where}: {column} must be a profit in (0, {MAX_PROFIT:g}], the gap divides by it")
        if abs(value) > MAX_PROFIT:
            raise InputError(f"{where}: {name} is beyond {MAX_PROFIT:g}")
        values[name] = value
    return values


def instance_files(folder: Path) -> list[Path]:
    """Plain files of a folder, sorted by name, hidden files and CSV/JSON/YAML companions left out."""
    skip = {".csv", ".json", ".yaml", ".yml", ".md"}
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")
                   and p.suffix.lower() not in skip)
    if not files:
        raise InputError(f"instances {folder}: no instance files there")
    return files


def instance_name(path: str | Path) -> str:
    """A file's name without a .txt/.dat extension; benchmark names hold dots (dev0.15_d0.5), kept whole."""
    name = Path(path).name
    return name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in (".txt", ".dat") else name


def group_of(name: str) -> str:
    match = re.match(r"RKP_([A-Z]+)_n", name)
    return match.group(1) if match else "-"


def _gap(reference: float | None, profit: float) -> float | None:
    return None if reference is None else 100 * (reference - profit) / max(abs(reference), 1e-9)


def solve_file(problem: RobustProblem, path: Path, model: ValueModel | None, reference: dict[str, float] | None,
               column: str, settings: dict[str, Any]) -> Row:
    """One instance through :func:`portfolio.solve`, as a results row."""
    instance = problem.read(path)
    result = portfolio.solve(problem, instance, model=model, **settings)
    target = None if reference is None else reference.get(column)
    published = {k: v for k, v in (reference or {}).items() if k != column}
    name = instance_name(path)
    return Row(name, problem.size(instance), group_of(name), result.profit, result.seconds, target,
               _gap(target, result.profit), result.nominal_profit, _gap(target, result.nominal_profit),
               result.source, result.status, result.bound, result.scoring_seconds, published,
               result.x.astype(int).tolist())


def solve_files(problem: RobustProblem, files: list[Path], model: ValueModel | None,
                references: dict[str, dict[str, float]] | None, column: str, settings: dict[str, Any],
                executor: ExecutorSpec | None = None, advance: Callable[[int], None] | None = None,
                log: TaskLog | None = None, resume: bool = False) -> list[Row]:
    """Every file, one task each on ``executor`` (default: here, one at a time), rows in file order."""
    tasks = [(solvers.backend(), problem, path, model, None if references is None else
              references.get(instance_name(path)), column, settings) for path in files]
    return run_tasks(_solve_task, tasks, executor=executor or ExecutorSpec("local", workers=1),
                     names=[f"instance {path.name}" for path in files], advance=advance, log=log, resume=resume)


def _solve_task(backend: str, *arguments) -> Row:
    solvers.use(backend)
    return solve_file(*arguments)


def row_from_json(data: dict) -> Row:
    return Row(**data)


CSV_COLUMNS = ("instance", "n", "group", "profit", "seconds", "reference", "gap_percent", "nominal_profit",
               "nominal_gap_percent", "source", "status", "bound", "scoring_seconds")


def results_csv(rows: list[Row]) -> str:
    def text(value) -> str:
        return "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)

    lines = [",".join(CSV_COLUMNS)]
    lines += [",".join(text(asdict(row)[name]) for name in CSV_COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def summary(rows: list[Row]) -> list[dict]:
    """Per n, per group and overall: count, mean/median/max gap, nominal's mean gap, each published column's mean
    gap, median and max seconds."""
    published = sorted({k for row in rows for k in row.published})
    buckets: dict[str, list[Row]] = {f"n = {n}": [r for r in rows if r.n == n] for n in sorted({r.n for r in rows})}
    order = {name: i for i, name in enumerate(("UN", "WC", "ASC", "SC"))}
    for group in sorted({r.group for r in rows} - {"-"}, key=lambda g: (order.get(g, len(order)), g)):
        buckets[group] = [r for r in rows if r.group == group]
    buckets["all"] = rows
    out = []
    for label, members in buckets.items():
        gaps = [r.gap_percent for r in members if r.gap_percent is not None]
        entry = {"group": label, "instances": len(members),
                 "gap_mean": float(np.mean(gaps)) if gaps else None,
                 "gap_median": float(np.median(gaps)) if gaps else None,
                 "gap_max": float(np.max(gaps)) if gaps else None,
                 "nominal_gap_mean": float(np.mean([r.nominal_gap_percent for r in members
                                                    if r.nominal_gap_percent is not None])) if gaps else None,
                 "seconds_median": float(np.median([r.seconds for r in members])),
                 "seconds_max": float(np.max([r.seconds for r in members]))}
        for name in published:
            values = [r.published[name] for r in members if name in r.published]
            entry[name + "_mean"] = float(np.mean(values)) if values else None
        out.append(entry)
    return out
