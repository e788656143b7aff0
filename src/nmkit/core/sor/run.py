"""The relax-sor loop: for each system pick omega, solve, learn from the iteration count.

Besides the learner, every instance can be solved with every grid omega ("baselines"): that gives each
fixed omega's total, the best fixed omega in hindsight (the comparator of the regret), the per-instance
best grid omega (an oracle), and, where a closed form exists, the asymptotically optimal omega*(A_t).
The state (learner, random generator, records) is checkpointed so an interrupted run resumes exactly.
"""

from __future__ import annotations

import copy
import json
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nmkit.core import io, memory
from nmkit.core.device import resolve_device
from nmkit.core.errors import InputError, Interrupted, Terminated
from nmkit.core.recipe import show, to_plain
from nmkit.core.sor import learners, sequences
from nmkit.core.sor.config import SORConfig
from nmkit.core.sor.solvers import SolveResult, System, check_system
from nmkit.core.sor.stencil import GPU_WORTHWHILE_SIDE, solve_redblack, solve_redblack_torch

HEAT2D_BYTES_PER_POINT = 600
"""Memory per grid point of a heat2d system: two 5-point CSR matrices, a sparse LU for the trajectory, vectors."""

CONTEXT_RANGES = {("shifted-laplacian", "high"): (-0.15, 0.45), ("shifted-laplacian", "low"): (-0.15, 0.45),
                  "heat2d": (0.0, 10.0)}


@dataclass
class Records:
    """Per-instance iteration counts (-1 where not computed)."""

    arms: list[int] = field(default_factory=list)
    learner: list[int] = field(default_factory=list)
    grid: list[list[int]] = field(default_factory=list)  # [t][omega index]
    optimal: list[int] = field(default_factory=list)  # at omega*(A_t)
    capped: list[int] = field(default_factory=list)  # learner solves that hit max_iter
    contexts: list[float] = field(default_factory=list)


@dataclass
class SORResult:
    sequence: str
    solver: str
    learner: str
    steps: int
    grid: list[float]
    learner_iterations: int
    learner_capped: int
    fixed_iterations: dict[str, int] | None
    best_fixed_omega: float | None
    best_fixed_iterations: int | None
    gauss_seidel_iterations: int | None
    oracle_iterations: int | None  # best grid omega per instance
    instance_optimal_iterations: int | None  # omega*(A_t), SOR on closed-form instances
    regret: float | None  # learner - best fixed, in iterations
    seconds: float
    records: Records = field(repr=False)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "records"}


def omega_grid(config: SORConfig) -> np.ndarray:
    return np.linspace(config.omega_min, config.omega_max, config.omegas)


def make_learner(config: SORConfig, arms: int, context_range: tuple[float, float]):
    low, high = context_range
    if config.learner == "chebcb":
        return learners.ChebCB(arms, low, high)
    if config.learner == "tsallis-inf-cb":
        return learners.TsallisINFCB(arms, low, high)
    return learners.TsallisINF(arms)


def instances(config: SORConfig, notes: list[str]) -> tuple[Iterator[sequences.Instance], tuple[float, float]]:
    """The sequence's systems and its context range; a note when a file sequence is cut short by ``steps``."""
    rng = np.random.default_rng([config.seed, 1])  # the sequence's own stream: replayable on resume
    if config.sequence == "shifted-laplacian":
        return sequences.shifted_laplacian(config.length, config.variance, rng), \
            CONTEXT_RANGES[("shifted-laplacian", config.variance)]
    if config.sequence == "heat2d":
        memory.require(float(config.n) ** 2 * HEAT2D_BYTES_PER_POINT, f"heat2d with n = {config.n}")
        return sequences.heat2d(config.length, config.n, rng), CONTEXT_RANGES["heat2d"]
    everything = sequences.from_files(config.path)
    loaded = everything[: config.length]
    if len(loaded) < len(everything):
        notes.append(f"ran the first {len(loaded):,} of the {len(everything):,} systems in {config.path.name} "
                     f"(steps {config.steps:,})")
    contexts = [i.context for i in loaded]
    return iter(loaded), (min(contexts), max(contexts) if max(contexts) > min(contexts) else min(contexts) + 1)


