"""compress-pc against the codecs people use, on the same test images, bits per pixel with every header counted.

Data sets (built in, fixed seeded splits): digits (8x8, 17 levels, 400 test images), mnist (28x28, 256 levels, 1,000
real MNIST test digits), photos16 / photos (8x8 patches of scikit-learn's two photos at 16 / 256 levels, 1,696 test
patches). nmkit trains an HCLT on the training split, encodes the test split into one .nmpc file (container
included) and decodes it (checked exact). Baselines on the same test images:
- generic codecs on the whole test set as one raw uint8 stream (and, at 16 levels or fewer, two pixels per
  byte; the smaller counts): gzip -9, bz2 -9, lzma -9e, zstd -19 (zstandard);
- image codecs, each image as its own file (what "per image" costs in headers) and the whole test set as one
  mosaic image (the codec's best case): PNG (Pillow, optimize), WebP lossless (Pillow, method 6), JPEG-XL lossless
  (imagecodecs, effort 9);
- ideal code lengths: uniform, independent pixels and a Chow-Liu tree over the pixels (Laplace-smoothed on the
  training split; no coder, no header).
A codec whose package is missing is listed as skipped. MNIST rows also carry the paper's published figures
(60,000 training images; marked, not measured). Throughput: encode and decode images per second, after a warm-up.

    python -m benchmarks.compress_pc [--data digits mnist photos16 photos] [--set latents 8 ...]
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import io as bytes_io
import lzma
import math
import time
from collections.abc import Callable

import numpy as np

from benchmarks.harness import median_seconds, print_table
from nmkit.core.pc import PCConfig, compress, decompress
from nmkit.core.pc.codec import bits_per_dimension, load_array, model_items, train

SETTINGS = {"digits": {"latents": 16, "minibatch_epochs": 10, "full_batch_epochs": 30, "smoothing": 30},
            "mnist": {"latents": 32, "minibatch_epochs": 2, "full_batch_epochs": 5, "smoothing": 100,
                      "pseudocount": 0.01, "augment": "shift8"},
            "photos16": {"latents": 32, "minibatch_epochs": 5, "full_batch_epochs": 20, "smoothing": 10,
                         "transform": "med"},
            "photos": {"latents": 32, "minibatch_epochs": 5, "full_batch_epochs": 10, "smoothing": 100,
                       "transform": "med"}}
"""Per data set, the settings chosen by held-out bits in the sweeps the README reports (same split, seed 0)."""
PUBLISHED_MNIST = {"PC (HCLT), Liu et al. 2022": 1.20, "BitSwap": 1.31, "IDF": 1.90, "JPEG2000": 3.37}
"""The paper's MNIST table as recalled in shared/specs/compress-pc.md (not checked against the PDF, which is not
available offline); those models trained on 60,000 images."""


def ideal_bits(train_items: np.ndarray, test_items: np.ndarray, values: int, tree) -> float:
    """Ideal bits per pixel of a Laplace-smoothed tree model over the pixels (``tree`` None: independent pixels)."""
    bits = 0.0
    for v in range(train_items.shape[1]):
        p = -1 if tree is None else tree.parent[v]
        if p < 0:
            table = np.bincount(train_items[:, v], minlength=values) + 1.0
            bits -= np.log2(table / table.sum())[test_items[:, v]].sum()
            continue
        joint = np.ones((values, values))
        np.add.at(joint, (train_items[:, p], train_items[:, v]), 1.0)
        conditional = joint / joint.sum(axis=1, keepdims=True)
        bits -= np.log2(conditional[test_items[:, p], test_items[:, v]]).sum()
    return bits / test_items.size


def generic_codecs() -> dict[str, Callable[[bytes], int]]:
    codecs = {"gzip -9": lambda raw: len(gzip.compress(raw, 9)), "bz2 -9": lambda raw: len(bz2.compress(raw, 9)),
              "lzma -9e": lambda raw: len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))}
    try:
        import zstandard
    except ImportError:
        codecs["zstd -19"] = None
    else:
        codecs["zstd -19"] = lambda raw: len(zstandard.ZstdCompressor(level=19).compress(raw))
    return codecs


def image_codecs() -> dict[str, Callable[[np.ndarray], int] | None]:
    """Size in bytes of one uint8 greyscale image as a file."""
    codecs: dict[str, Callable[[np.ndarray], int] | None] = {"PNG (Pillow, optimize)": None,
                                                             "WebP lossless (Pillow, method 6)": None,
                                                             "JPEG-XL lossless (imagecodecs, effort 9)": None}
    try:
        from PIL import Image
    except ImportError:
        pass
    else:
        def pillow(image: np.ndarray, **options) -> int:
            buffer = bytes_io.BytesIO()
            Image.fromarray(image, "L").save(buffer, **options)
            return buffer.tell()

        codecs["PNG (Pillow, optimize)"] = lambda image: pillow(image, format="PNG", optimize=True)
        codecs["WebP lossless (Pillow, method 6)"] = lambda image: pillow(image, format="WEBP", lossless=True,
                                                                          quality=100, method=6)
    try:
        import imagecodecs
    except ImportError:
        pass
    else:
        if imagecodecs.JPEGXL.available:
            codecs["JPEG-XL lossless (imagecodecs, effort 9)"] = lambda image: len(
                imagecodecs.jpegxl_encode(image, lossless=True, effort=9))
    return codecs


def mosaic(images: np.ndarray) -> np.ndarray:
    """The images tiled row-major into one near-square picture (blank tiles pad the last row)."""
    n, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.zeros((rows * h, cols * w), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = image
    return canvas


def codec_rows(train_images: np.ndarray, test: np.ndarray, values: int) -> list[dict]:
    from nmkit.core.pc.structure import chow_liu_tree

    pixels = test.size
    train_items = train_images.reshape(len(train_images), -1).astype(np.int64)
    test_items = test.reshape(len(test), -1).astype(np.int64)
    rows = [{"method": "uniform (ideal)", "bpd": math.log2(values)},
            {"method": "independent pixels (ideal)", "bpd": ideal_bits(train_items, test_items, values, None)},
            {"method": "Chow-Liu tree over pixels (ideal)",
             "bpd": ideal_bits(train_items, test_items, values, chow_liu_tree(train_items, values))}]
    streams = {"": test.astype(np.uint8).tobytes()}
    if values <= 16:
        flat = test.astype(np.uint8).ravel()
        flat = np.concatenate([flat, np.zeros(len(flat) % 2, np.uint8)])
        streams[", 2 px/byte"] = (flat[0::2] << 4 | flat[1::2]).tobytes()
    for name, codec in generic_codecs().items():
        if codec is None:
            rows.append({"method": name, "skipped": "zstandard not installed"})
            continue
        size, label = min((codec(raw), label) for label, raw in streams.items())
        rows.append({"method": name + label, "bpd": 8 * size / pixels, "generic": True})
    for name, codec in image_codecs().items():
        if codec is None:
            rows.append({"method": name, "skipped": "Pillow / imagecodecs not installed"})
            continue
        images = test.astype(np.uint8)
        rows.append({"method": name + ", per image", "bpd": 8 * sum(codec(image) for image in images) / pixels,
                     "generic": True})
        rows.append({"method": name + ", one mosaic", "bpd": 8 * codec(mosaic(images)) / pixels, "generic": True})
    return rows


def nmkit_rows(data: str, settings: dict, test: np.ndarray) -> list[dict]:
    start = time.perf_counter()
    model = train(PCConfig(data=data, **settings)).model
    train_seconds = time.perf_counter() - start
    blob = compress(model, test, 256)
    assert np.array_equal(decompress(model, blob, "bench"), test)
    encode_seconds, _ = median_seconds(lambda: compress(model, test, 256), repeats=3)
    decode_seconds, _ = median_seconds(lambda: decompress(model, blob, "bench"), repeats=3)
    label = ", ".join(f"{k}={v}" for k, v in settings.items() if k in ("latents", "transform", "augment"))
    return [{"method": f"nmkit HCLT ({label}; {settings['minibatch_epochs']}+{settings['full_batch_epochs']} EM "
                       "epochs)", "bpd": 8 * len(blob) / test.size,
             "model_bpd": bits_per_dimension(model, model_items(model, test, data)),
             "encode": len(test) / encode_seconds, "decode": len(test) / decode_seconds,
             "train_seconds": train_seconds}]


def main(argv: list[str] | None = None) -> dict[str, list[dict]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--set", nargs=2, action="append", default=[], metavar=("FIELD", "VALUE"),
                        help="override a training setting for every data set (e.g. --set latents 8)")
    args = parser.parse_args(argv)
    overrides = {field: type(getattr(PCConfig(), field))(value) for field, value in args.set}
    results = {}
    for data in args.data:
        train_images, test = load_array(data, "train"), load_array(data, "test")
        values = int(max(train_images.max(), test.max())) + 1
        rows = codec_rows(train_images, test, values) + nmkit_rows(data, SETTINGS[data] | overrides, test)
        if data == "mnist":
            rows += [{"method": f"{name} (published, 60k training images)", "bpd": bpd, "published": True}
                     for name, bpd in PUBLISHED_MNIST.items()]
        best = min(r["bpd"] for r in rows if r.get("generic"))
        table = [[r["method"], f"{r['bpd']:.3f}" if "bpd" in r else "skipped: " + r["skipped"],
                  f"{r['bpd'] / best:.2f}" if "bpd" in r else "",
                  f"{r['model_bpd']:.3f}" if "model_bpd" in r else "",
                  f"{r['encode']:,.0f} / {r['decode']:,.0f}" if "encode" in r else "",
                  f"{r['train_seconds']:.0f}" if "train_seconds" in r else ""] for r in rows]
        print_table(f"compress-pc, {data} test set ({len(test)} images, {test[0].size} pixels, {values} levels)",
                    ["method", "bits / pixel", "/ best codec", "model bits / pixel", "encode / decode img/s",
                     "train s"], table)
        results[data] = rows
    return results


if __name__ == "__main__":
    main()
