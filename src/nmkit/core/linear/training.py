"""Training DCDM's generator without solutions (Kaneda et al. 2023, Sec. 4.1, Eq. 7): for a right-hand side b
and q = f(b), the loss ||b - alpha A q||^2 with alpha = (q . b) / (q . A q) is invariant to the scale of q, so f
only has to approximate A^-1 up to a constant. Training vectors are combinations of Ritz vectors from a Lanczos
run on A, with the low (smooth) end of the spectrum weighted 9x, the error modes CG is slowest to remove."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import torch
from torch.nn.parallel import DistributedDataParallel

from nmkit.core import distributed
from nmkit.core.linear.network import DirectionNet

SMOOTH_WEIGHT = 9.0


def ritz_vectors(matrix: sp.spmatrix, steps: int, fluid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[N, m] Ritz vectors (ascending Ritz values) of ``steps`` Lanczos steps with full re-orthogonalisation,
    started from A applied to noise on the fluid cells."""
    n = matrix.shape[0]
    steps = min(steps, int(fluid.sum()))
    basis = np.zeros((n, steps))
    alpha, beta = np.zeros(steps), np.zeros(max(steps - 1, 0))
    q = matrix @ np.where(fluid.ravel(), rng.standard_normal(n), 0.0)
    q /= np.linalg.norm(q)
    for j in range(steps):
        basis[:, j] = q
        w = matrix @ q
        alpha[j] = q @ w
        w -= basis[:, : j + 1] @ (basis[:, : j + 1].T @ w)
        w -= basis[:, : j + 1] @ (basis[:, : j + 1].T @ w)  # twice is enough
        if j + 1 < steps:
            beta[j] = np.linalg.norm(w)
            if beta[j] < 1e-10:
                basis, alpha, beta = basis[:, : j + 1], alpha[: j + 1], beta[:j]
                break
            q = w / beta[j]
    values, vectors = scipy.linalg.eigh_tridiagonal(alpha, beta)
    return basis @ vectors[:, np.argsort(values)]


def sample_rhs(ritz: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """[count, N] unit right-hand sides: Gaussian combinations of the Ritz vectors, smooth half weighted 9x."""
    m = ritz.shape[1]
    weights = torch.ones(m)
    weights[: m // 2] = SMOOTH_WEIGHT
    b = (torch.randn(count, m, generator=generator) * weights) @ ritz.T
    return b / b.norm(dim=1, keepdim=True)


def scale_invariant_loss(net: DirectionNet, operator: torch.Tensor, b: torch.Tensor, shape: tuple[int, ...],
                         fluid: torch.Tensor) -> torch.Tensor:
    """mean over the batch of ||b - alpha A q||^2, q = f(b), alpha = (q . b) / (q . A q)."""
    q = net(b.view(-1, 1, *shape)).view(len(b), -1) * fluid
    aq = (operator @ q.T).T
    alpha = (q * b).sum(1, keepdim=True) / (q * aq).sum(1, keepdim=True).clamp(min=1e-30)
    return ((b - alpha * aq) ** 2).sum(1).mean()


def train(net: DirectionNet, matrix: sp.spmatrix, shape: tuple[int, ...], fluid: np.ndarray, *, steps: int,
          batch_size: int, lr: float, ritz_steps: int, seed: int,
          advance: Callable[[int, float], None] | None = None) -> list[float]:
    """Adam on the scale-invariant loss with fresh Ritz-combination batches; returns the loss per step. Under
    torchrun each of the N processes trains on its slice of a global batch of N ``batch_size`` right-hand sides
    (the same draw on every rank) and gradients are averaged (:mod:`nmkit.core.distributed`), so N processes train
    as one with batch N ``batch_size``."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    ritz = torch.from_numpy(ritz_vectors(matrix, ritz_steps, fluid, rng).astype(np.float32))
    coo = sp.coo_matrix(matrix)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        operator = torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data.astype(np.float32), coo.shape,
                                           check_invariants=True).to_sparse_csr()
    mask = torch.from_numpy(fluid.ravel().astype(np.float32))
    rank, world = distributed.rank_and_world()
    network = DistributedDataParallel(net) if world > 1 else net
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(steps, 1))
    losses = []
    net.train()
    for _ in range(steps):
        optimiser.zero_grad()
        batch = sample_rhs(ritz, batch_size * world, generator)[rank * batch_size:(rank + 1) * batch_size]
        loss = scale_invariant_loss(network, operator, batch, shape, mask)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(distributed.mean(loss))
        if advance is not None:
            advance(1, losses[-1])
    net.eval()
    return losses
