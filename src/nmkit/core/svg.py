"""Minimal SVG line charts (no plotting dependency): curves a person can open in any browser.

Axes carry several ticks at round values (1, 2 or 5 times a power of ten) with light grid lines and axis titles;
every series has its own colour, dash pattern and marker shape, so overlapping curves stay distinguishable even in
grey; the legend sits to the right of the plot area, never over the data.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")
DASHES = ("", "7 4", "2 3", "9 3 2 3", "4 2", "12 4")
MARKERS = ("circle", "square", "triangle", "diamond", "cross", "bar")
MARKERS_PER_SERIES = 8
CHAR_WIDTH = 7.0  # px per character at font-size 12, for sizing the legend


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """About ``count`` evenly spaced round values (step 1, 2 or 5 x 10^k) whose span covers [low, high]."""
    if not high - low > 1e-9 * max(abs(low), abs(high), 1e-100):  # a flat series: a window around its value
        half = abs(low) / 2 if abs(low) > 1e-100 else 1.0
        low, high = low - half, high + half
    raw = (high - low) / count
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(f * power for f in (1, 2, 5, 10) if f * power >= raw * (1 - 1e-9))
    first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
    return np.arange(first, last + 1) * step


def tick_label(value: float, step: float) -> str:
    """A tick value with as many decimals as the step needs (no 0.30000000000000004)."""
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
        return f"{value:.3g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return f"{value:,.{decimals}f}"


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    r = 3.5
    if shape == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{colour}"/>'
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" height="{2 * r}" fill="{colour}"/>'
    if shape == "triangle":
        return f'<polygon points="{x:.1f},{y - r - 1:.1f} {x - r:.1f},{y + r:.1f} {x + r:.1f},{y + r:.1f}" ' \
               f'fill="{colour}"/>'
    if shape == "diamond":
        return f'<polygon points="{x:.1f},{y - r - 1:.1f} {x + r:.1f},{y:.1f} {x:.1f},{y + r + 1:.1f} ' \
               f'{x - r:.1f},{y:.1f}" fill="{colour}"/>'
    if shape == "cross":
        return f'<path d="M{x - r:.1f},{y - r:.1f}L{x + r:.1f},{y + r:.1f}M{x - r:.1f},{y + r:.1f}L{x + r:.1f},' \
               f'{y - r:.1f}" stroke="{colour}" stroke-width="2"/>'
    return f'<path d="M{x - r:.1f},{y:.1f}L{x + r:.1f},{y:.1f}" stroke="{colour}" stroke-width="3"/>'


def _y_range(values: np.ndarray) -> tuple[float, float]:
    """The data's range; 0 is included when every value is non-negative and 0 is not far below the data."""
    low, high = float(values.min()), float(values.max())
    if low >= 0 and low <= 0.5 * high:
        low = 0.0
    return low, high


def line_chart(x: np.ndarray, series: dict[str, np.ndarray], *, x_label: str, y_label: str,
               width: int = 720, height: int = 420) -> str:
    """One polyline per series over shared x (non-finite points leave gaps), with ticked axes, axis titles and a
    legend beside the plot. ``width`` is the plot's, the legend adds its own width."""
    x = np.asarray(x, np.float64)
    curves = {name: np.asarray(y, np.float64) for name, y in series.items()}
    finite = np.concatenate([y[np.isfinite(y)] for y in curves.values()] + [np.zeros(0)])
    x_ticks = nice_ticks(float(x.min()), float(x.max())) if len(x) else nice_ticks(0.0, 1.0)
    y_ticks = nice_ticks(*_y_range(finite)) if len(finite) else nice_ticks(0.0, 1.0)
    left, right, top, bottom = 78, 16, 16, 58
    legend_width = 48 + CHAR_WIDTH * max((len(name) for name in curves), default=0)

    def px(a):
        return left + (a - x_ticks[0]) / (x_ticks[-1] - x_ticks[0]) * (width - left - right)

    def py(a):
        return height - bottom - (a - y_ticks[0]) / (y_ticks[-1] - y_ticks[0]) * (height - top - bottom)

    total = width + legend_width
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total:.0f}" height="{height}" '
             f'viewBox="0 0 {total:.0f} {height}" font-family="sans-serif" font-size="12">',
             '<rect width="100%" height="100%" fill="white"/>']
    x_step, y_step = x_ticks[1] - x_ticks[0], y_ticks[1] - y_ticks[0]
    for value in x_ticks:
        parts.append(f'<line x1="{px(value):.1f}" y1="{top}" x2="{px(value):.1f}" y2="{height - bottom}" '
                     f'stroke="#e5e5e5"/>')
        parts.append(f'<text x="{px(value):.1f}" y="{height - bottom + 16}" text-anchor="middle">'
                     f'{tick_label(value, x_step)}</text>')
    for value in y_ticks:
        parts.append(f'<line x1="{left}" y1="{py(value):.1f}" x2="{width - right}" y2="{py(value):.1f}" '
                     f'stroke="#e5e5e5"/>')
        parts.append(f'<text x="{left - 6}" y="{py(value) + 4:.1f}" text-anchor="end">'
                     f'{tick_label(value, y_step)}</text>')
    parts += [f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" '
              f'fill="none" stroke="black"/>',
              f'<text x="{(width + left - right) / 2:.0f}" y="{height - 18}" text-anchor="middle">'
              f'{escape(x_label)}</text>',
              f'<text transform="translate(16 {(height - bottom + top) / 2:.0f}) rotate(-90)" '
              f'text-anchor="middle">{escape(y_label)}</text>']
    step = max(1, len(x) // 1000)  # at most ~1000 points per curve
    for index, (name, y) in enumerate(curves.items()):
        colour, dash, marker = (COLOURS[index % len(COLOURS)], DASHES[index % len(DASHES)],
                                MARKERS[index % len(MARKERS)])
        stroke = f'stroke="{colour}" stroke-width="2"' + (f' stroke-dasharray="{dash}"' if dash else "")
        ok = np.isfinite(y)
        for run in np.split(np.arange(len(y)), np.flatnonzero(np.diff(ok.astype(np.int8))) + 1):
            run = run[ok[run]][::step]
            if len(run):
                points = " ".join(f"{px(x[i]):.1f},{py(y[i]):.1f}" for i in run)
                parts.append(f'<polyline fill="none" {stroke} points="{points}"/>')
        shown = np.flatnonzero(ok)
        if len(shown):  # markers at evenly spaced points, offset per series so coinciding curves show each one
            picks = np.linspace(0, len(shown) - 1, min(MARKERS_PER_SERIES, len(shown)))
            offset = index / (len(curves) * MARKERS_PER_SERIES) * (len(shown) - 1)
            for i in shown[np.unique(np.minimum(np.round(picks + offset), len(shown) - 1).astype(int))]:
                parts.append(_marker(marker, px(x[i]), py(y[i]), colour))
        row = top + 8 + 20 * index
        sample_x = width + 4
        parts.append(f'<line x1="{sample_x}" y1="{row}" x2="{sample_x + 32}" y2="{row}" {stroke}/>')
        parts.append(_marker(marker, sample_x + 16, row, colour))
        parts.append(f'<text x="{sample_x + 40}" y="{row + 4}">{escape(name)}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)
