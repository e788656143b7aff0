"""Built-in data that needs no download."""

from __future__ import annotations

import numpy as np

from nmkit.core.errors import InputError

DIGITS_TEST = 400
SPLIT_SEED = 0  # the split is fixed, so every tool and run sees the same test images


def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (values 0..16) as uint8 images and labels; a fixed, seeded,
    stratified split of 1397 training and 400 test images ('train', 'test' or 'all')."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise InputError("built-in digits need scikit-learn (pip install scikit-learn)") from None
    bunch = load_digits()
    images, labels = bunch.images.astype(np.uint8), bunch.target
    if split == "all":
        return images, labels
    train_x, test_x, train_y, test_y = train_test_split(images, labels, test_size=DIGITS_TEST, stratify=labels,
                                                        random_state=SPLIT_SEED)
    return (train_x, train_y) if split == "train" else (test_x, test_y)


def labelled_npz(path) -> dict[str, np.ndarray]:
    """Arrays ``x`` [N, ...] and integer ``y`` [N] from an .npz (no pickles), checked for agreeing lengths;
    ``x_train``, ``y_train``, ``x_test``, ``y_test`` are read too when present."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"data {path}: expected an .npz with arrays x [N, ...] and y [N] ({exc})") from None
    pairs = [(x, y) for x, y in (("x", "y"), ("x_train", "y_train"), ("x_test", "y_test")) if x in arrays]
    if not pairs or any(y not in arrays for _, y in pairs):
        raise InputError(f"data {path}: expected arrays x [N, ...] and y [N] (found {', '.join(arrays) or 'none'})")
    for x, y in pairs:
        labels = arrays[y]
        if len(arrays[x]) != len(labels) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"data {path}: {x} has {len(arrays[x])} items, {y} must be [{len(arrays[x])}] "
                             "integer labels")
    return arrays
