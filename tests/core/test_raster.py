"""The bitmap font and attack's labelled grid: glyphs are distinct, text fits where it is wrapped, frames tell
success from failure."""

from types import SimpleNamespace

import numpy as np

from nmkit.core.attack.grid import MET, MISSED, image_grid
from nmkit.core.raster import _GLYPHS, draw_text, text_mask, text_width, wrap


def test_every_glyph_is_distinct_and_widths_add_up():
    shapes = {code for char, code in _GLYPHS.items() if char != " "}
    assert len(shapes) == len(_GLYPHS) - 1
    for text in ("a", "label 7", "3>1>4"):
        assert text_mask(text, 2).shape == (10, text_width(text, 2))


def test_wrapped_lines_fit_and_keep_every_character():
    text = ">".join(str(i) for i in range(20))
    lines = wrap(text, 2, 60)
    assert all(text_width(line, 2) <= 60 for line in lines)
    assert "".join(lines) == text


def test_text_is_clipped_at_the_image_edge():
    image = np.ones((12, 20, 3))
    draw_text(image, "long label text", 8, 10)
    assert (image[8:, 10:] == 0).any() and (image[:8] == 1).all() and (image[:, :10] == 1).all()


def test_grid_rows_and_frames():
    rng = np.random.default_rng(0)
    original = rng.random((3, 1, 8, 8))
    success = np.array([True, False, True])
    result = SimpleNamespace(original=original, adversarial=original + 0.1, success=success, k=2, method="quadattack",
                             labels=np.array([1, 2, 3]), targets=np.array([[4, 5], [6, 7], [8, 9]]),
                             by_method={"quadattack": (original + 0.1, success), "cwk": (original, ~success)})
    image = image_grid(result)
    assert image.ndim == 3 and image.shape[2] == 3 and 0 <= image.min() and image.max() <= 1
    framed = np.pad(np.all(image == MET, axis=2) | np.all(image == MISSED, axis=2), 1)
    top_left = framed[1:-1, 1:-1] & ~framed[:-2, 1:-1] & ~framed[1:-1, :-2] & framed[2:, 2:]
    colours = [tuple(image[y, x]) for y, x in np.argwhere(top_left)]  # one per framed tile
    # quadattack: met, missed, met; cwk: missed, met, missed
    assert sorted(colours) == sorted([MET] * 3 + [MISSED] * 3)
