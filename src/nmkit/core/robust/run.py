"""``nmkit robust-opt generate|exact|train|solve`` for every problem: Neur2RO end to end with the exact baseline
beside it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nmkit.core import io
from nmkit.core.errors import InputError, reason
from nmkit.core.executor import TaskLog
from nmkit.core.robust import batch, instances, solvers
from nmkit.core.robust.capital_budgeting import generate_capital_budget
from nmkit.core.robust.ccg import CCGResult, exact_ccg
from nmkit.core.robust.config import RobustConfig
from nmkit.core.robust.learning import Samples, collect, fit
from nmkit.core.robust.mlccg import ml_ccg
from nmkit.core.robust.network import ValueModel
from nmkit.core.robust.problems import PROBLEMS

SAMPLED = {"h": (40.0, 80.0), "delta": (0.1, 0.5, 1.0), "budget_factor": (0.1, 0.15, 0.2)}


def generate(config: RobustConfig, n: int, rng: np.random.Generator) -> Any:
    """One instance from the config's generator settings."""
    if config.problem == "capital_budgeting":
        return generate_capital_budget(n, rng)
    return instances.generate_knapsack(n, config.correlation, config.h, config.delta, config.budget_factor, rng)


def sample_family(config: RobustConfig, count: int, rng: np.random.Generator) -> list[Any]:
    """Instances with n in n_range; for the knapsack the other generator parameters are drawn from the paper's
    grid (every correlation type, h, delta, budget factor)."""
    low, high = config.n_range
    family = []
    for _ in range(count):
        n = int(rng.integers(low, high + 1))
        if config.problem == "capital_budgeting":
            family.append(generate_capital_budget(n, rng))
        else:
            family.append(instances.generate_knapsack(
                n, str(rng.choice(instances.CORRELATIONS)), float(rng.choice(SAMPLED["h"])),
                float(rng.choice(SAMPLED["delta"])), float(rng.choice(SAMPLED["budget_factor"])), rng))
    return family


def exact(config: RobustConfig) -> CCGResult:
    solvers.use(config.solver)
    problem = PROBLEMS[config.problem]
    return exact_ccg(problem, problem.read(config.instance), tol=config.tol, time_limit=config.seconds())


def train(config: RobustConfig, advance: Callable[[int], None] | None = None,
          log_dir: Path | None = None) -> tuple[dict, ValueModel]:
    """Collect second-stage data (one task per instance; with ``log_dir``, logged there as tasks finish, so
    ``resume`` skips them), fit the value network, compare it with exact CCG on fresh instances."""
    solvers.use(config.solver)
    problem = PROBLEMS[config.problem]
    rng = np.random.default_rng(config.seed)
    if config.instances is not None:
        files = sorted(Path(config.instances).glob("*.txt"))
        if not files:
            raise InputError(f"instances {config.instances}: no .txt instance files there")
        family = [problem.read(f) for f in files]
    else:
        family = sample_family(config, config.sample, rng)
    start = time.perf_counter()
    log = None if log_dir is None else TaskLog(log_dir / TASK_LOG, _batch_key(config, "train"),
                                               Samples.to_json, Samples.from_json)
    samples = collect(problem, family, config.decisions, config.scenarios, rng, advance,
                      config.executor_spec(config.workers), config.worst_cases, log, config.resume)
    data_seconds = time.perf_counter() - start
    start = time.perf_counter()
    model, info = fit(problem, samples, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size,
                      seed=config.seed, dims={"embed": tuple(config.embed), "post": tuple(config.post),
                                              "value": config.value, "joint": config.encoder == "joint" or
                                              (config.encoder == "auto" and problem.joint_encoder)})
    train_seconds = time.perf_counter() - start
    summary = {"problem": config.problem, "instances": len(family),
               "second_stage_solves": int(sum(len(s.labels) for s in samples)),
               "data_seconds": data_seconds, "train_seconds": train_seconds,
               "validation_mae": info["validation_mae"], "label_std": info["label_std"],
               "evaluation": [compare(model, inst, config) for inst in sample_family(config, config.evaluate, rng)]}
    return summary, model


