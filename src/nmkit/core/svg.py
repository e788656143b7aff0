"""Minimal SVG line charts (no plotting dependency): curves a person can open in any browser."""

from __future__ import annotations

from html import escape

import numpy as np

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def line_chart(x: np.ndarray, series: dict[str, np.ndarray], *, x_label: str, y_label: str,
               width: int = 720, height: int = 420) -> str:
    """One polyline per series over shared x, with axes, end-point tick labels and a legend."""
    left, right, top, bottom = 80, 20, 20, 60
    x = np.asarray(x, np.float64)
    values = np.concatenate([np.asarray(v, np.float64) for v in series.values()])
    x_low, x_high = float(x.min()), float(x.max()) if x.max() > x.min() else float(x.min()) + 1
    y_low, y_high = 0.0, float(values.max()) if values.max() > 0 else 1.0

    def px(a):
        return left + (a - x_low) / (x_high - x_low) * (width - left - right)

    def py(a):
        return height - bottom - (a - y_low) / (y_high - y_low) * (height - top - bottom)

    step = max(1, len(x) // 1000)  # at most ~1000 points per curve
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="12"><rect width="100%" height="100%" fill="white"/>',
             f'<line x1="{left}" y1="{py(0):.1f}" x2="{width - right}" y2="{py(0):.1f}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{py(0):.1f}" stroke="black"/>',
             f'<text x="{left}" y="{height - bottom + 16}">{x_low:g}</text>',
             f'<text x="{width - right}" y="{height - bottom + 16}" text-anchor="end">{x_high:g}</text>',
             f'<text x="{left - 6}" y="{py(y_high) + 4:.1f}" text-anchor="end">{y_high:.3g}</text>',
             f'<text x="{left - 6}" y="{py(0) + 4:.1f}" text-anchor="end">0</text>',
             f'<text x="{(width + left) / 2:.0f}" y="{height - 20}" text-anchor="middle">{escape(x_label)}</text>',
             f'<text transform="translate(18 {(height - bottom + top) / 2:.0f}) rotate(-90)" '
             f'text-anchor="middle">{escape(y_label)}</text>']
    for index, (name, y) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        y = np.asarray(y, np.float64)
        points = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x[::step], y[::step], strict=True))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>')
        parts.append(f'<text x="{left + 12}" y="{top + 16 * (index + 1)}" fill="{colour}">{escape(name)}</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)
