"""One executor for every batch of independent tasks (instances, second-stage data, patterns, shards, sweep levels).

``--executor`` (a recipe field too, default ``NMKIT_EXECUTOR``, else ``local``) names where tasks run:

* ``local``: worker processes on this machine, as many as the thread budget (``local:N``: N of them); the
  processes split the budget (:func:`nmkit.core.threads.worker_environment`); one worker runs tasks in-process.
  Plain ``local`` starts with the tasks in this process and moves the rest to workers once they would finish
  sooner there (a worker's start costs seconds), so small batches do not pay for processes.
* ``dask://HOST:PORT`` or ``dask-scheduler-file:PATH``: an existing Dask distributed cluster, reached through its
  ``concurrent.futures`` interface (``Client(...).get_executor()``); needs the ``nmkit[dask]`` extra here and
  the same nmkit version on every worker (checked before anything is submitted).

A capability submits a module-level function and one small tuple of arguments per task; results come back in
task order whatever finished first. Each task runs with its worker's share of the threads (torch and numba are
sized on the worker: Dask's nanny sets only the OpenMP/BLAS variables). A worker that dies mid-task (killed, out
of memory) costs a retry: the task runs again on a fresh worker (locally) or elsewhere (Dask reschedules it). A
task that fails on bad input ends the run with exit 2 naming it, one that fails otherwise with exit 1.

With a :class:`TaskLog`, each finished task's result is appended to a file in the run's folder as it arrives,
so a run resumed after a lost driver (Ctrl-C, SIGTERM, SIGKILL) submits only what is not done.
"""

from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmkit.core import threads
from nmkit.core.errors import InputError, NmkitError, RunError, reason

DASK_EXTRA = "nmkit[dask]"
RETRIES = 2
"""Extra attempts a task gets after its worker died (local workers; Dask counts its own, allowed-failures)."""
USAGE = "expected local, local:N, dask://HOST:PORT or dask-scheduler-file:PATH"
WORKER_START_SECONDS = 2.5
"""What a spawned worker costs before its first task (a Python start and nmkit's imports, torch's ~1.5 s
included), measured on the 2-core development machine; plain ``local`` uses workers only where they repay it."""
DIES_ONCE = "NMKIT_TEST_WORKER_DIES_ONCE"
"""Fault injection for tests: a file path; the first worker task that finds no file there creates it and ends its
process at once (as a killed or out-of-memory worker does)."""


@dataclass(frozen=True)
class ExecutorSpec:
    kind: str  # local | dask
    workers: int | None = None  # local: processes (None: the thread budget)
    address: str | None = None  # dask: tcp://HOST:PORT
    scheduler_file: Path | None = None  # dask: the scheduler's JSON file

    def describe(self) -> str:
        if self.kind == "local":
            return f"local:{self.local_workers()}"
        return f"dask {self.address or self.scheduler_file}"

    def local_workers(self) -> int:
        return self.workers if self.workers is not None else threads.thread_budget()


def parse(text: str | None, field: str = "executor") -> ExecutorSpec:
    """``--executor`` text (None: ``NMKIT_EXECUTOR``, else local) as a spec; exit 2 naming ``field`` if malformed."""
    text = (text or os.environ.get("NMKIT_EXECUTOR") or "local").strip()
    if text == "local":
        return ExecutorSpec("local")
    if match := re.fullmatch(r"local:(\d{1,4})", text):
        if int(match.group(1)) < 1:
            raise InputError(f"field '{field}': local:N needs N >= 1, found {text[:60]!r}")
        return ExecutorSpec("local", workers=int(match.group(1)))
    if match := re.fullmatch(r"dask://([\w.\-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})", text):
        return ExecutorSpec("dask", address=f"tcp://{match.group(1)}:{match.group(2)}")
    if text.startswith("dask-scheduler-file:") and len(text) > len("dask-scheduler-file:"):
        return ExecutorSpec("dask", scheduler_file=Path(text.removeprefix("dask-scheduler-file:")).expanduser())
    raise InputError(f"field '{field}': {USAGE}, found {text[:60]!r}")