def compare(model: ValueModel, instance: Any, config: RobustConfig) -> dict:
    """ML-CCG and exact CCG on one instance: true objectives, relative error, times."""
    ml = ml_ccg(model, instance, adversary=config.adversary, max_scenarios=config.max_scenarios,
                time_limit=config.seconds(), seed=config.seed)
    exact = exact_ccg(model.problem, instance, tol=config.tol, time_limit=config.seconds())
    return {"n": model.problem.size(instance), "ml_objective": ml.objective, "ml_seconds": ml.seconds,
            "ml_stop": ml.stop, "iterations": ml.iterations, "exact_objective": exact.objective,
            "exact_seconds": exact.seconds, "exact_gap": exact.gap, "exact_timed_out": exact.timed_out,
            "relative_error": (exact.objective - ml.objective) / max(abs(exact.objective), 1e-9)}


def load_model(path: Path, problem: str) -> ValueModel:
    """A model.pt written by ``train`` (or its folder), loaded without unpickling code."""
    saved, path = io.load_saved_model(path)
    try:
        kind = saved["problem"]
        if kind != problem:
            raise InputError(f"model {path}: trained for {kind}, not {problem}")
        return ValueModel.from_file(saved, PROBLEMS[problem])
    except (KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise InputError(f"model {path}: not a robust-opt model ({reason(exc)})") from None


SHIPPED = Path(__file__).resolve().parents[1] / "data"
TASK_LOG = "tasks.jsonl"
WHERE_TASKS_RUN = ("executor", "workers", "resume")
"""Fields that decide where and whether tasks run, not what they compute: a resumed run may change them."""


def _batch_key(config: RobustConfig, action: str, files: list[Path] = ()) -> dict:
    """What a task log is valid for: every field that shapes the tasks' results, and the instance files."""
    from nmkit.core.recipe import to_plain

    fields = {k: v for k, v in to_plain(config).items() if k not in WHERE_TASKS_RUN}
    return {"action": action, "fields": fields, "files": [f.name for f in files]}


def shipped_model(problem: str) -> ValueModel | None:
    """The value network shipped with nmkit for ``problem`` (trained by recipes/robust-opt-*-shipped.yaml)."""
    path = SHIPPED / f"robust-{problem.replace('_', '-')}-value.pt"
    return load_model(path, problem) if path.is_file() else None


def solve(config: RobustConfig, advance: Callable[[int], None] | None = None,
          log_dir: Path | None = None) -> tuple[dict, list[batch.Row]]:
    """The portfolio solver on one instance file or every file of a folder: (summary, one row per instance). With
    ``log_dir`` each finished instance is logged there, so ``resume`` solves only the rest."""
    solvers.use(config.solver)
    problem = PROBLEMS[config.problem]
    model = load_model(config.model, config.problem) if config.model is not None else shipped_model(config.problem)
    path = Path(config.instance)
    if not path.exists():
        raise InputError(f"instance {path}: no such file or folder")
    path = path.resolve()  # workers started elsewhere (a Dask cluster) read the files by these paths
    files = batch.instance_files(path) if path.is_dir() else [path]
    references = None if config.reference is None else batch.read_reference(
        config.reference, config.reference_column, {batch.instance_name(f) for f in files})
    settings = {"time_limit": config.seconds(), "main_gap": config.main_gap, "adversary": config.adversary,
                "tol": config.tol, "seed": config.seed}
    log = None if log_dir is None else TaskLog(log_dir / TASK_LOG, _batch_key(config, "solve", files),
                                               dataclasses.asdict, batch.row_from_json)
    rows = batch.solve_files(problem, files, model, references, config.reference_column, settings,
                             config.executor_spec(config.workers), advance, log, config.resume)
    summary = {"problem": config.problem, "model": "shipped" if config.model is None and model is not None else
               None if model is None else str(config.model), "time_limit": config.seconds(),
               "instances": [dataclasses.asdict(row) for row in rows], "summary": batch.summary(rows)}
    if references is not None:
        summary["unmatched"] = [row.instance for row in rows if row.reference is None]
    if config.compare_exact and len(rows) == 1:
        exact_result = exact_ccg(problem, problem.read(files[0]), tol=config.tol, time_limit=config.seconds())
        summary["exact"] = {"profit": exact_result.objective, "bound": exact_result.bound,
                            "seconds": exact_result.seconds, "timed_out": exact_result.timed_out,
                            "relative_error": (exact_result.objective - rows[0].profit)
                            / max(abs(exact_result.objective), 1e-9)}
    return summary, rows
