"""attack's grid.png: one column per attacked image, captioned with its label and ordered target list; rows
labelled "original", then for each method its adversarial image (framed green where the exact ordered top-K was
met, red where it was missed) and its perturbation (mid-grey = 0, stretched to the largest |delta| shown)."""

from __future__ import annotations

import numpy as np

from nmkit.core.raster import GLYPH_HEIGHT, draw_text, text_width, wrap

EXAMPLES = 8
TILE = 128  # target tile side in pixels; images are enlarged by a whole factor towards it
TEXT_SCALE = 2
LINE = (GLYPH_HEIGHT + 2) * TEXT_SCALE
GAP = 8
FRAME = 3
MET, MISSED = (0.1, 0.65, 0.2), (0.85, 0.15, 0.15)


def _rgb(images: np.ndarray) -> np.ndarray:
    """[N, C, H, W] in [0, 1] -> [N, H, W, 3]: three channels kept, anything else averaged to grey."""
    if images.shape[1] == 3:
        return np.clip(images.transpose(0, 2, 3, 1), 0, 1)
    return np.repeat(np.clip(images.mean(1), 0, 1)[..., None], 3, axis=3)


def _rows(result, count: int) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """(row label, [N, H, W, 3] tiles, success per tile or None) from the result's originals and each method."""
    original = result.original[:count]
    low, high = float(original.min()), float(original.max())
    span = max(high - low, 1e-12)
    rows = [("original", _rgb((original - low) / span), None)]
    by_method = result.by_method or {result.method: (result.adversarial, result.success)}
    for method, (adversarial, success) in by_method.items():
        delta = adversarial[:count] - original
        stretch = max(float(np.abs(delta).max()), 1e-12)
        rows.append((method, _rgb((adversarial[:count] - low) / span), success[:count].astype(bool)))
        rows.append((f"{method} delta", _rgb(0.5 + 0.5 * delta / stretch), None))
    return rows


def image_grid(result) -> np.ndarray:
    """The labelled grid as an RGB float image [H, W, 3] in [0, 1] (see the module docstring)."""
    count = min(EXAMPLES, len(result.original))
    rows = _rows(result, count)
    side = max(result.original.shape[2:])
    scale = max(1, round(TILE / side))
    tile_h, tile_w = result.original.shape[2] * scale, result.original.shape[3] * scale
    cell_w = tile_w + 2 * FRAME + GAP
    label_w = max(text_width(label, TEXT_SCALE) for label, _, _ in rows) + 2 * GAP
    width = label_w + count * cell_w
    header = wrap(f"ordered top-{result.k} targets above each image (first > second > ...); frame: green = "
                  "order met, red = missed", TEXT_SCALE, width - 2 * GAP)
    captions = [[f"label {int(label)}"] + wrap(">".join(map(str, targets)), TEXT_SCALE, tile_w + 2 * FRAME)
                for label, targets in zip(result.labels[:count], result.targets[:count], strict=True)]
    caption_h = max(len(lines) for lines in captions) * LINE
    top = GAP + len(header) * LINE + GAP + caption_h
    height = top + len(rows) * (tile_h + 2 * FRAME + GAP)
    image = np.ones((height, width, 3))
    for i, line in enumerate(header):
        draw_text(image, line, GAP + i * LINE, GAP, TEXT_SCALE)
    for column, lines in enumerate(captions):
        for i, line in enumerate(lines):
            draw_text(image, line, top - caption_h + i * LINE, label_w + column * cell_w, TEXT_SCALE)
    for r, (label, tiles, success) in enumerate(rows):
        y = top + r * (tile_h + 2 * FRAME + GAP)
        draw_text(image, label, y + FRAME + (tile_h - GLYPH_HEIGHT * TEXT_SCALE) // 2, GAP, TEXT_SCALE)
        for column in range(count):
            x = label_w + column * cell_w
            if success is not None:
                image[y : y + tile_h + 2 * FRAME, x : x + tile_w + 2 * FRAME] = MET if success[column] else MISSED
            enlarged = np.kron(tiles[column], np.ones((scale, scale, 1)))
            image[y + FRAME : y + FRAME + tile_h, x + FRAME : x + FRAME + tile_w] = enlarged
    return image
