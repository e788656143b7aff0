"""Worker processes for robust-opt's independent jobs (second-stage data per instance, instances of a folder)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from collections.abc import Callable
from typing import Any

from nmkit.core import threads
from nmkit.core.robust import solvers


def run_jobs(function: Callable[..., Any], jobs: list[tuple], workers: int = 1,
             advance: Callable[[int], None] | None = None) -> list[Any]:
    """``function(*job)`` for every job, in order: here when ``workers`` <= 1, else in that many spawned processes
    (no fork after torch has started its threads), each with its share of the thread budget and this process's
    MILP backend; ``advance(1)`` as each job ends."""
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for job in jobs:
            results.append(function(*job))
            if advance is not None:
                advance(1)
        return results
    context = multiprocessing.get_context("spawn")
    with threads.worker_environment(workers), concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=solvers.use, initargs=(solvers.backend(),)) as pool:
        futures = [pool.submit(function, *job) for job in jobs]
        for _ in concurrent.futures.as_completed(futures):
            if advance is not None:
                advance(1)
        return [future.result() for future in futures]
