"""``nmkit solve-linear``: train a DCDM direction network on a grid operator, and solve with every method under
one stopping rule, reporting the true relative residual ||b - A x|| / ||b|| that we compute ourselves."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from nmkit.core import distributed, io
from nmkit.core.device import resolve_device
from nmkit.core.errors import InputError, reason
from nmkit.core.linear import problems
from nmkit.core.linear.api import SolveInfo, available_methods, solve
from nmkit.core.linear.config import LinearConfig
from nmkit.core.linear.krylov import NotPositiveDefinite
from nmkit.core.linear.network import DirectionNet
from nmkit.core.linear.training import train as train_network


@dataclass
class LinearResult:
    action: str
    system: str
    unknowns: int
    nonzeros: int
    tol: float
    solves: list[dict]
    training: dict | None = None
    notes: list[str] = field(default_factory=list)
    histories: dict[str, list[float]] = field(default_factory=dict, repr=False)
    model: dict | None = field(default=None, repr=False)  # train: what model.pt holds
    solutions: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # method -> x (flat)
    problem: problems.GridProblem | None = field(default=None, repr=False)
    b: np.ndarray | None = field(default=None, repr=False)

    def summary(self) -> dict:
        hidden = ("histories", "model", "solutions", "problem", "b")
        return {k: v for k, v in self.__dict__.items() if k not in hidden}


def run(config: LinearConfig, advance: Callable[[int, float], None] | None = None) -> LinearResult:
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    if config.action == "train":
        return _train(config, advance)
    problem, system = _problem(config)
    b = _rhs(config, problem)
    notes = []
    net = None
    if config.method in ("dcdm", "all") and config.model is not None:
        net, meta = load_model(config.model)
        if net.dim != len(problem.shape) and (config.method == "dcdm" or config.grid is not None):
            raise InputError(f"model {config.model}: trained on {net.dim}-D grids, the system is "
                             f"{len(problem.shape)}-D (pass --grid for a --matrix, e.g. 64x64)")
        if tuple(meta["shape"]) != problem.shape:
            notes.append(f"dcdm: network trained on {'x'.join(map(str, meta['shape']))} ({meta['problem']}), "
                         f"applied to {'x'.join(map(str, problem.shape))}")
    if config.method == "all" and net is not None and len(problem.shape) != net.dim:
        notes.append("dcdm left out: the matrix's grid is unknown (pass --grid, e.g. 64x64)")
        net = None
    methods = _all_methods(notes, with_dcdm=net is not None) if config.method == "all" else [config.method]
    solves = [_solve(method, problem, b, config, net) for method in methods]
    return _result(config, system, problem, solves, b, notes)


def _train(config: LinearConfig, advance) -> LinearResult:
    distributed.join("cpu")  # data parallel under torchrun (the network trains on the CPU's sparse operator)
    processes = distributed.rank_and_world()[1]
    problem = problems.build(config.problem, config.n, config.obstacle, config.contrast, config.seed)
    torch.manual_seed(config.seed)  # the initial weights, so a rerun trains the same network
    net = DirectionNet(len(problem.shape), config.channels, config.levels)
    start = time.perf_counter()
    try:
        losses = train_network(net, problem.matrix, problem.shape, problem.fluid, steps=config.steps,
                               batch_size=config.batch_size, lr=config.lr, ritz_steps=config.ritz_steps,
                               seed=config.seed, advance=advance)
    finally:
        distributed.leave()
    seconds = time.perf_counter() - start
    b = problems.right_hand_side(problem, "random" if config.rhs not in ("smooth", "divergence") else config.rhs,
                                 np.random.default_rng(config.seed + 1))
    notes: list[str] = []
    solves = [_solve(method, problem, b, config, net) for method in _all_methods(notes, with_dcdm=True)]
    result = _result(config, _describe(config), problem, solves, b, notes)
    result.training = {"steps": config.steps, "processes": processes, "global_batch": config.batch_size * processes,
                       "seconds": seconds, "loss_first": losses[0],
                       "loss_last_50_mean": float(np.mean(losses[-50:])),
                       "parameters": sum(p.numel() for p in net.parameters())}
    result.model = {"state_dict": net.state_dict(),
                    "meta": {"dim": net.dim, "channels": config.channels, "levels": config.levels,
                             "problem": config.problem, "obstacle": config.obstacle, "shape": list(problem.shape)}}
    return result


def _all_methods(notes: list[str], *, with_dcdm: bool) -> list[str]:
    """Every method that can run here: amg needs PyAMG, dcdm a model."""
    methods = [m for m in available_methods() if m != "dcdm" or with_dcdm]
    if "amg" not in methods:
        notes.append("amg left out: PyAMG is not installed (pip install pyamg)")
    if not with_dcdm:
        notes.append("dcdm left out: no model given")
    return methods


def load_model(path: Path) -> tuple[DirectionNet, dict]:
    """A model.pt written by ``train`` (or its folder), loaded without unpickling code."""
    saved, path = io.load_saved_model(path)
    try:
        meta = saved["meta"]
        net = DirectionNet(int(meta["dim"]), int(meta["channels"]), int(meta["levels"]))
        net.load_state_dict(saved["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise InputError(f"model {path}: not a solve-linear model ({reason(exc)})") from None
    return net.eval(), meta


def _describe(config: LinearConfig) -> str:
    side = "x".join([str(config.n)] * (3 if config.problem.endswith("3d") else 2))
    return f"{config.problem} {side}" + (f", {config.obstacle} obstacle" if config.obstacle != "none" else "")


def _problem(config: LinearConfig) -> tuple[problems.GridProblem, str]:
    if config.matrix is None:
        return problems.build(config.problem, config.n, config.obstacle, config.contrast, config.seed), \
            _describe(config)
    matrix = io.read_sparse_npz(config.matrix) if config.matrix.suffix == ".npz" else \
        io.read_matrix_market(config.matrix, spd=True)
    shape = tuple(config.grid) if config.grid else None
    return problems.from_matrix(matrix, shape, str(config.matrix)), f"matrix {Path(config.matrix).name}"


def _rhs(config: LinearConfig, problem: problems.GridProblem) -> np.ndarray:
    if isinstance(config.rhs, str):
        return problems.right_hand_side(problem, config.rhs, np.random.default_rng(config.seed + 1))
    b = io.load_npy(config.rhs).astype(np.float64).ravel()
    if b.size != problem.size:
        raise InputError(f"rhs {config.rhs}: has {b.size} entries, the system has {problem.size} unknowns")
    if not np.all(np.isfinite(b)):
        raise InputError(f"rhs {config.rhs}: contains NaN or infinite values")
    if not np.any(b):
        raise InputError(f"rhs {config.rhs}: is all zeros (the solution is 0)")
    return b


def _solve(method: str, problem: problems.GridProblem, b: np.ndarray, config: LinearConfig, net) -> tuple:
    """One method on the system through the library entry point; (x, info)."""
    try:
        return solve(problem.matrix, b, method=method, rtol=config.tol, maxiter=config.max_iter, model=net,
                     grid=problem.shape, fluid=problem.fluid, device=resolve_device(config.device)
                     if method == "dcdm" else "cpu", k_orth=config.k_orth,
                     true_residual_every=config.true_residual_every, safeguard=config.safeguard)
    except NotPositiveDefinite as exc:
        raise InputError(f"matrix {config.matrix or _describe(config)}: {exc}") from None


def _result(config, system, problem, solves: list[tuple[np.ndarray, SolveInfo]], b, notes) -> LinearResult:
    rows = [{"method": i.method, "iterations": i.iterations, "converged": i.converged,
             "true_relative_residual": i.true_relative_residual, "fallbacks": i.fallbacks,
             "setup_seconds": i.setup_seconds, "solve_seconds": i.solve_seconds} for _, i in solves]
    return LinearResult(config.action, system, problem.size, int(problem.matrix.nnz), config.tol, rows, None, notes,
                        {i.method: i.residuals for _, i in solves}, solutions={i.method: x for x, i in solves},
                        problem=problem, b=b)
