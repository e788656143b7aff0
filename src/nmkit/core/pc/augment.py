"""More training images from the ones given: copies shifted by one pixel (edge pixels repeat), so an HCLT trained on
a few thousand digits sees strokes in the neighbouring places too. Only training data is augmented; what is coded
is the user's data as it is."""

from __future__ import annotations

import numpy as np

from nmkit.core import memory
from nmkit.core.errors import InputError

SHIFTS = {"none": [], "shift4": [(0, 1), (0, -1), (1, 0), (-1, 0)]}
SHIFTS["shift8"] = SHIFTS["shift4"] + [(1, 1), (1, -1), (-1, 1), (-1, -1)]


def augmented(array: np.ndarray, kind: str, name: str) -> np.ndarray:
    """``array`` [N, H, W(, C)] followed by its shifted copies (``kind`` a key of SHIFTS)."""
    shifts = SHIFTS[kind]
    if not shifts:
        return array
    if array.ndim not in (3, 4):
        raise InputError(f"{name}: augment {kind} needs images [N, H, W] or [N, H, W, C], found items of shape "
                         f"{array.shape[1:]}")
    memory.require(float(array.nbytes) * (len(shifts) + 1) * 8, f"{name} (augment {kind})")
    pad = [(0, 0), (1, 1), (1, 1)] + [(0, 0)] * (array.ndim - 3)
    padded = np.pad(array, pad, mode="edge")
    h, w = array.shape[1:3]
    copies = [padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in shifts]
    return np.concatenate([array, *copies])