class TaskLog:
    """Finished tasks' results, one JSON line each (``{"task": i, "result": ...}``), appended and flushed as they
    arrive; ``key`` identifies the batch (its settings), so a log written for another batch is refused. A torn
    last line (the driver killed mid-write) is ignored on reading."""

    def __init__(self, path: Path, key: dict, encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> None:
        self.path, self.key, self.encode, self.decode = Path(path), key, encode, decode

    def done(self) -> dict[int, Any]:
        """The results already logged (task index -> result); {} when there is no log."""
        if not self.path.exists():
            return {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        try:
            header = json.loads(lines[0]) if lines else None
        except ValueError:
            header = None
        if header != {"batch": self.key}:
            raise InputError(f"resume {self.path}: written for another batch (other inputs or settings); run "
                             f"without --resume to start over")
        found = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                found[int(entry["task"])] = self.decode(entry["result"])
            except Exception:  # noqa: BLE001, S112 - a torn or damaged line (a killed run): that task runs again
                continue
        return found

    def start(self, resume: bool) -> dict[int, Any]:
        """The results to keep (resume) or {} after starting a fresh log."""
        if resume:
            found = self.done()
            if found or self.path.exists():
                return found
        from nmkit.core import io

        io.write_text(self.path, json.dumps({"batch": self.key}) + "\n")
        return {}

    def finish(self, results: list[Any]) -> None:
        """Rewrite the log in task order (it was written in the order tasks finished), so a finished batch's
        log is the same file wherever its tasks ran."""
        from nmkit.core import io

        lines = [json.dumps({"batch": self.key})]
        lines += [json.dumps({"task": i, "result": self.encode(r)}, allow_nan=True) for i, r in enumerate(results)]
        io.write_text(self.path, "\n".join(lines) + "\n")

    def add(self, index: int, result: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"task": index, "result": self.encode(result)}, allow_nan=True) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def run_tasks(function: Callable[..., Any], tasks: Sequence[tuple], *, executor: ExecutorSpec,
              names: Sequence[str] | None = None, advance: Callable[[int], None] | None = None,
              log: TaskLog | None = None, resume: bool = False) -> list[Any]:
    """``function(*task)`` for every task, results in task order. ``names`` label tasks in errors (default
    ``task i``); ``advance(1)`` as each ends; ``log``: results appended as they arrive (and, with ``resume``,
    tasks already logged are not run again)."""
    names = list(names) if names is not None else [f"task {i}" for i in range(len(tasks))]
    client = connect(executor) if executor.kind == "dask" else None  # a bad address fails before anything is written
    try:
        return _run(function, tasks, names, executor, client, advance, log, resume)
    finally:
        if client is not None:
            client.close()


def _run(function, tasks, names, executor: ExecutorSpec, client, advance, log: TaskLog | None,
         resume: bool) -> list[Any]:
    results = log.start(resume) if log is not None else {}
    pending = [i for i in range(len(tasks)) if i not in results]
    if advance is not None and len(results):
        advance(len(results))

    def finished(index: int, value: Any) -> None:
        results[index] = value
        if log is not None:
            log.add(index, value)
        if advance is not None:
            advance(1)

    workers = executor.local_workers() if client is None else 0
    if client is not None:
        _run_dask(function, tasks, pending, names, client, finished)
    elif workers <= 1 or len(pending) <= 1:
        for index in pending:
            finished(index, _task(function, tasks[index], names[index]))
    else:
        if executor.workers is None:  # plain local: worker processes only where they pay for starting
            pending = _here_while_cheap(function, tasks, pending, names, workers, finished)
        if pending:
            _run_local(function, tasks, pending, names, workers, finished)
    ordered = [results[i] for i in range(len(tasks))]
    if log is not None:
        log.finish(ordered)
    return ordered


def _task(function: Callable[..., Any], arguments: tuple, name: str, worker: bool = False) -> Any:
    """One task (on a ``worker``: with that worker's share of the threads); failures name the task."""
    if worker:
        _die_once_if_asked()
        threads.configure()
    try:
        return function(*arguments)
    except NmkitError as exc:
        exc.args = (f"{name}: {exc}",)
        raise
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - a bug in a task: exit 1 naming it, not a worker's traceback
        raise RunError(f"{name}: internal error: {type(exc).__name__}: {reason(exc)}") from None


def _here_while_cheap(function, tasks, pending, names, workers, finished) -> list[int]:
    """Run tasks in this process while the rest would finish sooner here than on ``workers`` new processes,
    each of which first pays :data:`WORKER_START_SECONDS`; the tasks left for the workers."""
    start = time.perf_counter()
    for done, index in enumerate(pending, 1):
        finished(index, _task(function, tasks[index], names[index]))
        remaining = len(pending) - done
        rest_here = (time.perf_counter() - start) / done * remaining
        if rest_here > WORKER_START_SECONDS + rest_here / min(workers, remaining or 1):
            return pending[done:]
    return []


def _die_once_if_asked() -> None:
    marker = os.environ.get(DIES_ONCE)
    if marker:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(70)


def _run_local(function, tasks, pending, names, workers, finished) -> None:
    """Spawned processes (no fork after torch has started its threads); a pool broken by a dead worker is
    replaced and its unfinished tasks resubmitted, each at most ``RETRIES`` more times. A run that stops (a failed
    task, Ctrl-C, SIGTERM) stops its workers at once; workers whose driver died (SIGKILL) end themselves."""
    attempts = dict.fromkeys(pending, 0)
    context = multiprocessing.get_context("spawn")
    while pending:
        size = min(workers, len(pending))
        broken = []
        with threads.worker_environment(size):  # workers start on the first submissions and inherit their share
            pool = concurrent.futures.ProcessPoolExecutor(size, mp_context=context, initializer=_end_with_driver,
                                                          initargs=(os.getpid(),))
            try:
                futures = {pool.submit(_task, function, tasks[i], names[i], True): i for i in pending}
                for future in concurrent.futures.as_completed(futures):
                    index = futures[future]
                    try:
                        finished(index, future.result())
                    except BrokenProcessPool:
                        broken.append(index)
            except BaseException:
                _stop(pool)
                raise
        pool.shutdown(wait=True)
        for index in broken:
            attempts[index] += 1
            if attempts[index] > RETRIES:
                raise RunError(f"{names[index]}: its worker died {attempts[index]} times (killed, or out of memory)")
        pending = sorted(broken)


def _stop(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (shutdown alone would wait for every queued task)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


def _end_with_driver(driver: int) -> None:
    """In each worker: exit when the driver process is gone (a worker blocked on the task queue never would)."""
    import threading

    def watch() -> None:
        while os.getppid() == driver:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _run_dask(function, tasks, pending, names, client, finished) -> None:
    pool = client.get_executor(pure=False)
    futures = {pool.submit(_task, function, tasks[i], names[i], True): i for i in pending}
    for future in concurrent.futures.as_completed(futures):
        index = futures[future]
        try:
            value = future.result()
        except NmkitError:
            raise
        except Exception as exc:  # noqa: BLE001 - KilledWorker, lost connections: Dask's own failures
            raise RunError(f"{names[index]}: failed on the Dask cluster ({type(exc).__name__}: "
                           f"{reason(exc)})") from None
        finished(index, value)


def capacity(executor: ExecutorSpec) -> int:
    """How many tasks can run at once: the local workers, or the threads of the Dask cluster's workers (for
    batches that cut their work into tasks, since every task repeats some work such as reading a text)."""
    if executor.kind == "local":  # the CPUs, not the idle ones: a batch's split must not depend on the load
        return executor.workers or threads.available_cpus()
    client = connect(executor)
    try:
        return max(1, sum(client.nthreads().values()))
    finally:
        client.close()


def connect(executor: ExecutorSpec):
    """A Dask client for the spec, after checking that every worker runs this nmkit version."""
    try:
        from distributed import Client
    except ImportError:
        raise InputError(f"executor {executor.describe()}: needs Dask distributed (pip install '{DASK_EXTRA}')") \
            from None
    import nmkit

    if executor.scheduler_file is not None and not executor.scheduler_file.is_file():
        raise InputError(f"executor: scheduler file {executor.scheduler_file} does not exist")
    try:
        client = Client(executor.address, timeout=10) if executor.address else \
            Client(scheduler_file=str(executor.scheduler_file), timeout=10)
    except Exception as exc:  # noqa: BLE001 - distributed raises many kinds (timeouts, a scheduler file that is not one)
        what = "not a Dask scheduler file" if executor.scheduler_file is not None and not isinstance(
            exc, OSError | TimeoutError) else f"cannot reach the scheduler ({reason(exc)})"
        raise InputError(f"executor {executor.describe()}: {what}") from None
    try:
        versions = client.run(_nmkit_version)
    except Exception as exc:  # noqa: BLE001 - a worker without nmkit fails to import this module
        client.close()
        raise InputError(f"executor {executor.describe()}: a worker cannot run nmkit ({reason(exc)}); install "
                         f"nmkit {nmkit.__version__} on every worker") from None
    wrong = {worker: v for worker, v in versions.items() if v != nmkit.__version__}
    if not versions or wrong:
        client.close()
        detail = "has no workers" if not versions else \
            f"worker {next(iter(wrong))} runs nmkit {next(iter(wrong.values()))}"
        raise InputError(f"executor {executor.describe()}: {detail}; every worker needs nmkit {nmkit.__version__}")
    return client


def _nmkit_version() -> str:
    import nmkit

    return nmkit.__version__
