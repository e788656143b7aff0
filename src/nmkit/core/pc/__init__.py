"""Lossless compression with probabilistic circuits (Liu, Mandt and Van den Broeck, ICLR 2022): a Hidden
Chow-Liu Tree gives exact conditionals cheaply, and an ANS coder turns them into bits."""

from nmkit._lazy import lazy_exports

__all__ = ["HCLT", "PCConfig", "PCResult", "compress", "decompress"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "PCResult": "codec",
    "compress": "codec",
    "decompress": "codec",
    "PCConfig": "config",
    "HCLT": "model",
})
