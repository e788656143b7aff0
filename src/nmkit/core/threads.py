"""One thread policy for every pool nmkit touches: torch's intra-op pool, numba, OpenMP and BLAS under numpy and
scipy.

How many threads (the budget), first rule that applies:
1. ``OMP_NUM_THREADS`` when the user set it (a pool's own variable, e.g. ``NUMBA_NUM_THREADS``, still wins for
   that pool);
2. ``--threads N`` on the command line, then ``NMKIT_THREADS``;
3. the CPUs in this process's affinity mask (``os.sched_getaffinity``: a ``taskset``, cgroup cpuset or CI runner
   limit counts, the machine's core count does not) that other runnable tasks leave free, read once at start
   (:func:`idle_cpus`); divided among the processes of one torchrun job.

The pools read their variables when they start, so :func:`configure` runs before numpy, torch or numba is
imported (the CLI does it first thing in every command); it sets only variables the user left unset, and also
resizes torch and numba if a library caller imported them earlier. Idle OpenMP workers spin only briefly before
they sleep (``GOMP_SPINCOUNT``, unless the user set ``OMP_WAIT_POLICY``). Worker processes share the budget
(:func:`worker_environment`) instead of each taking all of it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

POOL_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# GNU OpenMP (torch's and numba's pools): an idle worker spins ~10k iterations (tens of microseconds), then sleeps.
# libgomp's default spins 300k (with OMP_WAIT_POLICY unset); PASSIVE (no spin) cost train-snn ~25% on a quiet machine.
SPIN_COUNT = "10000"


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _other_runnable_tasks() -> float:
    """Tasks the kernel has runnable besides this one (``/proc/loadavg``, the 4th field), scaled to this process's
    share of the machine when the affinity mask holds fewer CPUs than the machine; 0 where unknown."""
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            running = int(handle.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(running - 1, 0) * available_cpus() / (os.cpu_count() or available_cpus())


def idle_cpus() -> int:
    """CPUs in the affinity mask that other runnable tasks are not already using (at least one), like OpenMP's
    OMP_DYNAMIC: beside busy jobs a parallel region waits on preempted workers, and one thread per free CPU is
    faster (benchmarks/concurrency.py)."""
    cpus = available_cpus()
    return max(1, min(cpus, cpus - int(_other_runnable_tasks())))


def _positive(value: str | None, name: str) -> int | None:
    if value is None or value.strip() == "":
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        from nmkit.core.errors import InputError

        raise InputError(f"{name}: expected a positive whole number of threads, found {value[:40]!r}")
    return count


_written: dict[str, str] = {}  # what configure() set, to tell the user's own settings from ours


def _user_setting(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or _written.get(name) == value else value


def thread_budget(requested: int | None = None) -> int:
    """The number of threads a run may use, by the rules in the module docstring."""
    from_env = _positive(_user_setting("OMP_NUM_THREADS"), "OMP_NUM_THREADS")
    if from_env is not None:
        return from_env
    if requested is not None:
        return _positive(str(requested), "--threads")
    from_nmkit = _positive(os.environ.get("NMKIT_THREADS"), "NMKIT_THREADS")
    if from_nmkit is not None:
        return from_nmkit
    processes = _positive(os.environ.get("LOCAL_WORLD_SIZE"), "LOCAL_WORLD_SIZE") or 1  # set by torchrun
    if processes > 1:  # the other processes of the job are the busy tasks here
        return max(1, available_cpus() // processes)
    return idle_cpus()


def configure(requested: int | None = None) -> int:
    """Apply the policy to this process; returns the budget. Call before the heavy imports where possible."""
    budget = thread_budget(requested)
    numba = sys.modules.get("numba")
    settings = {name: str(budget) for name in POOL_VARIABLES}
    if numba is not None:  # numba re-reads its variable on every compilation and refuses a change once launched
        del settings["NUMBA_NUM_THREADS"]
    if _user_setting("OMP_WAIT_POLICY") is None:  # the user's wait policy is theirs to keep
        settings["GOMP_SPINCOUNT"] = SPIN_COUNT
    for name, value in settings.items():
        if _user_setting(name) is None:
            os.environ[name] = _written[name] = value
    if "torch" in sys.modules:  # imported earlier (a library caller, or an earlier run in this process): resize
        sys.modules["torch"].set_num_threads(budget)
    if numba is not None:  # the pool keeps its size; use at most the budget of it
        numba.set_num_threads(min(budget, numba.config.NUMBA_NUM_THREADS))
    return budget


def worker_share(workers: int) -> int:
    """Threads for each of ``workers`` processes that split the budget (at least one each)."""
    return max(1, thread_budget() // max(workers, 1))


@contextlib.contextmanager
def worker_environment(workers: int) -> Iterator[int]:
    """Processes started inside inherit every pool variable set to their share of the budget (yielded), so that
    ``workers`` processes together use the budget instead of each taking all of it; restored on exit."""
    share = worker_share(workers)
    names = [n for n in POOL_VARIABLES if not (n == "NUMBA_NUM_THREADS" and "numba" in sys.modules)]  # see configure
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({name: str(share) for name in names})
    try:
        yield share
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
