"""The thread policy: user variables first, then --threads / NMKIT_THREADS, then the affinity mask; workers share."""

import json
import os
import subprocess
import sys

import pytest

from nmkit.core import threads
from nmkit.core.errors import InputError


@pytest.fixture
def clean_env(monkeypatch):
    for name in (*threads.POOL_VARIABLES, "GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "NMKIT_THREADS", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_written", {})
    monkeypatch.setattr(threads, "available_cpus", lambda: 8)
    monkeypatch.setattr(threads, "_other_runnable_tasks", lambda: 0.0)
    return monkeypatch


def test_budget_precedence(clean_env):
    assert threads.thread_budget() == 8
    clean_env.setattr(threads, "_other_runnable_tasks", lambda: 5.0)  # five other jobs keep CPUs busy
    assert threads.thread_budget() == 3
    clean_env.setattr(threads, "_other_runnable_tasks", lambda: 40.0)
    assert threads.thread_budget() == 1
    clean_env.setenv("LOCAL_WORLD_SIZE", "4")  # torchrun: four processes on this machine share it
    assert threads.thread_budget() == 2
    clean_env.setenv("NMKIT_THREADS", "3")
    assert threads.thread_budget() == 3
    assert threads.thread_budget(5) == 5
    clean_env.setenv("OMP_NUM_THREADS", "1")
    assert threads.thread_budget(5) == 1


def test_other_runnable_tasks_reads_the_kernels_count():
    assert 0 <= threads._other_runnable_tasks() < 10_000
    assert 1 <= threads.idle_cpus() <= threads.available_cpus()


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_names_the_variable(clean_env, value):
    clean_env.setenv("NMKIT_THREADS", value)
    with pytest.raises(InputError, match="NMKIT_THREADS"):
        threads.thread_budget()


def test_configure_sets_what_the_user_left_unset_and_can_be_reapplied(clean_env):
    clean_env.setenv("NUMBA_NUM_THREADS", "1")
    assert threads.configure(4) == 4
    assert os.environ["OMP_NUM_THREADS"] == "4" and os.environ["OPENBLAS_NUM_THREADS"] == "4"
    assert os.environ["NUMBA_NUM_THREADS"] == "1"  # the user's own setting for that pool
    assert os.environ["GOMP_SPINCOUNT"] == threads.SPIN_COUNT
    assert threads.configure(2) == 2  # our own earlier value is not mistaken for the user's
    assert os.environ["OMP_NUM_THREADS"] == "2"


def test_a_users_wait_policy_is_kept(clean_env):
    clean_env.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.configure(2)
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and "GOMP_SPINCOUNT" not in os.environ


def test_worker_processes_share_the_budget_and_the_parent_is_restored(clean_env):
    threads.configure(8)
    with threads.worker_environment(3) as share:
        assert share == 2 and os.environ["OMP_NUM_THREADS"] == "2"
        child = subprocess.run([sys.executable, "-c", "import os; print(os.environ['MKL_NUM_THREADS'])"],
                               capture_output=True, text=True, check=True)
        assert child.stdout.strip() == "2"
    assert os.environ["OMP_NUM_THREADS"] == "8"


@pytest.mark.parametrize(("env", "flag", "expected"), [({}, ["--threads", "1"], 1),
                                                       ({"NMKIT_THREADS": "1"}, [], 1),
                                                       ({"OMP_NUM_THREADS": "1"}, ["--threads", "2"], 1)])
def test_a_cli_run_reports_the_threads_it_used(env, flag, expected):
    base = {k: v for k, v in os.environ.items() if k not in (*threads.POOL_VARIABLES, "NMKIT_THREADS")}
    code = ("import sys\nfrom nmkit.cli.app import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
            "import numba, torch  # the pools start now, from what the run set\n"
            "print(numba.get_num_threads(), torch.get_num_threads(), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, "hamming", "--text", "ACGTACGT", "--pattern", "ACG", "--json",
                           *flag], env={**base, **env}, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["threads"] == expected
    assert done.stderr.split()[-2:] == [str(expected), str(expected)]


def test_reconfiguring_after_numba_launched_its_pool_keeps_it_usable():
    """numba refuses a changed NUMBA_NUM_THREADS once its threads run; a later run in the same process (tests,
    library callers) must resize within the pool instead."""
    code = """
import os
from nmkit.core import threads
threads.configure(1)
from nmkit.core.hamming import simd
import numpy as np
text = np.frombuffer(b"ACGTACGTAC" * 100, np.uint8)
simd.distances(text, text[:5])
threads.configure(2)
import numba
from numba import prange
@numba.njit(parallel=True)
def total(n):
    s = 0
    for i in prange(n):
        s += i
    return s
print(total(10), numba.get_num_threads(), os.environ["NUMBA_NUM_THREADS"])
"""
    env = {k: v for k, v in os.environ.items() if k not in (*threads.POOL_VARIABLES, "NMKIT_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["45", "1", "1"]
