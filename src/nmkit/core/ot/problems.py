"""Transport problems: from files (points or a cost matrix, optional weights) or built in.

Built-in problems are seeded and need no download: two Gaussian clouds; the colour palettes of two
generated images (for colour transfer); and mixture-of-experts routing, where experts are the
sources, tokens the targets (each token gets at most k experts) and both marginals are uniform, so
expert load is balanced by construction (Liu, Puigcerver and Blondel 2023, Sec. 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.cluster.vq
import scipy.spatial.distance

from nmkit.core import io, memory
from nmkit.core.errors import InputError
from nmkit.core.ot.config import OTConfig


@dataclass
class Points:
    """Source and target point clouds whose pairwise costs are computed where they are needed."""

    source: np.ndarray  # [m, d] float64
    target: np.ndarray  # [n, d]
    metric: str

    def costs(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """cost(source[rows], target[cols]) pair by pair."""
        difference = self.source[rows] - self.target[cols]
        if self.metric == "cityblock":
            return np.abs(difference).sum(-1)
        squared = (difference * difference).sum(-1)
        return np.sqrt(squared) if self.metric == "euclidean" else squared


@dataclass
class Problem:
    cost: np.ndarray | None  # [batch, m, n] float64; None: point clouds, costs computed from ``points``
    a: np.ndarray  # [batch, m]
    b: np.ndarray  # [batch, n]
    extras: dict = field(default_factory=dict)  # colour transfer: images and palettes; moe-routing: a flag
    points: Points | None = None
    name: str = "the problem"  # what a memory refusal names

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.cost.shape if self.cost is not None else (1, len(self.a[0]), len(self.b[0]))

    def cost_at(self, batch: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.cost[batch, rows, cols] if self.cost is not None else self.points.costs(rows, cols)

    def dense_cost(self, copies: int) -> np.ndarray:
        """The [batch, m, n] cost matrix, built from the points if need be, after checking that ``copies`` arrays
        of its size fit in memory."""
        require_memory(*self.shape, self.name, copies)
        if self.cost is None:  # finite: no cost exceeds the clouds' bounding-box extent (checked on reading)
            self.cost = scipy.spatial.distance.cdist(self.points.source, self.points.target, self.points.metric)[None]
        return self.cost


IMAGE_SIDE = 96
"""Side of the generated colour-transfer images (their pixels bound the palette size)."""


def require_memory(batch: int, m: int, n: int, what: str, copies: int = 1) -> None:
    """Refuse before allocating when ``copies`` float64 arrays of ``batch`` m x n cost matrices will not fit."""
    if min(m, n) < 1:
        raise InputError(f"{what}: needs at least one source and one target point, found {m} and {n}")
    memory.require(float(batch) * m * n * 8 * copies, f"{what} ({batch} x {m} x {n} costs)")


def build_problem(config: OTConfig) -> Problem:
    rng = np.random.default_rng(config.seed)
    if config.problem == "gaussians":
        return _gaussians(config.size, config.metric, rng)
    if config.problem == "color-transfer":
        if config.size > IMAGE_SIDE**2:
            raise InputError(f"field 'size': color-transfer palettes have at most {IMAGE_SIDE**2} colours (one per "
                             f"pixel), found {config.size}")
        return color_transfer_problem(config.size, config.metric, rng)
    if config.problem == "moe-routing":
        require_memory(config.groups, config.experts, config.size, "problem moe-routing", 2)
        return _moe_routing(config.size, config.experts, config.groups, rng)
    return _from_files(config)


def _gaussians(size: int, metric: str, rng: np.random.Generator) -> Problem:
    source = rng.normal(0.0, 1.0, (size, 2))
    target = rng.normal(0.0, 1.0, (size, 2)) @ np.array([[1.0, 0.6], [0.0, 0.5]]) + np.array([3.0, 1.0])
    return Problem(None, np.full((1, size), 1 / size), np.full((1, size), 1 / size),
                   points=Points(source, target, metric), name="problem gaussians")


def _moe_routing(tokens: int, experts: int, groups: int, rng: np.random.Generator) -> Problem:
    logits = rng.normal(0.0, 1.5, (groups, tokens, experts)) + rng.normal(0.0, 1.0, (1, 1, experts))
    gates = np.exp(logits - logits.max(-1, keepdims=True))
    gates /= gates.sum(-1, keepdims=True)
    cost = -gates.transpose(0, 2, 1)  # [groups, experts, tokens]: cheap where the router likes the pair
    return Problem(cost, np.full((groups, experts), 1 / experts), np.full((groups, tokens), 1 / tokens),
                   extras={"routing": True})


def routing_report(problem: Problem, batch: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                   values: np.ndarray) -> dict:
    """Expert load of the transport routing vs greedy top-1 routing (each token to its best expert)."""
    groups, experts, tokens = problem.cost.shape
    main = np.zeros((groups, tokens), np.int64)
    weight = np.zeros((groups, tokens))
    for g, e, t, v in zip(batch, rows, cols, values, strict=True):
        if v > weight[g, t]:
            main[g, t], weight[g, t] = e, v
    greedy = np.argmin(problem.cost, axis=1)  # [groups, tokens]
    load = lambda choice: np.stack([np.bincount(c, minlength=experts) for c in choice])  # noqa: E731
    capacity = tokens / experts
    return {"capacity": capacity,
            "transport_load_min_max": [int(load(main).min()), int(load(main).max())],
            "greedy_top1_load_min_max": [int(load(greedy).min()), int(load(greedy).max())],
            "tokens_on_their_top1_expert": float(np.mean(main == greedy))}


def generated_images(rng: np.random.Generator, side: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Two RGB images in [0, 1]: a warm scene of discs on a gradient, and a cool one of stripes."""
    y, x = np.mgrid[0:side, 0:side] / (side - 1)
    warm = np.stack([0.9 - 0.3 * y, 0.35 + 0.3 * x, 0.15 + 0.1 * x * y], axis=-1)
    for _ in range(6):
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.05, 0.2)
        warm[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform([0.6, 0.1, 0.0], [1.0, 0.6, 0.3])
    cool = np.stack([0.1 + 0.2 * np.sin(8 * x) ** 2, 0.3 + 0.4 * y, 0.6 + 0.35 * np.cos(5 * (x + y)) ** 2],
                    axis=-1)
    noise = lambda: rng.normal(0, 0.02, (side, side, 3))  # noqa: E731
    return np.clip(warm + noise(), 0, 1), np.clip(cool + noise(), 0, 1)


def color_transfer_problem(colors: int, metric: str, rng: np.random.Generator) -> Problem:
    source_image, target_image = generated_images(rng, IMAGE_SIDE)
    palettes = []
    for image in (source_image, target_image):
        pixels = image.reshape(-1, 3)
        centroids, labels = scipy.cluster.vq.kmeans2(pixels, colors, minit="++", seed=rng, iter=20)
        weights = np.bincount(labels, minlength=colors).astype(np.float64)
        palettes.append((centroids, labels, weights / weights.sum()))
    (source_colors, source_labels, a), (target_colors, _, b) = palettes
    a, b = np.maximum(a, 1e-12), np.maximum(b, 1e-12)  # k-means may leave a cluster empty
    cost = scipy.spatial.distance.cdist(source_colors, target_colors, metric)
    images = {"source": source_image, "target": target_image, "source_labels": source_labels,
              "target_colors": target_colors}
    return Problem(cost[None], (a / a.sum())[None], (b / b.sum())[None], extras=images)


def recolor(problem: Problem, plan_rows: np.ndarray, plan_cols: np.ndarray, plan_values: np.ndarray) -> np.ndarray:
    """Map each source colour to the plan's barycentre of its target colours (the nearest target colour
    where the plan sends it nowhere) and repaint the source image."""
    images = problem.extras
    m = problem.cost.shape[1]
    mass = np.bincount(plan_rows, weights=plan_values, minlength=m)
    mapped = np.zeros((m, 3))
    np.add.at(mapped, plan_rows, plan_values[:, None] * images["target_colors"][plan_cols])
    nearest = images["target_colors"][np.argmin(problem.cost[0], axis=1)]  # for colours the plan left unused
    palette = np.where(mass[:, None] > 0, mapped / np.maximum(mass, 1e-300)[:, None], nearest)
    return palette[images["source_labels"]].reshape(images["source"].shape)


def _from_files(config: OTConfig) -> Problem:
    points = None
    if config.cost is not None:
        cost = _finite(io.load_npy(config.cost, mmap=True), config.cost, "a cost matrix")
        if cost.ndim == 2:
            cost = cost[None]
        if cost.ndim != 3:
            raise InputError(f"{config.cost}: expected a [m, n] or [batch, m, n] cost matrix, found shape {cost.shape}")
        shape, name = cost.shape, str(config.cost)
    else:
        source = _finite(io.load_npy(config.source), config.source, "points")
        target = _finite(io.load_npy(config.target), config.target, "points")
        if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
            raise InputError(f"source {source.shape} and target {target.shape}: expected [m, d] and [n, d] points "
                             "with the same d")
        if len(source) < 1 or len(target) < 1:
            raise InputError(f"{config.source} and {config.target}: needs at least one source and one target point, "
                             f"found {len(source)} and {len(target)}")
        cost, shape, name = None, (1, len(source), len(target)), f"{config.source} and {config.target}"
        points = Points(source, target, config.metric)
        _check_cost_range(points, name)
    batch, m, n = shape
    a = _weights(config.source_weights, m, "source_weights", config.normalize)
    b = _weights(config.target_weights, n, "target_weights", config.normalize)
    return Problem(cost, np.broadcast_to(a, (batch, m)).copy(), np.broadcast_to(b, (batch, n)).copy(),
                   points=points, name=name)


def _check_cost_range(points: Points, name: str) -> None:
    """The largest possible cost (between the corners of the two clouds' bounding box) must be a finite float64."""
    low = np.minimum(points.source.min(0), points.target.min(0))
    high = np.maximum(points.source.max(0), points.target.max(0))
    with np.errstate(over="ignore", invalid="ignore"):
        extent = Points(low[None], high[None], points.metric).costs(np.zeros(1, int), np.zeros(1, int))
    if not np.all(np.isfinite(extent)):
        raise InputError(f"{name}: the {points.metric} costs between these points overflow float64; rescale the "
                         f"coordinates")


def _weights(path: Path | None, size: int, name: str, normalize: bool) -> np.ndarray:
    if path is None:
        return np.full(size, 1 / size)
    weights = _finite(io.load_npy(path), path, "weights").astype(np.float64)
    if weights.shape != (size,):
        raise InputError(f"{name} {path}: expected shape ({size},) to match the cost matrix, found {weights.shape}")
    if np.any(weights < 0):
        raise InputError(f"{name} {path}: weights must be non-negative")
    total = weights.sum()
    if normalize:
        if total <= 0:
            raise InputError(f"{name} {path}: weights sum to {total}; need a positive total")
        return weights / total
    if abs(total - 1) > 1e-9:
        raise InputError(f"{name} {path}: weights sum to {total:.6g}, not 1 (drop --no-normalize to rescale them)")
    return weights


def _finite(array: np.ndarray, path: Path, what: str) -> np.ndarray:
    """``array`` as float64 (a float64 memory map stays one), refused if it holds NaN or infinities; checked in
    slices, so a large memory-mapped matrix needs no mask of its own size."""
    if not np.issubdtype(array.dtype, np.number):
        raise InputError(f"{path}: expected {what} as numbers, found dtype {array.dtype}")
    flat = np.ravel(array, order="A")  # a view of a C- or Fortran-ordered file
    step = 1 << 22
    if not all(np.isfinite(flat[start:start + step]).all() for start in range(0, flat.size, step)):
        raise InputError(f"{path}: {what} contain NaN or infinite values")
    return array if array.dtype == np.float64 else np.asarray(array, dtype=np.float64)
