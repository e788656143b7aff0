"""Timing and table printing shared by the benchmarks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table


def median_seconds(run: Callable[[], object], repeats: int = 5, budget: float = 10.0) -> tuple[float, int]:
    """Median wall time of up to ``repeats`` runs after one warm-up, stopping early past ``budget`` s."""
    run()
    times: list[float] = []
    while len(times) < repeats and sum(times) < budget:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times)


def print_table(title: str, columns: list[str], rows: list[list[str]], note: str = "") -> None:
    table = Table(*columns, title=title, caption=note or None)
    for row in rows:
        table.add_row(*row)
    Console(width=200).print(table)