def run(config: SORConfig, *, state_file: Path | None = None, advance: Callable[[int], None] | None = None,
        ) -> SORResult:
    start = time.perf_counter()
    device = resolve_device(config.device)
    grid = omega_grid(config)
    notes: list[str] = []
    stream, context_range = instances(config, notes)
    learner = make_learner(config, len(grid), context_range)
    rng = np.random.default_rng([config.seed, 2])
    records = Records()
    if config.resume:
        if state_file is None or not state_file.exists():
            missing = "give --out or --state" if state_file is None else f"{state_file} does not exist"
            raise InputError(f"--resume: no state file to continue ({missing})")
        records, rng = _resume(state_file, learner, config)
    elif state_file is not None and state_file.exists():
        raise InputError(f"state file {state_file}: exists; pass --resume to continue that run, or remove it")
    fixed_arm = int(np.argmin(np.abs(grid - config.omega))) if config.learner == "fixed" else None
    done = None  # (learner state, generator state, systems) after the last completed system
    try:
        for t, instance in enumerate(stream):
            if t < len(records.learner):
                continue  # replayed from the checkpoint
            done = (copy.deepcopy(learner.state()), copy.deepcopy(rng.bit_generator.state), t)
            check_system(instance.a, instance.b, f"system {t}")
            solve = _naming(solver_for(config, instance, device), f"system {t}")
            p = learner.distribution(instance.context)
            arm = fixed_arm if fixed_arm is not None else int(rng.choice(len(grid), p=p))
            result = solve(grid[arm])
            if fixed_arm is None:
                learner.update(arm, instance.context, result.iterations)
            _record(config, records, solve, instance, grid, arm, result)
            if state_file is not None and (t + 1) % config.checkpoint_every == 0:
                _checkpoint(state_file, learner, rng, records, config)
            if advance is not None:
                advance(1)
    except KeyboardInterrupt as stop:
        if state_file is None or done is None:
            raise
        _checkpoint_interrupted(stop, done, state_file, learner, rng, records, config)
    if not records.learner:
        raise InputError("the sequence is empty")
    if state_file is not None:
        _checkpoint(state_file, learner, rng, records, config)
    result = _summarise(config, grid, records, time.perf_counter() - start)
    result.notes = notes
    return result


def _naming(solve: Callable[[float], SolveResult], system: str) -> Callable[[float], SolveResult]:
    """``solve`` whose bad-input errors (a matrix that is not SPD) name the system."""
    def named(omega: float) -> SolveResult:
        try:
            return solve(omega)
        except InputError as exc:
            raise InputError(f"{system}: {exc}") from None

    return named


def solver_for(config: SORConfig, instance: sequences.Instance, device: str = "cpu") -> Callable[[float], SolveResult]:
    """omega -> solve of this instance, with the sweep the config asks for (prepared once)."""
    options = {"rtol": config.rtol, "max_iter": config.max_iter, "x0": instance.x0}
    red_black = config.solver == "sor" and instance.stencil is not None and config.ordering != "lexicographic"
    if red_black and device == "cuda" and (config.device == "cuda" or instance.stencil.side >= GPU_WORTHWHILE_SIDE):
        return lambda omega: solve_redblack_torch(instance.stencil, instance.b, float(omega), device=device, **options)
    if red_black:
        return lambda omega: solve_redblack(instance.stencil, instance.b, float(omega), **options)
    system = System.prepare(instance.a, instance.b)
    return lambda omega: system.solve(config.solver, float(omega), **options)


def _record(config, records: Records, solve, instance, grid, arm, result) -> None:
    records.arms.append(arm)
    records.learner.append(result.iterations)
    records.capped.append(int(not result.converged))
    records.contexts.append(instance.context)
    if config.baselines:
        row = [result.iterations if i == arm else solve(w).iterations for i, w in enumerate(grid)]
        records.grid.append(row)
        optimal = -1
        if config.solver == "sor" and instance.omega_star is not None:
            optimal = solve(min(instance.omega_star, 1.999)).iterations
        records.optimal.append(optimal)


def _summarise(config: SORConfig, grid: np.ndarray, records: Records, seconds: float) -> SORResult:
    learner_total = int(np.sum(records.learner))
    fixed = best_omega = best_total = gauss_seidel = oracle = optimal = regret = None
    if config.baselines and records.grid:
        table = np.array(records.grid)
        totals = table.sum(0)
        fixed = {f"{w:.4f}": int(v) for w, v in zip(grid, totals, strict=True)}
        best = int(np.argmin(totals))
        best_omega, best_total = float(grid[best]), int(totals[best])
        oracle = int(table.min(1).sum())
        regret = float(learner_total - best_total)
        if np.isclose(grid[0], 1.0):
            gauss_seidel = int(totals[0])
        if records.optimal and min(records.optimal) >= 0:
            optimal = int(np.sum(records.optimal))
    return SORResult(config.sequence, config.solver, config.learner, len(records.learner),
                     [round(float(w), 6) for w in grid], learner_total, int(np.sum(records.capped)), fixed, best_omega,
                     best_total, gauss_seidel, oracle, optimal, regret, seconds, records)


