"""nmkit as one job among several: shipped recipes as whole `nmkit` processes, one after another, two at a time
(`make -j2`), and each beside four CPU-bound busy loops, under the default thread policy and with one thread.

Goals (issue 16, on 2 cores): two at a time finishes in <= 0.75x the one-after-another wall time; beside the four busy
loops no recipe takes more than 4x its quiet wall time (a fair share of 2 cores among 5 jobs is about 2.5-3x).
Run it alone on the machine. ``python -m benchmarks.concurrency [--policies default one] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

from benchmarks.harness import print_table

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
# Four capabilities with different pools: torch + numba (train-snn), numba EM (compress-pc), torch training and
# scipy/numba solves (solve-linear), numba sweeps (relax-sor). Sizes trimmed so that each takes ~5-20 s quietly.
JOBS = {
    "train-snn": ["train-snn.yaml", "steps=60", "eval_every=30", "eval_windows=8", "checkpoint_every=1000"],
    "compress-pc": ["compress-pc.yaml"],
    "solve-linear": ["solve-linear.yaml", "steps=100", "ritz_steps=200"],
    "relax-sor": ["relax-sor-contextual.yaml"],
}
POLICIES = {"default": [], "one": ["--threads", "1"]}
BUSY_LOOPS = 4


def command(job: str, policy: str) -> list[str]:
    recipe, *sets = JOBS[job]
    nmkit = [sys.executable, "-c", "from nmkit.cli.app import main; main()"]
    return [*nmkit, "run", str(RECIPES_DIR / recipe), "--quiet", *POLICIES[policy],
            *(part for s in sets for part in ("--set", s))]


def timed(job: str, policy: str) -> float:
    start = time.perf_counter()
    subprocess.run(command(job, policy), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def run_at_most(jobs: list[str], policy: str, slots: int) -> float:
    """Wall time of all ``jobs`` with at most ``slots`` running at once (what `make -j SLOTS` does)."""
    start, queue, running = time.perf_counter(), deque(jobs), []
    while queue or running:
        while queue and len(running) < slots:
            job = queue.popleft()
            running.append(subprocess.Popen(command(job, policy), stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL))
        time.sleep(0.02)
        for process in [p for p in running if p.poll() is not None]:
            if process.returncode != 0:
                raise RuntimeError(f"{process.args} exited {process.returncode}")
            running.remove(process)
    return time.perf_counter() - start


def _spin() -> None:
    while True:  # pure CPU: no lock or syscall that would let it sleep
        pass


def beside_busy_loops(job: str, policy: str) -> float:
    loops = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(BUSY_LOOPS)]
    for loop in loops:
        loop.start()
    time.sleep(0.5)  # the loops are running before the job starts, as they would be on a shared machine
    try:
        return timed(job, policy)
    finally:
        for loop in loops:
            loop.terminate()
            loop.join()


def measure(policy: str, jobs: list[str]) -> dict:
    quiet = {job: timed(job, policy) for job in jobs}
    sequential = sum(quiet.values())
    paired = run_at_most(jobs, policy, slots=2)
    busy = {job: beside_busy_loops(job, policy) for job in jobs}
    return {"policy": policy, "quiet": quiet, "sequential": sequential, "two_at_a_time": paired,
            "pair_ratio": paired / sequential, "busy": busy,
            "busy_ratio": {job: busy[job] / quiet[job] for job in jobs}}


def main(argv: list[str]) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    parser.add_argument("--jobs", nargs="+", default=list(JOBS), choices=list(JOBS))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    for job in args.jobs:  # warm numba's caches so that no arm pays compilation
        timed(job, args.policies[0])
    results = [measure(policy, args.jobs) for policy in args.policies]
    rows = []
    for r in results:
        for job in args.jobs:
            rows.append([r["policy"], job, f"{r['quiet'][job]:.1f}", f"{r['busy'][job]:.1f}",
                         f"{r['busy_ratio'][job]:.2f}x", "", ""])
        rows.append([r["policy"], "all four", f"{r['sequential']:.1f}", "", "", f"{r['two_at_a_time']:.1f}",
                     f"{r['pair_ratio']:.2f}x"])
    print_table(f"concurrency on {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} in the affinity mask)",
                ["policy", "recipe", "quiet s", "beside 4 busy loops s", "slowdown (goal <= 4x)",
                 "two at a time s", "vs one after another (goal <= 0.75x)"], rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
