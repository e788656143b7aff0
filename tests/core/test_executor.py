"""The executor: --executor parsing, results in task order from worker processes, failures naming their task, a
dying worker retried, and the task log that lets a stopped run resume."""

import os
import sys
import types
from pathlib import Path

import pytest

from nmkit.core import executor
from nmkit.core.errors import InputError, RunError
from nmkit.core.executor import ExecutorSpec, TaskLog, parse, run_tasks


def square(x: int) -> int:
    return x * x


def pid_and_threads(_: int) -> tuple[int, str | None]:
    return os.getpid(), os.environ.get("OMP_NUM_THREADS")


def refuses(x: int) -> int:
    if x == 2:
        raise InputError("value 2 is not allowed")
    return x


def crashes(x: int) -> int:
    return [x][x]  # an IndexError for x > 0: a bug, not bad input


def always_dies(_: int) -> int:
    os._exit(3)


@pytest.mark.parametrize(("text", "spec"), [
    ("local", ExecutorSpec("local")),
    ("local:3", ExecutorSpec("local", workers=3)),
    ("dask://127.0.0.1:8786", ExecutorSpec("dask", address="tcp://127.0.0.1:8786")),
    ("dask://scheduler.cluster.org:9000", ExecutorSpec("dask", address="tcp://scheduler.cluster.org:9000")),
])
def test_executor_texts(text, spec):
    assert parse(text) == spec


def test_scheduler_files_and_the_environment(monkeypatch, tmp_path):
    assert parse(f"dask-scheduler-file:{tmp_path}/s.json") == ExecutorSpec("dask", scheduler_file=tmp_path / "s.json")
    monkeypatch.setenv("NMKIT_EXECUTOR", "local:2")
    assert parse(None) == ExecutorSpec("local", workers=2)
    assert parse("local:1") == ExecutorSpec("local", workers=1)  # the field wins over the environment


@pytest.mark.parametrize("text", ["remote", "local:0", "local:x", "dask://host", "dask://:80", "dask-scheduler-file:",
                                  "tcp://127.0.0.1:8786"])
def test_malformed_executors_are_refused(text):
    with pytest.raises(InputError, match="^field 'executor': "):
        parse(text)


