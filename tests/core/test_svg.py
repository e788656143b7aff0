"""SVG charts: round ticks that cover the data, distinguishable series, the legend outside the plot area."""

import math
from xml.etree import ElementTree

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from nmkit.core.svg import line_chart, nice_ticks, tick_label

NS = "{http://www.w3.org/2000/svg}"


@given(st.floats(-1e9, 1e9), st.floats(0, 1e9))
def test_ticks_are_round_evenly_spaced_and_cover_the_range(low, span):
    high = low + span
    ticks = nice_ticks(low, high)
    assert 3 <= len(ticks) <= 12
    assert ticks[0] <= low + 1e-9 * max(1.0, abs(low)) and ticks[-1] >= high - 1e-9 * max(1.0, abs(high))
    step = ticks[1] - ticks[0]
    np.testing.assert_allclose(np.diff(ticks), step, rtol=1e-6)
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - f) for f in (1, 2, 5, 10)) < 1e-6


def test_tick_labels_have_the_step_s_decimals():
    assert [tick_label(v, 0.2) for v in nice_ticks(0.1, 0.98)] == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert tick_label(1500.0, 500.0) == "1,500"


def _chart(series, x=None):
    x = np.arange(len(next(iter(series.values())))) if x is None else x
    return ElementTree.fromstring(line_chart(x, series, x_label="systems solved", y_label="iterations"))


def test_series_differ_in_colour_and_dash_and_the_legend_is_beside_the_plot():
    root = _chart({"a": np.arange(50.0), "b": np.arange(50.0), "c": np.arange(50.0) * 2})
    lines = root.findall(f"{NS}polyline")
    assert len(lines) == 3
    styles = {(p.get("stroke"), p.get("stroke-dasharray")) for p in lines}
    assert len(styles) == 3 and len({dash for _, dash in styles}) == 3
    frame = next(r for r in root.findall(f"{NS}rect") if r.get("fill") == "none")
    plot_right = float(frame.get("x")) + float(frame.get("width"))
    names = [t for t in root.findall(f"{NS}text") if t.text in ("a", "b", "c")]
    assert len(names) == 3 and all(float(t.get("x")) > plot_right for t in names)
    data_x = [float(v.split(",")[0]) for p in lines for v in p.get("points").split()]
    assert max(data_x) <= plot_right + 0.1


def test_a_non_finite_value_leaves_a_gap_and_titles_are_escaped():
    y = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    root = ElementTree.fromstring(line_chart(np.arange(5), {"x < y": y}, x_label="a & b", y_label="c"))
    assert len(root.findall(f"{NS}polyline")) == 2
    assert {"x < y", "a & b"} <= {t.text for t in root.findall(f"{NS}text")}
