"""Where the bits go: the average code length of every pixel as a heat map, and decoded samples beside their
originals, as one RGB picture (``bits.png`` of ``compress-pc --out``).

A pixel's code length is -log2 of the width of its coder interval over 2^P (the quantised conditional
p(x_v | earlier variables)), so the map adds up, over pixels, to the payload's bits per item.
"""

from __future__ import annotations

import math

import numpy as np

from nmkit.core import raster
from nmkit.core.pc.coding import TOTAL, Plan, item_intervals
from nmkit.core.pc.model import HCLT

MAP_SIDE = 224  # pixels the heat map spans at most
SAMPLES = 6
MARGIN = 8
HEADING = "mean bits per pixel"
_VIRIDIS = np.array([[0.267, 0.005, 0.329], [0.230, 0.322, 0.546], [0.128, 0.567, 0.551], [0.369, 0.789, 0.383],
                     [0.993, 0.906, 0.144]])
"""Anchors of a perceptually ordered colour map (dark violet = few bits, yellow = many)."""


def bits_per_variable(model: HCLT, items: np.ndarray) -> np.ndarray:
    """[D] average bits each variable costs over ``items`` [N, D] (variable index order)."""
    plan = Plan.of(model)
    d = model.variables
    starts, freqs = np.empty(d, np.int64), np.empty(d, np.int64)
    total = np.zeros(d)
    for item in np.ascontiguousarray(items, np.int64):
        item_intervals(item.copy(), starts, freqs, *plan.arrays())
        total[plan.order] += np.log2(TOTAL / freqs)
    return total / max(len(items), 1)


def colour_map(values: np.ndarray, top: float) -> np.ndarray:
    """RGB [..., 3] of values in [0, top] along the colour map; NaN (a grid's padding) is white."""
    blank = np.isnan(values)
    position = np.clip(np.where(blank, 0.0, values) / max(top, 1e-12), 0, 1) * (len(_VIRIDIS) - 1)
    low = np.minimum(position.astype(int), len(_VIRIDIS) - 2)
    weight = (position - low)[..., None]
    return np.where(blank[..., None], 1.0, (1 - weight) * _VIRIDIS[low] + weight * _VIRIDIS[low + 1])


def as_grid(values: np.ndarray, item_shape: tuple[int, ...]) -> np.ndarray:
    """A [H, W] view of per-variable values: images as themselves (channels averaged), a flat vector of square
    length (MNIST's 784) as the square, anything else as rows of at most 64 (the last row padded with NaN)."""
    if len(item_shape) in (2, 3) and int(np.prod(item_shape)) == len(values):
        grid = values.reshape(item_shape)
        return grid.mean(axis=2) if grid.ndim == 3 else grid
    side = math.isqrt(len(values))
    if side * side == len(values) and side > 1:
        return values.reshape(side, side)
    width = min(64, len(values))
    padded = np.full(-(-len(values) // width) * width, np.nan)
    padded[: len(values)] = values
    return padded.reshape(-1, width)


def picture(model: HCLT, items: np.ndarray, item_shape: tuple[int, ...], originals: np.ndarray,
            decoded: np.ndarray) -> np.ndarray:
    """The heat map with its scale on the left; originals (top row) and their decodings (bottom row) on the right."""
    bits = as_grid(bits_per_variable(model, items), item_shape)
    top = float(np.nanmax(bits)) if np.isfinite(bits).any() else 1.0
    scale = max(1, MAP_SIDE // max(bits.shape))
    heat = np.kron(colour_map(bits, top), np.ones((scale, scale, 1)))
    samples = [as_grid(np.asarray(x, float).ravel(), item_shape) for x in (*originals[:SAMPLES], *decoded[:SAMPLES])]
    peak = max(float(np.nanmax(s)) for s in samples) or 1.0
    tiles = [np.kron(np.nan_to_num(s / peak, nan=1.0), np.ones((scale // 2 or 1, scale // 2 or 1))) for s in samples]
    tile_h, tile_w = tiles[0].shape
    count = len(tiles) // 2
    text_h = 2 * raster.GLYPH_HEIGHT + 6
    bar_h = 12
    width = MARGIN * 5 + max(heat.shape[1], raster.text_width(HEADING, 2)) + \
        max(count * (tile_w + 4), raster.text_width("originals / decoded", 2))
    height = MARGIN * 2 + text_h + max(heat.shape[0] + bar_h + text_h + 4, 2 * (tile_h + 4) + text_h)
    image = np.ones((height, width, 3))
    raster.draw_text(image, HEADING, MARGIN, MARGIN)
    y = MARGIN + text_h
    image[y:y + heat.shape[0], MARGIN:MARGIN + heat.shape[1]] = heat
    bar_y = y + heat.shape[0] + 4
    ramp = colour_map(np.linspace(0, top, heat.shape[1]), top)
    image[bar_y:bar_y + bar_h, MARGIN:MARGIN + heat.shape[1]] = ramp[None]
    raster.draw_text(image, "0", bar_y + bar_h + 3, MARGIN)
    label = f"{top:.2f}"
    raster.draw_text(image, label, bar_y + bar_h + 3, MARGIN + heat.shape[1] - raster.text_width(label, 2))
    left = MARGIN * 4 + max(heat.shape[1], raster.text_width(HEADING, 2))
    raster.draw_text(image, "originals / decoded", MARGIN, left)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, count)
        ty, tx = y + row * (tile_h + 4), left + column * (tile_w + 4)
        image[ty:ty + tile_h, tx:tx + tile_w] = tile[..., None]
    return image
