"""compress-pc on the digits test set (400 images, 8x8, 17 grey levels) against generic codecs.

HCLT at several K (trained on the 1397 training images: 10 mini-batch + 30 full-batch EM epochs),
reported as the file's actual bits per dimension (container included) beside the model's; baselines:
uniform coding (log2 17), independent per-pixel categoricals and a Chow-Liu tree without latents (both
Laplace-smoothed on the training set; ideal code lengths), and gzip / bz2 / lzma at their maximum level
on the raw uint8 test array. Throughput: encode and decode images per second, after a warm-up.

    python -m benchmarks.compress_pc [--latents 8 16 32 64]
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import lzma

import numpy as np

from benchmarks.harness import median_seconds, print_table
from nmkit.core import datasets
from nmkit.core.pc import PCConfig, compress, decompress
from nmkit.core.pc.codec import bits_per_dimension, train
from nmkit.core.pc.structure import chow_liu_tree

VALUES = 17


def chow_liu_bits(train_items: np.ndarray, test_items: np.ndarray) -> float:
    """Ideal bits per dimension of a Chow-Liu tree over the pixels themselves (Laplace smoothing)."""
    tree = chow_liu_tree(train_items, VALUES)
    bits = 0.0
    for v in range(train_items.shape[1]):
        p = tree.parent[v]
        if p < 0:
            table = np.bincount(train_items[:, v], minlength=VALUES) + 1.0
            bits -= np.log2(table / table.sum())[test_items[:, v]].sum()
            continue
        joint = np.ones((VALUES, VALUES))
        np.add.at(joint, (train_items[:, p], train_items[:, v]), 1.0)
        conditional = joint / joint.sum(axis=1, keepdims=True)
        bits -= np.log2(conditional[test_items[:, p], test_items[:, v]]).sum()
    return bits / test_items.size


def independent_bits(train_items: np.ndarray, test_items: np.ndarray) -> float:
    bits = 0.0
    for v in range(train_items.shape[1]):
        table = np.bincount(train_items[:, v], minlength=VALUES) + 1.0
        bits -= np.log2(table / table.sum())[test_items[:, v]].sum()
    return bits / test_items.size


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", type=int, nargs="+", default=[8, 16, 32, 64])
    parser.add_argument("--epochs", type=int, nargs=2, default=[10, 30], metavar=("MINIBATCH", "FULL"))
    args = parser.parse_args(argv)
    test = datasets.digits("test")[0]
    train_items = datasets.digits("train")[0].reshape(-1, 64).astype(np.int64)
    test_items = test.reshape(len(test), -1).astype(np.int64)
    raw = test.tobytes()
    generic = {"gzip -9": len(gzip.compress(raw, 9)), "bz2 -9": len(bz2.compress(raw, 9)),
               "lzma -9e": len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))}
    best_generic = min(generic.values()) * 8 / test.size
    rows = [{"method": "uniform", "bpd": float(np.log2(VALUES))},
            {"method": "independent pixels (ideal)", "bpd": independent_bits(train_items, test_items)},
            {"method": "Chow-Liu tree, no latents (ideal)", "bpd": chow_liu_bits(train_items, test_items)}]
    rows += [{"method": name, "bpd": size * 8 / test.size} for name, size in generic.items()]
    for k in args.latents:
        config = PCConfig(latents=k, minibatch_epochs=args.epochs[0], full_batch_epochs=args.epochs[1])
        model = train(config).model
        blob = compress(model, test, 1024)
        assert np.array_equal(decompress(model, blob, "bench"), test)
        encode_seconds, _ = median_seconds(lambda model=model: compress(model, test, 1024), repeats=3)
        decode_seconds, _ = median_seconds(lambda model=model, blob=blob: decompress(model, blob, "bench"), repeats=3)
        rows.append({"method": f"nmkit HCLT K={k}", "bpd": 8 * len(blob) / test.size,
                     "model_bpd": bits_per_dimension(model, test_items), "encode": len(test) / encode_seconds,
                     "decode": len(test) / decode_seconds})
    table = [[r["method"], f"{r['bpd']:.3f}", f"{r['bpd'] / best_generic:.2f}",
              f"{r['model_bpd']:.3f}" if "model_bpd" in r else "", f"{r['encode']:,.0f}" if "encode" in r else "",
              f"{r['decode']:,.0f}" if "decode" in r else ""] for r in rows]
    print_table("compress-pc, digits test set (400 images x 64 pixels, 17 levels)",
                ["method", "bits / dim (file)", "/ best generic", "model bits / dim", "encode img/s", "decode img/s"],
                table)
    return rows


if __name__ == "__main__":
    main()
