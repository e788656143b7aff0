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
