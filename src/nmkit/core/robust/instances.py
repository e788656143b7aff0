"""The two-stage robust knapsack with repair (Arslan and Detienne, IJOC 2022), its generator and its text format.

Item i has nominal profit pbar_i, maximum degradation phat_i, weight c_i, repair weight t_i and rejection cost
f_i; the capacity is C and the uncertainty budget Gamma = budget_factor * n. Generator (Arslan and Detienne,
as in Neur2RO's ``Knapsack.sample_new_inst``), with R = 1000 and H = 100:
    c ~ U[1, R];  C = h / (H + 1) * sum(c)
    pbar: UN ~ U[1, R]; WC ~ U[c - R/20, c + R/20]; ASC ~ U[c + R/10 - R/1000, c + R/10 + R/1000]; SC = c + R/10
    phat = pbar * U[(1 - delta)/2, (1 + delta)/2];  f = pbar * U[1.1, 1.5]
    t: UN ~ U[1, c]; WC ~ U[phat/2 - R/40, phat/2 + R/40]; ASC ~ U[phat/2 + c/10 -+ R/1000]; SC = phat/2 + c/10
File: a line ``n C Gamma``, then one line ``pbar phat t c f`` per item.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nmkit.core import io
from nmkit.core.errors import InputError

CORRELATIONS = ("UN", "WC", "ASC", "SC")
R, H = 1000.0, 100.0


@dataclass(frozen=True)
class Knapsack:
    pbar: np.ndarray
    phat: np.ndarray
    t: np.ndarray
    c: np.ndarray
    f: np.ndarray
    capacity: float
    gamma: float

    @property
    def n(self) -> int:
        return len(self.c)


def generate_knapsack(n: int, correlation: str, h: float, delta: float, budget_factor: float,
                      rng: np.random.Generator) -> Knapsack:
    if correlation not in CORRELATIONS:
        raise InputError(f"correlation {correlation!r}: choose one of {', '.join(CORRELATIONS)}")
    if not 0 < budget_factor <= 1:
        raise InputError(f"budget factor {budget_factor}: expected a value in (0, 1]")
    c = rng.uniform(1, R, n)
    capacity = h / (H + 1) * c.sum()
    pbar = {"UN": lambda: rng.uniform(1, R, n), "WC": lambda: rng.uniform(c - R / 20, c + R / 20),
            "ASC": lambda: rng.uniform(c + R / 10 - R / 1000, c + R / 10 + R / 1000),
            "SC": lambda: c + R / 10}[correlation]()
    phat = pbar * rng.uniform((1 - delta) / 2, (1 + delta) / 2, n)
    f = pbar * rng.uniform(1.1, 1.5, n)
    t = {"UN": lambda: rng.uniform(1, c), "WC": lambda: rng.uniform(phat / 2 - R / 40, phat / 2 + R / 40),
         "ASC": lambda: rng.uniform(phat / 2 + c / 10 - R / 1000, phat / 2 + c / 10 + R / 1000),
         "SC": lambda: phat / 2 + c / 10}[correlation]()
    return Knapsack(pbar, phat, t, c, f, float(capacity), budget_factor * n)


def write_knapsack(instance: Knapsack) -> str:
    lines = [f"{instance.n} {instance.capacity!r} {instance.gamma!r}"]
    lines += [" ".join(repr(float(v)) for v in row)
              for row in zip(instance.pbar, instance.phat, instance.t, instance.c, instance.f, strict=True)]
    return "\n".join(lines) + "\n"


MAX_MAGNITUDE = 1e12
"""The largest number an instance file may hold: MILP solvers work to absolute tolerances (HiGHS: 1e-6 feasibility,
1e20 is infinity), so data far beyond the benchmarks' ranges (profits ~1e4) would be solved to noise."""


def read_knapsack(path: Path) -> Knapsack:
    """An instance file; a leading index token on item lines (Neur2RO's copies) is accepted. Repair weights
    and profits may be negative: the generator's WC and ASC ranges reach below zero for light items."""
    expected = "'n C Gamma' then n lines 'pbar phat t c f'"
    rows = io.read_number_lines(path, f"instance {path}", expected, limit=MAX_MAGNITUDE)
    if len(rows[0]) != 3 or rows[0][0] != int(rows[0][0]) or rows[0][0] < 1:
        raise InputError(f"instance {path}: the first line must be 'n C Gamma' with a whole n >= 1")
    if any(len(row) not in (5, 6) for row in rows[1:]):
        raise InputError(f"instance {path}: an item line without 5 numbers (and an optional leading index); "
                         f"expected {expected}")
    n, capacity, gamma = int(rows[0][0]), rows[0][1], rows[0][2]
    items = np.array([row[-5:] for row in rows[1:]]).reshape(-1, 5)
    if items.shape != (n, 5):
        raise InputError(f"instance {path}: header says {n} items, found {len(items)} item lines of 5 numbers")
    if np.any(items[:, 3] <= 0) or capacity <= 0:
        raise InputError(f"instance {path}: item weights (4th column) and the capacity must be positive")
    if not 0 < gamma <= n:
        raise InputError(f"instance {path}: Gamma must lie in (0, n], found {gamma}")
    return Knapsack(*items.T, capacity=capacity, gamma=gamma)
