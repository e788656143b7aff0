"""``nmkit robust-opt train|solve``: Neur2RO end to end on the robust knapsack, with the exact baseline beside it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from nmkit.core import io
from nmkit.core.errors import InputError
from nmkit.core.robust import instances
from nmkit.core.robust.config import RobustConfig
from nmkit.core.robust.knapsack import exact_ccg
from nmkit.core.robust.learning import collect, fit
from nmkit.core.robust.mlccg import ml_ccg
from nmkit.core.robust.network import FeatureScaler, SetEncoder

SAMPLED = {"h": (40.0, 80.0), "delta": (0.1, 0.5, 1.0), "budget_factor": (0.1, 0.15, 0.2)}


def sample_family(config: RobustConfig, count: int, rng: np.random.Generator) -> list[instances.Knapsack]:
    """Instances with n in n_range and the other generator parameters drawn from the paper's grid."""
    low, high = config.n_range
    return [instances.generate_knapsack(int(rng.integers(low, high + 1)), str(rng.choice(instances.CORRELATIONS)),
                                        float(rng.choice(SAMPLED["h"])), float(rng.choice(SAMPLED["delta"])),
                                        float(rng.choice(SAMPLED["budget_factor"])), rng) for _ in range(count)]


def train(config: RobustConfig, advance: Callable[[int], None] | None = None) -> tuple[dict, dict]:
    """Returns (summary, model file contents)."""
    rng = np.random.default_rng(config.seed)
    if config.instances is not None:
        files = sorted(Path(config.instances).glob("*.txt"))
        if not files:
            raise InputError(f"instances {config.instances}: no .txt instance files there")
        family = [instances.read_knapsack(f) for f in files]
    else:
        family = sample_family(config, config.sample, rng)
    scaler = FeatureScaler.fit(family)
    start = time.perf_counter()
    samples = collect(family, scaler, config.decisions, config.scenarios, rng, advance, config.workers)
    data_seconds = time.perf_counter() - start
    start = time.perf_counter()
    net, info = fit(samples, epochs=config.epochs, lr=config.lr, batch_size=config.batch_size, seed=config.seed)
    train_seconds = time.perf_counter() - start
    summary = {"instances": len(family), "second_stage_solves": int(sum(len(s.labels) for s in samples)),
               "data_seconds": data_seconds, "train_seconds": train_seconds,
               "validation_mae": info["validation_mae"], "label_std": info["label_std"],
               "evaluation": [compare(inst, net, scaler, config) for inst in sample_family(config, config.evaluate,
                                                                                            rng)]}
    model = {"problem": "knapsack", "state_dict": net.state_dict(),
             "scaler_low": torch.from_numpy(scaler.low), "scaler_high": torch.from_numpy(scaler.high)}
    return summary, model


def compare(instance: instances.Knapsack, net: SetEncoder, scaler: FeatureScaler, config: RobustConfig) -> dict:
    """ML-CCG and exact CCG on one instance: true objectives, relative error, times."""
    ml = ml_ccg(instance, net, scaler, max_scenarios=config.max_scenarios, time_limit=config.time_limit,
                seed=config.seed)
    exact = exact_ccg(instance, tol=config.tol, time_limit=config.time_limit)
    return {"n": instance.n, "ml_objective": ml.objective, "ml_seconds": ml.seconds, "ml_stop": ml.stop,
            "exact_objective": exact.objective, "exact_seconds": exact.seconds, "exact_gap": exact.gap,
            "exact_timed_out": exact.timed_out,
            "relative_error": (exact.objective - ml.objective) / max(abs(exact.objective), 1e-9)}


def load_model(path: Path, problem: str) -> tuple[SetEncoder, FeatureScaler]:
    """A model.pt written by ``train`` (or its folder), loaded without unpickling code."""
    saved, path = io.load_saved_model(path)
    try:
        kind = saved["problem"]
        net = SetEncoder()
        net.load_state_dict(saved["state_dict"])
        scaler = FeatureScaler(saved["scaler_low"].numpy(), saved["scaler_high"].numpy())
    except (KeyError, TypeError, AttributeError, RuntimeError) as exc:
        raise InputError(f"model {path}: not a robust-opt model ({str(exc).splitlines()[0][:100]})") from None
    if kind != problem:
        raise InputError(f"model {path}: trained for {kind}, not {problem}")
    return net.eval(), scaler


def solve(config: RobustConfig) -> dict:
    net, scaler = load_model(config.model, config.problem)
    instance = instances.read_knapsack(config.instance)
    if config.compare_exact:
        return compare(instance, net, scaler, config)
    ml = ml_ccg(instance, net, scaler, max_scenarios=config.max_scenarios, time_limit=config.time_limit,
                seed=config.seed)
    return {"n": instance.n, "ml_objective": ml.objective, "ml_seconds": ml.seconds, "ml_stop": ml.stop,
            "iterations": ml.iterations, "scenarios": ml.scenarios, "x": ml.x.astype(int).tolist()}
