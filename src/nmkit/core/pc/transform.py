"""Lossless integer transforms applied to images before the HCLT models them (and undone after decoding).

``med``: every pixel is replaced by its prediction residual under the median edge detector of LOCO-I / JPEG-LS
(Weinberger, Seroussi and Sapiro 2000), taken modulo V and zig-zag mapped (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...),
so the circuit models residuals that are small where the image is smooth. With a = left, b = above, c = above-left:
    pred = min(a, b) if c >= max(a, b);  max(a, b) if c <= min(a, b);  a + b - c otherwise,
with the left (first row) or the above (first column) neighbour alone on the borders, and 0 at the corner.
The map is a bijection on [0, V)^(H x W) per channel, decoded in raster order. This is the paper's "PC as the prior
of an integer transform" (there a learned flow, IDF) with a fixed predictor instead of a network.
"""

from __future__ import annotations

import numpy as np

from nmkit.core.compiled import njit
from nmkit.core.errors import InputError

TRANSFORMS = ("none", "med")


def check(transform: str, item_shape: tuple[int, ...], name: str) -> None:
    if transform == "med" and len(item_shape) not in (2, 3):
        raise InputError(f"{name}: transform med needs images [N, H, W] or [N, H, W, C], found items of shape "
                         f"{item_shape}")


def forward(transform: str, array: np.ndarray, values: int) -> np.ndarray:
    """Items [N, ...] -> the symbols the circuit models (int64, same shape, values in [0, V))."""
    return _apply(transform, array, values, True)


def inverse(transform: str, symbols: np.ndarray, values: int) -> np.ndarray:
    """The circuit's symbols -> the items they came from."""
    return _apply(transform, symbols, values, False)


def _apply(transform: str, array: np.ndarray, values: int, to_symbols: bool) -> np.ndarray:
    source = np.ascontiguousarray(array, np.int64)
    if transform == "none":
        return source
    images = source if source.ndim == 4 else source[..., None]
    out = np.empty_like(images)
    _med(images, out, values, to_symbols)
    return out.reshape(source.shape)


@njit
def _med(source, out, values, forward):
    """forward: out = zigzag((x - pred(x)) mod V); else out = x from source = residual symbols, in raster order
    (each prediction reads pixels already restored in ``out``)."""
    n, h, w, channels = source.shape
    half = (values - 1) // 2
    for b in range(n):
        for ch in range(channels):
            pixels = source[b, :, :, ch] if forward else out[b, :, :, ch]
            for i in range(h):
                for j in range(w):
                    if i == 0 and j == 0:
                        pred = 0
                    elif i == 0:
                        pred = pixels[i, j - 1]
                    elif j == 0:
                        pred = pixels[i - 1, j]
                    else:
                        a, above, c = pixels[i, j - 1], pixels[i - 1, j], pixels[i - 1, j - 1]
                        if c >= max(a, above):
                            pred = min(a, above)
                        elif c <= min(a, above):
                            pred = max(a, above)
                        else:
                            pred = a + above - c
                    if forward:
                        r = (source[b, i, j, ch] - pred) % values
                        out[b, i, j, ch] = 2 * r if r <= half else 2 * (values - r) - 1
                    else:
                        z = source[b, i, j, ch]
                        r = z // 2 if z % 2 == 0 else values - (z + 1) // 2
                        out[b, i, j, ch] = (pred + r) % values
