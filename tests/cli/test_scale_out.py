"""Batches beyond one process, for real (issue 30): a Dask scheduler and two workers started here on 127.0.0.1,
``nmkit`` run as a subprocess against them and against local workers; the written results must be identical,
also when a worker dies mid-task, and a run whose driver is killed resumes where it stopped. Every process
started here is stopped here; every wait has a time limit. Without Dask distributed these tests are skipped."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nmkit.core.executor import DIES_ONCE

pytest.importorskip("distributed")
DASK = Path(sys.executable).parent / "dask"
TRAIN = ["robust-opt", "train", "--sample", "4", "--set", "n_range=[6,9]", "--set", "decisions=3", "--set",
         "scenarios=3", "--set", "epochs=3", "--set", "evaluate=1"]


def nmkit(*args, timeout: float = 240, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nmkit", *map(str, args), "-q"], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "NMKIT_THREADS": "1", **(env or {})})


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler (random loopback port, scheduler file) and 2 single-threaded workers whose first task dies once."""
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    env = {**os.environ, DIES_ONCE: str(folder / "a-worker-died"), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    started = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", scheduler_file], stdout=subprocess.DEVNULL,
                                stderr=open(folder / "scheduler.log", "w"), env=env, start_new_session=True)]
    try:
        _wait_for(scheduler_file.exists, 60, "the Dask scheduler did not start")
        started.append(subprocess.Popen([DASK, "worker", "--scheduler-file", scheduler_file, "--nworkers", "2",
                                         "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                        stdout=subprocess.DEVNULL, stderr=open(folder / "workers.log", "w"), env=env,
                                        start_new_session=True))
        _wait_for(lambda: len(json.loads(scheduler_file.read_text()).get("address", "")) and
                  (folder / "workers.log").read_text().count("Registered to") >= 2, 90, "Dask workers did not start")
        yield {"file": scheduler_file, "address": json.loads(scheduler_file.read_text())["address"],
               "died": folder / "a-worker-died"}
    finally:
        for process in reversed(started):  # the whole session: workers' nannies and their worker processes
            os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


def _dask(cluster) -> str:
    return "dask://" + cluster["address"].removeprefix("tcp://")


def _same_files(*folders: Path, names=("model.pt", "tasks.jsonl")) -> None:
    for name in names:
        contents = {(folder / name).read_bytes() for folder in folders}
        assert len(contents) == 1, f"{name} differs between {[f.name for f in folders]}"


def test_a_worker_dying_mid_task_costs_a_retry_and_data_collection_matches_local_runs(cluster, tmp_path):
    """Runs first in this module: the cluster's first task kills its worker (os._exit), Dask reruns the task."""
    assert not cluster["died"].exists()
    dask = nmkit(*TRAIN, "--executor", _dask(cluster), "--out", tmp_path / "dask")
    assert dask.returncode == 0, dask.stderr
    assert cluster["died"].exists()
    for executor in ("local:1", "local:2"):
        local = nmkit(*TRAIN, "--executor", executor, "--out", tmp_path / executor)
        assert local.returncode == 0, local.stderr
    _same_files(tmp_path / "dask", tmp_path / "local:1", tmp_path / "local:2")


def test_a_folder_of_instances_solves_alike_on_dask_and_local_workers(cluster, tmp_path):
    assert nmkit("robust-opt", "generate", "--n", "7", "--count", "4", "-o", tmp_path / "inst").returncode == 0
    rows = {}
    for name, executor in (("dask", f"dask-scheduler-file:{cluster['file']}"), ("local", "local:1")):
        solved = nmkit("robust-opt", "solve", tmp_path / "inst", "--executor", executor, "--time-limit", "60",
                       "--out", tmp_path / name)
        assert solved.returncode == 0, solved.stderr
        with open(tmp_path / name / "results.csv") as handle:
            rows[name] = [(r["instance"], r["profit"], r["status"]) for r in csv.DictReader(handle)]
    assert rows["dask"] == rows["local"] and all(status == "optimal" for _, _, status in rows["local"])


def test_a_bad_address_and_a_missing_scheduler_file_exit_2(tmp_path):
    (tmp_path / "kp.txt").write_text("2 10 1\n5 1 1 3 1\n4 1 1 3 1\n")
    unreachable = nmkit("robust-opt", "solve", tmp_path, "--executor", "dask://127.0.0.1:9", "--out",
                        tmp_path / "out", timeout=60)
    assert unreachable.returncode == 2 and "cannot reach the scheduler" in unreachable.stderr
    assert not (tmp_path / "out").exists()  # nothing was written
    missing = nmkit("robust-opt", "solve", tmp_path, "--executor", f"dask-scheduler-file:{tmp_path}/none.json")
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_a_killed_driver_resumes_where_it_stopped(tmp_path):
    assert nmkit("robust-opt", "generate", "--n", "7", "--count", "5", "-o", tmp_path / "inst").returncode == 0
    command = [sys.executable, "-m", "nmkit", "robust-opt", "solve", tmp_path / "inst", "--executor", "local:1",
               "--time-limit", "60", "--out", tmp_path / "run", "-q"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "NMKIT_THREADS": "1"})
    log = tmp_path / "run" / "tasks.jsonl"
    try:
        _wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 3, 120, "no task finished")
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=20)
    logged = {json.loads(line)["task"]: json.loads(line)["result"] for line in log.read_text().splitlines()[1:]
              if line.endswith("}")}
    assert 2 <= len(logged) < 5
    resumed = nmkit("robust-opt", "solve", tmp_path / "inst", "--executor", "local:1", "--time-limit", "60",
                    "--out", tmp_path / "run", "--resume", "--json")
    assert resumed.returncode == 0, resumed.stderr
    rows = json.loads(resumed.stdout)["result"]["instances"]
    for task, row in logged.items():
        assert rows[task] == row  # taken from the log, not solved again (same seconds to the last digit)
    fresh = nmkit("robust-opt", "solve", tmp_path / "inst", "--executor", "local:2", "--time-limit", "60", "--json")
    assert [r["profit"] for r in json.loads(fresh.stdout)["result"]["instances"]] == [r["profit"] for r in rows]


