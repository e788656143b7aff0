"""Lossless compression with probabilistic circuits (Liu, Mandt and Van den Broeck, ICLR 2022): a Hidden
Chow-Liu Tree gives exact conditionals cheaply, and an ANS coder turns them into bits."""

from nmkit.core.pc.codec import PCResult, compress, decompress
from nmkit.core.pc.config import PCConfig
from nmkit.core.pc.model import HCLT

__all__ = ["HCLT", "PCConfig", "PCResult", "compress", "decompress"]
