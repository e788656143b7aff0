"""RD's dynamic program against brute force; M-FAC's matrix-free inverse Fisher against a dense inverse."""

import itertools

import numpy as np
import pytest
import torch

from nmkit.core.prune.mfac import InverseFisher
from nmkit.core.prune.rd import allocate


def test_rd_allocation_equals_brute_force_on_a_three_layer_toy():
    rng = np.random.default_rng(0)
    grid = np.linspace(0, 1, 6)
    sizes = [30, 70, 200]
    for trial in range(20):
        curves = np.sort(rng.random((3, len(grid))), axis=1) * rng.random((3, 1)) * 10  # increasing in a
        sparsity = [0.3, 0.5, 0.8][trial % 3]
        budget = int(np.floor((1 - sparsity) * sum(sizes)))
        best_cost = np.inf
        for picks in itertools.product(range(len(grid)), repeat=3):
            survivors = sum(n - round(grid[j] * n) for n, j in zip(sizes, picks, strict=True))
            cost = sum(curves[i, j] for i, j in enumerate(picks))
            if survivors <= budget and cost < best_cost:
                best_cost = cost
        ours = allocate(curves, sizes, grid, sparsity)
        assert sum(curves[i, list(grid).index(a)] for i, a in enumerate(ours)) == pytest.approx(best_cost)
        assert sum(n - round(a * n) for n, a in zip(sizes, ours, strict=True)) <= budget
    floors = [0.4, 0.0, 0.0]
    assert allocate(curves, sizes, grid, 0.5, floors)[0] >= 0.4


@pytest.mark.parametrize("block", [0, 4, 7])
def test_inverse_fisher_matches_a_dense_inverse(block):
    generator = torch.Generator().manual_seed(block)
    m, d, damp = 6, 13, 1e-2
    grads = torch.randn(m, d, generator=generator, dtype=torch.float64)
    dense = torch.zeros(d, d, dtype=torch.float64)
    size = block if block else d
    for start in range(0, d, size):  # block-diagonal Fisher
        g = grads[:, start : start + size]
        dense[start : start + size, start : start + size] = damp * torch.eye(g.shape[1]) + g.T @ g / m
    inverse = torch.linalg.inv(dense)
    ours = InverseFisher(grads, damp, block)
    x = torch.randn(d, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(ours.times(x), inverse @ x, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(ours.diagonal(), inverse.diagonal(), rtol=1e-7, atol=1e-9)
