"""Built-in digits read without scikit-learn equal scikit-learn's own loader and split."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from nmkit.core import datasets


def test_digits_and_the_stored_split_equal_scikit_learns():
    bunch = load_digits()
    images, labels = datasets.digits("all")
    np.testing.assert_array_equal(images, bunch.images.astype(np.uint8))
    np.testing.assert_array_equal(labels, bunch.target)
    train_x, test_x, train_y, test_y = train_test_split(bunch.images.astype(np.uint8), bunch.target,
                                                        test_size=datasets.DIGITS_TEST, stratify=bunch.target,
                                                        random_state=datasets.SPLIT_SEED)
    for split, (x, y) in {"train": (train_x, train_y), "test": (test_x, test_y)}.items():
        ours_x, ours_y = datasets.digits(split)
        np.testing.assert_array_equal(ours_x, x)
        np.testing.assert_array_equal(ours_y, y)
