"""``nmkit solve-linear``: train a DCDM direction network on a grid operator, and solve with every method under
one stopping rule, reporting the true relative residual ||b - A x|| / ||b|| that we compute ourselves."""

from __future__ import annotations

import importlib.util
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from nmkit.core import io
from nmkit.core.device import resolve_device
from nmkit.core.errors import InputError, reason
from nmkit.core.linear import problems
from nmkit.core.linear.config import LinearConfig
from nmkit.core.linear.incomplete_cholesky import IncompleteCholesky
from nmkit.core.linear.krylov import Solve, dcdm, pcg
from nmkit.core.linear.network import DirectionNet, direction_function
from nmkit.core.linear.training import train as train_network

METHODS = ("cg", "pcg-jacobi", "pcg-ic", "amg", "dcdm")


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

    def summary(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("histories", "model")}


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
        if net.dim != len(problem.shape):
            raise InputError(f"model {config.model}: trained on {net.dim}-D grids, the system is "
                             f"{len(problem.shape)}-D (pass grid for a --matrix)")
        if tuple(meta["shape"]) != problem.shape:
            notes.append(f"dcdm: network trained on {'x'.join(map(str, meta['shape']))} ({meta['problem']}), "
                         f"applied to {'x'.join(map(str, problem.shape))}")
    methods = _all_methods(notes, with_dcdm=net is not None) if config.method == "all" else [config.method]
    solves = [_solve(method, problem, b, config, net, notes) for method in methods]
    return _result(config, system, problem, solves, b, notes)


def _train(config: LinearConfig, advance) -> LinearResult:
    problem = problems.build(config.problem, config.n, config.obstacle, config.contrast, config.seed)
    torch.manual_seed(config.seed)  # the initial weights, so a rerun trains the same network
    net = DirectionNet(len(problem.shape), config.channels, config.levels)
    start = time.perf_counter()
    losses = train_network(net, problem.matrix, problem.shape, problem.fluid, steps=config.steps,
                           batch_size=config.batch_size, lr=config.lr, ritz_steps=config.ritz_steps,
                           seed=config.seed, advance=advance)
    seconds = time.perf_counter() - start
    b = problems.right_hand_side(problem, "random" if config.rhs not in ("smooth", "divergence") else config.rhs,
                                 np.random.default_rng(config.seed + 1))
    notes: list[str] = []
    solves = [_solve(method, problem, b, config, net, notes) for method in _all_methods(notes, with_dcdm=True)]
    result = _result(config, _describe(config), problem, solves, b, notes)
    result.training = {"steps": config.steps, "seconds": seconds, "loss_first": losses[0],
                       "loss_last_50_mean": float(np.mean(losses[-50:])),
                       "parameters": sum(p.numel() for p in net.parameters())}
    result.model = {"state_dict": net.state_dict(),
                    "meta": {"dim": net.dim, "channels": config.channels, "levels": config.levels,
                             "problem": config.problem, "obstacle": config.obstacle, "shape": list(problem.shape)}}
    return result


def _all_methods(notes: list[str], *, with_dcdm: bool) -> list[str]:
    """Every method that can run here: amg needs PyAMG, dcdm a model."""
    methods = list(METHODS)
    if importlib.util.find_spec("pyamg") is None:
        methods.remove("amg")
        notes.append("amg left out: PyAMG is not installed (pip install pyamg)")
    if not with_dcdm:
        methods.remove("dcdm")
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
    matrix = io.read_matrix_market(config.matrix, spd=True)
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


def _solve(method: str, problem: problems.GridProblem, b: np.ndarray, config: LinearConfig, net, notes) -> Solve:
    matrix, options = problem.matrix, {"tol": config.tol, "max_iter": config.max_iter}
    start = time.perf_counter()
    if method == "dcdm":
        device = resolve_device(config.device)
        fluid = torch.from_numpy(problem.fluid.ravel().astype(np.float32)).to(device)
        f = direction_function(net.to(device), problem.shape, fluid)
        system, rhs = (matrix, b)
        if device != "cpu":
            system, rhs = _device_matrix(matrix, device), torch.from_numpy(b).to(device)
        setup = time.perf_counter() - start
        result = dcdm(system, rhs, f, k_orth=config.k_orth, true_residual_every=config.true_residual_every,
                      safeguard=config.safeguard, **options)
        result.x = result.x if device == "cpu" else result.x.cpu().numpy()
    else:
        preconditioner = _preconditioner(method, matrix, notes)
        setup = time.perf_counter() - start
        result = pcg(matrix, b, preconditioner=preconditioner, method=method, **options)
    result.method, result.setup_seconds = method, setup
    return result


def _device_matrix(matrix: sp.csr_matrix, device: str) -> torch.Tensor:
    """The matrix as a float64 sparse CSR tensor on the device (the GPU path of DCDM)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(torch.from_numpy(matrix.indptr).long(), torch.from_numpy(matrix.indices).long(),
                                       torch.from_numpy(matrix.data), matrix.shape, device=device)


def _preconditioner(method: str, matrix: sp.csr_matrix, notes: list[str]):
    if method == "pcg-jacobi":
        inverse_diagonal = 1.0 / matrix.diagonal()
        return lambda r: inverse_diagonal * r
    if method == "pcg-ic":
        return IncompleteCholesky(matrix).solve
    if method == "amg":
        try:
            import pyamg
        except ImportError:
            raise InputError("method amg needs PyAMG (pip install pyamg)") from None
        return pyamg.smoothed_aggregation_solver(matrix).aspreconditioner(cycle="V")
    return None


def _result(config, system, problem, solves: list[Solve], b, notes) -> LinearResult:
    rows = [{"method": s.method, "iterations": s.iterations, "converged": s.converged,
             "true_relative_residual": s.true_relative_residual(problem.matrix, b), "fallbacks": s.fallbacks,
             "setup_seconds": s.setup_seconds,
             "solve_seconds": s.solve_seconds} for s in solves]
    return LinearResult(config.action, system, problem.size, int(problem.matrix.nnz), config.tol, rows, None, notes,
                        {s.method: s.history for s in solves})
