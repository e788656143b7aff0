"""``nmkit robust-opt generate|exact|train|solve`` for every problem: Neur2RO end to end with the exact baseline
beside it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nmkit.core import io
from nmkit.core.errors import InputError, reason
from nmkit.core.robust import instances, solvers
from nmkit.core.robust.capital_budgeting import generate_capital_budget
from nmkit.core.robust.ccg import CCGResult, exact_ccg
from nmkit.core.robust.config import RobustConfig
from nmkit.core.robust.learning import collect, fit
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
    return exact_ccg(problem, problem.read(config.instance), tol=config.tol, time_limit=config.time_limit)


def train(config: RobustConfig, advance: Callable[[int], None] | None = None) -> tuple[dict, ValueModel]:
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
    samples = collect(problem, family, config.decisions, config.scenarios, rng, advance, config.workers,
                      config.worst_cases)
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
                time_limit=config.time_limit, seed=config.seed)
    exact = exact_ccg(model.problem, instance, tol=config.tol, time_limit=config.time_limit)
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


def solve(config: RobustConfig) -> dict:
    solvers.use(config.solver)
    model = load_model(config.model, config.problem)
    instance = model.problem.read(config.instance)
    if config.compare_exact:
        return compare(model, instance, config)
    ml = ml_ccg(model, instance, adversary=config.adversary, max_scenarios=config.max_scenarios,
                time_limit=config.time_limit, seed=config.seed)
    return {"n": model.problem.size(instance), "ml_objective": ml.objective, "ml_seconds": ml.seconds,
            "ml_stop": ml.stop, "iterations": ml.iterations, "scenarios": ml.scenarios,
            "x": ml.x.astype(int).tolist()}
