"""Online learners that pick omega from a grid, seeing only iteration counts (and a context).

All losses are iteration counts l >= 1, used as (l - 1) / scale with scale the running mean of (l - 1),
so no bound on the iteration count is needed in advance (Khodak et al. 2024, `learners/*.m`).
Every learner has ``distribution(context) -> p`` over the grid and ``update(arm, context, loss)``,
and its whole state is plain arrays (``state()``/``load()``), so a run can stop and resume.
"""

from __future__ import annotations

import numpy as np

NEWTON_STEPS = 20


class _Scale:
    """Running mean of (loss - 1): the normaliser of every learner's losses."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, loss: float) -> None:
        self.total += loss - 1.0
        self.count += 1

    @property
    def value(self) -> float:
        return max(self.total / self.count, 1e-12) if self.count else 1.0


def tsallis_probabilities(losses: np.ndarray, eta: float) -> np.ndarray:
    """FTRL with 1/2-Tsallis entropy: p_i = 4 / (eta (L_i - x))^2 with x such that sum p = 1 (Newton).

    Starting at x = min L - 2/eta (where sum p >= 1) Newton's steps on the convex increasing
    sum p(x) - 1 approach the root from the right and never cross the pole at min L.
    """
    x = losses.min() - 2.0 / eta
    for _ in range(NEWTON_STEPS):
        p = 4.0 / (eta * (losses - x)) ** 2
        x -= (p.sum() - 1.0) / (eta * np.sum(p**1.5))
    p = 4.0 / (eta * (losses - x)) ** 2
    if not np.all(np.isfinite(p)) or p.sum() <= 0:
        return np.full(len(losses), 1.0 / len(losses))
    return p / p.sum()


class TsallisINF:
    """Tsallis-INF (Zimmert and Seldin 2021) with eta_t = 2 / sqrt(t) and importance-weighted losses."""

    name = "tsallis-inf"

    def __init__(self, arms: int) -> None:
        self.cumulative = np.zeros(arms)  # importance-weighted (loss - 1)
        self.scale = _Scale()
        self.t = 0
        self._last = np.full(arms, 1.0 / arms)

    def distribution(self, context: float) -> np.ndarray:
        eta = 2.0 / np.sqrt(self.t + 1)
        self._last = tsallis_probabilities(self.cumulative / self.scale.value, eta)
        return self._last

    def update(self, arm: int, context: float, loss: float) -> None:
        self.t += 1
        self.scale.add(loss)
        self.cumulative[arm] += (loss - 1.0) / self._last[arm]

    def state(self) -> dict:
        return {"cumulative": self.cumulative, "scale": np.array([self.scale.total, self.scale.count]),
                "t": np.array(self.t), "last": self._last}

    def load(self, state: dict) -> None:
        self.cumulative = np.array(state["cumulative"], np.float64)
        self.scale.total, self.scale.count = float(state["scale"][0]), int(state["scale"][1])
        self.t = int(state["t"])
        self._last = np.array(state["last"], np.float64)


class TsallisINFCB:
    """Tsallis-INF-CB: the context range cut into ``bins`` bins, one Tsallis-INF per bin."""

    name = "tsallis-inf-cb"

    def __init__(self, arms: int, low: float, high: float, bins: int = 5) -> None:
        self.edges = np.linspace(low, high, bins + 1)[1:-1]
        self.learners = [TsallisINF(arms) for _ in range(bins)]

    def _bin(self, context: float) -> TsallisINF:
        return self.learners[int(np.searchsorted(self.edges, context))]

    def distribution(self, context: float) -> np.ndarray:
        return self._bin(context).distribution(context)

    def update(self, arm: int, context: float, loss: float) -> None:
        self._bin(context).update(arm, context, loss)

    def state(self) -> dict:
        return {f"{i}.{k}": v for i, learner in enumerate(self.learners) for k, v in learner.state().items()}

    def load(self, state: dict) -> None:
        for i, learner in enumerate(self.learners):
            learner.load({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(f"{i}.")})


class ChebCB:
    """ChebCB: per-arm least squares on Chebyshev features of the context, inverse-gap weighting.

    The context is mapped to [-1, 1] and expanded in T_0..T_{degree-1}; arm i predicts its normalised
    loss y_i = theta_i . phi(c); every non-greedy arm gets 1 / (d + eta (y_i - y_best)) and the greedy arm
    the rest (SquareCB, Foster and Rakhlin 2020). eta = 2 t sqrt(d t / (R + t / 100)) grows about linearly
    in t, R being the squared error of past predictions of the played arms (as ``learners/ChebCB.m``,
    without its box-constrained refit).
    """

    name = "chebcb"

    def __init__(self, arms: int, low: float, high: float, degree: int = 6) -> None:
        self.low, self.high, self.degree = low, high, degree
        self.gram = np.zeros((arms, degree, degree))
        self.moment = np.zeros((arms, degree))  # raw (loss - 1) targets: least squares is linear
        self.scale = _Scale()
        self.t = 0
        self.squared_error = 0.0
        self._predicted = 0.0

    def features(self, context: float) -> np.ndarray:
        z = np.clip(2.0 * (context - self.low) / (self.high - self.low) - 1.0, -1.0, 1.0)
        return np.polynomial.chebyshev.chebvander(np.array([z]), self.degree - 1)[0]

    def predictions(self, context: float) -> np.ndarray:
        phi = self.features(context)
        raw = np.array([phi @ (np.linalg.pinv(g, rcond=1e-10) @ m) for g, m in zip(self.gram, self.moment,
                                                                                  strict=True)])
        return raw / self.scale.value

    def distribution(self, context: float) -> np.ndarray:
        arms = len(self.gram)
        predictions = self.predictions(context)
        best = int(np.argmin(predictions))
        eta = 2.0 * self.t * np.sqrt(arms * self.t / (self.squared_error + self.t / 100.0)) if self.t else 0.0
        p = 1.0 / (arms + eta * (predictions - predictions[best]))
        p[best] = 0.0
        p[best] = 1.0 - p.sum()
        return p

    def update(self, arm: int, context: float, loss: float) -> None:
        predicted = self.predictions(context)[arm]
        self.t += 1
        self.scale.add(loss)
        self.squared_error += (predicted - (loss - 1.0) / self.scale.value) ** 2
        phi = self.features(context)
        self.gram[arm] += np.outer(phi, phi)
        self.moment[arm] += phi * (loss - 1.0)

    def state(self) -> dict:
        return {"gram": self.gram, "moment": self.moment, "scale": np.array([self.scale.total, self.scale.count]),
                "t": np.array(self.t), "squared_error": np.array(self.squared_error)}

    def load(self, state: dict) -> None:
        self.gram, self.moment = np.array(state["gram"]), np.array(state["moment"])
        self.scale.total, self.scale.count = float(state["scale"][0]), int(state["scale"][1])
        self.t = int(state["t"])
        self.squared_error = float(state["squared_error"])