SYSTEMS_COLUMNS = ("t", "context", "omega", "iterations", "capped", "gauss_seidel", "optimal")
"""systems.csv, one row per system: its index and context, the learner's omega and iterations, whether that solve
hit max_iter (1/0), Gauss-Seidel's iterations (omega = 1 on the grid), SOR at omega*(A_t) where Young's formula
gives it; then one column per grid omega (``omega_<value>``) with --baselines. Empty: not computed."""


def systems_table(result: SORResult) -> tuple[list[str], list[list]]:
    """The per-system rows of systems.csv (see :data:`SYSTEMS_COLUMNS`)."""
    records = result.records
    grid_columns = [f"omega_{w:.4f}" for w in result.grid] if records.grid else []
    one = next((i for i, w in enumerate(result.grid) if abs(w - 1.0) < 1e-12), None)
    rows = []
    for t, arm in enumerate(records.arms):
        grid_row = records.grid[t] if records.grid else []
        optimal = records.optimal[t] if records.optimal and records.optimal[t] >= 0 else ""
        rows.append([t, f"{records.contexts[t]:.6g}", f"{result.grid[arm]:.4f}", records.learner[t], records.capped[t],
                     grid_row[one] if grid_row and one is not None else "", optimal, *grid_row])
    return [*SYSTEMS_COLUMNS, *grid_columns], rows


def regret_curve(result: SORResult) -> np.ndarray:
    """Rows (t, cumulative learner, cumulative best fixed, cumulative oracle) for the CSV and the plot."""
    records = result.records
    table = np.array(records.grid)
    best = table[:, result.grid.index(round(result.best_fixed_omega, 6))]
    t = np.arange(1, len(records.learner) + 1)
    return np.column_stack([t, np.cumsum(records.learner), np.cumsum(best), np.cumsum(table.min(1))])


# -- checkpoints -----------------------------------------------------------------------------------


def _checkpoint(path: Path, learner, rng: np.random.Generator, records: Records, config: SORConfig) -> None:
    arrays = {f"learner.{k}": np.asarray(v) for k, v in learner.state().items()}
    arrays.update({f"records.{k}": np.asarray(v) for k, v in records.__dict__.items()})
    meta = {"rng": rng.bit_generator.state, "settings": _settings(config)}
    arrays["meta"] = np.array(json.dumps(meta))
    io.atomic_write(path, lambda fh: np.savez(fh, **arrays))


def _checkpoint_interrupted(stop: KeyboardInterrupt, done: tuple, path: Path, learner, rng: np.random.Generator,
                            records: Records, config: SORConfig) -> None:
    """Ctrl-C or SIGTERM: roll back to the last completed system, write the state file, exit 130 or 143."""
    learner_state, generator_state, systems = done
    learner.load(learner_state)
    rng.bit_generator.state = generator_state
    for values in records.__dict__.values():
        del values[systems:]
    _checkpoint(path, learner, rng, records, config)
    signum = signal.SIGTERM if isinstance(stop, Terminated) else signal.SIGINT
    raise Interrupted(f"interrupted after {systems:,} of {config.length or 'all'} systems; {path} is current; "
                      f"continue with --resume", signum) from None


NOT_IN_FINGERPRINT = ("resume", "checkpoint_every", "device")
"""Settings that do not change the result; every other one must match for a run to resume."""


def _settings(config: SORConfig) -> dict:
    return json.loads(json.dumps({k: v for k, v in to_plain(config).items() if k not in NOT_IN_FINGERPRINT}))


def _resume(path: Path, learner, config: SORConfig) -> tuple[Records, np.random.Generator]:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        raise InputError(f"state file {path}: not a relax-sor checkpoint") from None
    written = meta.get("settings") if isinstance(meta, dict) else None
    if not isinstance(written, dict):
        raise InputError(f"state file {path}: not a relax-sor checkpoint of this version (no settings)")
    for key, value in _settings(config).items():
        if written.get(key) != value:
            raise InputError(f"--resume: {path} was written with {key} = {show(written.get(key))}, this run has "
                             f"{show(value)}; resume with the run's own recipe.yaml")
    learner.load({k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith("learner.")})
    records = Records(**{k.split(".", 1)[1]: v.tolist() for k, v in arrays.items() if k.startswith("records.")})
    rng = np.random.default_rng()
    rng.bit_generator.state = meta["rng"]
    return records, rng
