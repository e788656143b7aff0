"""Scale-out: nmkit's batches on local worker processes and on a Dask cluster (issue 30), as whole processes.

1. robust-opt solve of a folder (default: the 28 knapsack instances in ../shared/data, 2 s each) with --executor
   local:1, local:2 and a Dask cluster of 2 single-threaded workers started here on 127.0.0.1. Goals: Dask within
   10% of local:2's wall time; both >= 1.8x local:1.
2. hamming, P patterns of length m against an n-symbol DNA text (default 10,000 x 100 against 10^7): one
   ``nmkit hamming --patterns-file`` call (k-mismatch, k = 5, and exact top-10), against one call of today's CLI
   per pattern and a NumPy script looping over the patterns (both timed on a sample and scaled to P). Goal: >= 20x
   the NumPy script; the text-scan rate (text bytes per second per core) beside NumPy's fastest pass over the text.
3. Dask's overhead against task size: tasks that take t seconds, 2 workers, against the ideal (total / 2).
4. A paper estimate for 64 workers from the measured per-task costs.
Run alone on the machine: the timings are wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import print_table

ROOT = Path(__file__).resolve().parents[1]
KNAPSACK = ROOT.parent / "shared" / "data" / "robust-knapsack" / "instances"
DASK = Path(sys.executable).parent / "dask"


def nmkit(*args, env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nmkit", *map(str, args), "-q"], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise RuntimeError(f"nmkit {' '.join(map(str, args))[:200]}: {done.stderr[-500:]}")
    return time.perf_counter() - start, done


class Cluster:
    """A Dask scheduler and ``workers`` single-threaded workers on 127.0.0.1, stopped on exit."""

    def __init__(self, folder: Path, workers: int = 2) -> None:
        self.folder, self.workers, self.processes = folder, workers, []

    def __enter__(self) -> Cluster:
        scheduler_file = self.folder / "scheduler.json"
        quiet = {"stdout": subprocess.DEVNULL, "start_new_session": True}
        self.processes.append(subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                                "--no-dashboard", "--scheduler-file", scheduler_file],
                                               stderr=subprocess.DEVNULL, **quiet))
        _wait(scheduler_file.exists, 60)
        log = open(self.folder / "workers.log", "w")  # noqa: SIM115 - closed with the processes
        self.processes.append(subprocess.Popen([DASK, "worker", "--scheduler-file", scheduler_file, "--nworkers",
                                                str(self.workers), "--nthreads", "1", "--no-dashboard", "--host",
                                                "127.0.0.1"], stderr=log, **quiet))
        _wait(lambda: (self.folder / "workers.log").read_text().count("Registered to") >= self.workers, 90)
        self.address = "dask://" + json.loads(scheduler_file.read_text())["address"].removeprefix("tcp://")
        return self

    def __exit__(self, *exc) -> None:
        for process in reversed(self.processes):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def _wait(condition, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the Dask cluster did not start")
        time.sleep(0.2)


def robust_opt(folder: Path, instances: Path, time_limit: float, cluster: Cluster) -> dict:
    walls = {}
    for name, executor in (("local:1", "local:1"), ("local:2", "local:2"), ("dask, 2 workers", cluster.address)):
        walls[name], _ = nmkit("robust-opt", "solve", instances, "--time-limit", time_limit, "--executor", executor,
                               "--out", folder / name.replace(" ", "").replace(",", "-"))
    count = len([p for p in instances.iterdir() if p.is_file()])
    rows = [[name, str(count), f"{wall:.1f}", f"{walls['local:1'] / wall:.2f}x",
             f"{(wall - walls['local:2']) / count * 2:+.2f}" if name.startswith("dask") else ""]
            for name, wall in walls.items()]
    print_table(f"robust-opt solve: {count} instances, {time_limit:g} s limit each, whole processes",
                ["executor", "instances", "wall s", "vs local:1", "Dask overhead per task s (vs local:2)"], rows,
                "goals: Dask within 10% of local:2; local:2 and Dask >= 1.8x local:1")
    return {"walls": walls, "instances": count,
            "dask_vs_local2": walls["dask, 2 workers"] / walls["local:2"],
            "speedup_local2": walls["local:1"] / walls["local:2"],
            "speedup_dask": walls["local:1"] / walls["dask, 2 workers"],
            "seconds_per_instance": walls["local:1"] / count}


def _numpy_script_seconds(text: np.ndarray, reads: list[np.ndarray], top: int = 10) -> float:
    """What a NumPy user writes: m shifted compares per pattern, then the top alignments."""
    start = time.perf_counter()
    for read in reads:
        n, m = len(text), len(read)
        mismatches = np.zeros(n - m + 1, np.int32)
        for j in range(m):
            mismatches += text[j:n - m + 1 + j] != read[j]
        np.argpartition(mismatches, top)[:top]
    return time.perf_counter() - start


def hamming(folder: Path, n: int, count: int, m: int, k: int, sample: int, cluster: Cluster | None) -> dict:
    rng = np.random.default_rng(0)
    text = rng.choice(np.frombuffer(b"ACGT", np.uint8), n)
    (folder / "genome.txt").write_bytes(text.tobytes())
    starts = rng.integers(0, n - m, count)
    reads = []
    for s in starts:
        read = text[s:s + m].copy()
        read[rng.integers(0, m, 3)] = rng.choice(np.frombuffer(b"ACGT", np.uint8), 3)
        reads.append(read)
    (folder / "reads.fa").write_bytes(b"".join(b">r%d\n" % i + r.tobytes() + b"\n" for i, r in enumerate(reads)))
    calls = {}
    for mode, flags in (("k-mismatch", ["-k", str(k)]), ("exact top-10", [])):
        wall, done = nmkit("hamming", "--text-file", folder / "genome.txt", "--patterns-file", folder / "reads.fa",
                           *flags, "--json", "--out", folder / f"batch-{mode.split()[0]}")
        calls[mode] = {"wall": wall, "tasks": json.loads(done.stdout)["result"]["tasks"]}
    if cluster is not None:
        calls["k-mismatch, dask"] = {"wall": nmkit("hamming", "--text-file", folder / "genome.txt", "--patterns-file",
                                                   folder / "reads.fa", "-k", str(k), "--executor", cluster.address)[0]}
    per_call = []
    for read in reads[:min(sample, 5)]:
        (folder / "one.txt").write_bytes(read.tobytes())
        per_call.append(nmkit("hamming", "--text-file", folder / "genome.txt", "--pattern-file", folder / "one.txt",
                              "-k", str(k))[0])
    cli = statistics.median(per_call) * count
    script = _numpy_script_seconds(text, reads[:sample]) / sample * count
    start = time.perf_counter()
    for _ in range(3):
        np.count_nonzero(text == 65)
    scan_rate = n * 3 / (time.perf_counter() - start)  # NumPy's fastest pass: one compare per byte, one core
    cores = os.cpu_count() or 1
    rows = [[f"one nmkit call, {mode}", f"{c['wall']:.1f}", f"{script / c['wall']:.1f}x", f"{cli / c['wall']:.1f}x",
             f"{n * c.get('tasks', 1) / c['wall'] / cores / 1e6:.3g}"] for mode, c in calls.items()]
    rows += [[f"{count:,} calls of today's CLI (k = {k}; {len(per_call)} timed, scaled)", f"{cli:.0f}", "", "", ""],
             [f"NumPy script, exact top-10 ({sample} timed, scaled)", f"{script:.0f}", "1.0x", "", ""],
             ["NumPy's fastest pass over the text (text == 'A'), one core", "", "", "", f"{scan_rate / 1e6:.3g}"]]
    print_table(f"hamming: {count:,} patterns of length {m} against a {n:,}-symbol DNA text, whole processes",
                ["run", "wall s", "vs NumPy script", "vs one CLI call per pattern", "text MB/s per core"], rows,
                "goal: >= 20x the NumPy script")
    return {"calls": calls, "cli_per_pattern_seconds": cli, "numpy_script_seconds": script,
            "scan_rate_per_core": scan_rate}


def overhead(sizes: list[float], tasks: int, cluster: Cluster) -> dict:
    from nmkit.core.executor import parse, run_tasks

    rows, found = [], {}
    for size in sizes:
        start = time.perf_counter()
        run_tasks(time.sleep, [(size,)] * tasks, executor=parse(cluster.address))  # importable on every worker
        wall = time.perf_counter() - start
        ideal = size * tasks / cluster.workers
        found[size] = (wall - ideal) / ideal
        rows.append([f"{size:g}", str(tasks), f"{wall:.2f}", f"{ideal:.2f}", f"{100 * found[size]:.1f}%"])
    print_table("Dask overhead against task size (2 workers, tasks that wait t seconds)",
                ["task s", "tasks", "wall s", "ideal s", "overhead"], rows,
                "overhead = wall / (tasks x size / workers) - 1, connection and version check included")
    under = [s for s, o in found.items() if o < 0.05]
    return {"overhead": found, "smallest_task_under_5_percent": min(under) if under else None}


def collection(folder: Path) -> dict:
    """Seconds per second-stage solve of robust-opt train's data collection (one worker, knapsacks of n 20-80)."""
    _, done = nmkit("robust-opt", "train", "--sample", "4", "--set", "n_range=[20,80]", "--set", "decisions=5",
                    "--set", "scenarios=10",
                    "--set", "epochs=1", "--set", "evaluate=0", "--executor", "local:1", "--json", "--out",
                    folder / "train")
    result = json.loads(done.stdout)["result"]
    return {"solves": result["second_stage_solves"], "seconds": result["data_seconds"],
            "seconds_per_solve": result["data_seconds"] / result["second_stage_solves"]}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=Path, default=KNAPSACK)
    parser.add_argument("--time-limit", type=float, default=2.0)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--patterns", type=int, default=10_000)
    parser.add_argument("--m", type=int, default=100)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--sample", type=int, default=20, help="patterns timed for the per-pattern baselines")
    parser.add_argument("--task-sizes", type=float, nargs="+", default=[0.05, 0.2, 1.0, 4.0])
    parser.add_argument("--tasks", type=int, default=8)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temp, Cluster(Path(temp)) as cluster:
        folder = Path(temp)
        result = {"robust_opt": robust_opt(folder, args.instances, args.time_limit, cluster),
                  "hamming": hamming(folder, args.n, args.patterns, args.m, args.k, args.sample, cluster),
                  "overhead": overhead(args.task_sizes, args.tasks, cluster),
                  "collection": collection(folder)}
    per_instance = result["robust_opt"]["seconds_per_instance"]
    per_solve = result["collection"]["seconds_per_solve"]
    estimate = [[f"504 knapsack instances (Neur2RO's benchmark) at {args.time_limit:g} s", f"{per_instance:.2f}",
                 f"{504 * per_instance / 64:.0f}"],
                ["Neur2RO-sized data collection: 100,000 second-stage knapsack solves, n 20-80",
                 f"{per_solve:.4f}", f"{100_000 * per_solve / 64:.0f}"]]
    print_table("paper estimate, 64 Dask workers (per-task costs measured above on this machine)",
                ["batch", "s per task (1 worker)", "wall s on 64 workers"], estimate,
                "scaling assumed linear: tasks are independent, and the measured overhead per task is added by Dask")
    result["estimate_504_on_64_seconds"] = 504 * per_instance / 64
    result["estimate_100k_solves_on_64_seconds"] = 100_000 * per_solve / 64
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