def test_many_patterns_give_the_same_files_on_dask_and_local_workers(cluster, tmp_path):
    import numpy as np

    rng = np.random.default_rng(30)
    genome = rng.choice(np.frombuffer(b"ACGT", np.uint8), 50_000)
    (tmp_path / "genome.txt").write_bytes(genome.tobytes())
    starts = rng.integers(0, len(genome) - 60, 40)
    (tmp_path / "reads.fa").write_bytes(b"".join(b">r%d\n" % i + genome[s:s + 40 + i % 3 * 10].tobytes() + b"\n"
                                                 for i, s in enumerate(starts)))
    for name, executor in (("dask", _dask(cluster)), ("local", "local:1")):
        done = nmkit("hamming", "--text-file", tmp_path / "genome.txt", "--patterns-file", tmp_path / "reads.fa",
                     "-k", "4", "--executor", executor, "--out", tmp_path / name)
        assert done.returncode == 0, done.stderr
    _same_files(tmp_path / "dask", tmp_path / "local", names=("matches.csv", "hits.csv"))
    rows = (tmp_path / "local" / "matches.csv").read_text().splitlines()[1:]
    assert len(rows) == 40 and all(row.split(",")[4] == "0" for row in rows)  # every read found exactly


def test_attack_shards_give_the_same_adversarials_on_dask_and_local_workers(cluster, tmp_path):
    for name, executor in (("dask", _dask(cluster)), ("local", "local:1")):
        done = nmkit("attack", "--count", "24", "--shard", "8", "--budget", "1x20", "--executor", executor, "--out",
                     tmp_path / name)
        assert done.returncode == 0, done.stderr
    _same_files(tmp_path / "dask", tmp_path / "local", names=("adversarial.npy", "original.npy", "examples.csv"))


def test_a_pruning_sweep_gives_the_same_models_on_dask_and_local_workers(cluster, tmp_path):
    for name, executor in (("dask", _dask(cluster)), ("local", "local:1")):
        done = nmkit("prune", "--sparsity", "0.5,0.9", "--fine-tune-epochs", "1", "--executor", executor, "--out",
                     tmp_path / name)
        assert done.returncode == 0, done.stderr
    _same_files(tmp_path / "dask", tmp_path / "local", names=("model-s0.50.pt", "model-s0.90.pt", "sweep.csv"))