def test_local_workers_return_results_in_task_order_with_a_share_of_the_threads():
    tasks = [(i,) for i in range(7)]
    assert run_tasks(square, tasks, executor=ExecutorSpec("local", workers=2)) == [i * i for i in range(7)]
    seen = run_tasks(pid_and_threads, tasks, executor=ExecutorSpec("local", workers=2))
    assert len({pid for pid, _ in seen}) == 2 and os.getpid() not in {pid for pid, _ in seen}
    assert {threads for _, threads in seen} == {str(max(1, executor.threads.thread_budget() // 2))}
    assert run_tasks(pid_and_threads, tasks, executor=ExecutorSpec("local", workers=1))[0][0] == os.getpid()


@pytest.mark.parametrize("workers", [1, 2])
def test_failures_name_their_task_and_keep_their_exit_code(workers):
    spec = ExecutorSpec("local", workers=workers)
    with pytest.raises(InputError, match="^pattern c: value 2 is not allowed$") as bad:
        run_tasks(refuses, [(0,), (1,), (2,)], executor=spec, names=["pattern a", "pattern b", "pattern c"])
    assert bad.value.exit_code == 2
    with pytest.raises(RunError, match="^task 1: internal error: IndexError") as bug:
        run_tasks(crashes, [(0,), (1,)], executor=spec)
    assert bug.value.exit_code == 1


def test_a_worker_that_dies_costs_a_retry_not_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv(executor.DIES_ONCE, str(tmp_path / "died"))
    assert run_tasks(square, [(i,) for i in range(6)], executor=ExecutorSpec("local", workers=2)) == \
        [i * i for i in range(6)]
    assert (tmp_path / "died").exists()


def test_a_task_that_kills_every_worker_ends_the_run():
    with pytest.raises(RunError, match=f"task 0: its worker died {executor.RETRIES + 1} times"):
        run_tasks(always_dies, [(0,), (1,)], executor=ExecutorSpec("local", workers=2))


def _log(tmp_path, key=None) -> TaskLog:
    return TaskLog(tmp_path / "tasks.jsonl", key or {"batch": 1}, lambda r: r, lambda r: r)


def test_the_log_resumes_only_what_is_not_done(tmp_path):
    log = _log(tmp_path)
    calls = []
    assert run_tasks(lambda x: calls.append(x) or x * 10, [(i,) for i in range(4)], executor=ExecutorSpec(
        "local", workers=1), log=log) == [0, 10, 20, 30]
    with open(log.path, "a") as handle:
        handle.write('{"task": 9, "resu')  # a killed driver's torn line
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join([lines[0], lines[2], lines[4], lines[5]]) + "\n")  # tasks 1 and 3 done
    calls.clear()
    assert run_tasks(lambda x: calls.append(x) or x * 10, [(i,) for i in range(4)], executor=ExecutorSpec(
        "local", workers=1), log=log, resume=True) == [0, 10, 20, 30]
    assert calls == [0, 2]
    assert [line for line in log.path.read_text().splitlines()][1:] == \
        [f'{{"task": {i}, "result": {i * 10}}}' for i in range(4)]  # rewritten in task order
    with pytest.raises(InputError, match="written for another batch"):
        _log(tmp_path, {"batch": 2}).done()


def test_dask_needs_its_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(InputError, match=r"pip install 'nmkit\[dask\]'"):
        executor.connect(parse("dask://127.0.0.1:1"))


def test_workers_with_another_nmkit_are_refused(monkeypatch):
    class Client:
        def __init__(self, *args, **kwargs):
            pass

        def run(self, function):
            return {"tcp://10.0.0.5:4000": "0.0.1"}

        def close(self):
            pass

    monkeypatch.setitem(sys.modules, "distributed", types.SimpleNamespace(Client=Client))
    with pytest.raises(InputError, match=r"worker tcp://10.0.0.5:4000 runs nmkit 0.0.1; every worker needs nmkit"):
        executor.connect(parse("dask://127.0.0.1:1"))


def sleepy_pid(seconds: float) -> int:
    import time

    time.sleep(seconds)
    return os.getpid()


def test_plain_local_moves_to_workers_only_when_they_pay(monkeypatch):
    monkeypatch.setattr(executor.threads, "thread_budget", lambda requested=None: 2)
    quick = run_tasks(pid_and_threads, [(i,) for i in range(7)], executor=ExecutorSpec("local"))
    assert {pid for pid, _ in quick} == {os.getpid()}  # a worker's start would cost more than the tasks
    monkeypatch.setattr(executor, "WORKER_START_SECONDS", 0.05)
    slow = run_tasks(sleepy_pid, [(0.3,)] * 4, executor=ExecutorSpec("local"))
    assert slow[0] == os.getpid() and os.getpid() not in slow[1:]


def test_a_file_that_is_not_a_scheduler_file_is_named(tmp_path):
    pytest.importorskip("distributed")
    (tmp_path / "notes.txt").write_text("root:SECRET\n")
    with pytest.raises(InputError, match="notes.txt: not a Dask scheduler file$") as refused:
        executor.connect(parse(f"dask-scheduler-file:{tmp_path / 'notes.txt'}"))
    assert "SECRET" not in str(refused.value)


def record_pid_and_wait(folder: str, seconds: float) -> None:
    import time
    from pathlib import Path

    (Path(folder) / str(os.getpid())).touch()
    time.sleep(seconds)


def fail_fast_or_wait(seconds: float) -> float:
    import time

    if seconds == 0:
        raise InputError("bad input in this task")
    time.sleep(seconds)
    return seconds


def test_a_failing_task_stops_the_other_workers_at_once():
    import time

    start = time.perf_counter()
    with pytest.raises(InputError, match="task 0: bad input"):
        run_tasks(fail_fast_or_wait, [(0,), (30,), (30,), (30,)], executor=ExecutorSpec("local", workers=2))
    assert time.perf_counter() - start < 15  # not the 30-60 s the queued tasks would take


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except FileNotFoundError:
        return False


def test_workers_end_when_their_driver_is_killed(tmp_path):
    import signal
    import subprocess
    import time

    script = ("from tests.core.test_executor import record_pid_and_wait; from nmkit.core.executor import "
              f"ExecutorSpec, run_tasks; run_tasks(record_pid_and_wait, [({str(tmp_path)!r}, 60)] * 4, "
              "executor=ExecutorSpec('local', workers=2))")
    driver = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.iterdir())) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [int(p.name) for p in tmp_path.iterdir()]
        assert len(workers) == 2
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=20)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
