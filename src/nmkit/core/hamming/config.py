"""Schema of ``nmkit hamming``: where the text and pattern come from, the mode, the algorithm."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.recipe import BatchConfig, option

Algorithm = Literal["auto", "direct", "simd", "fft", "abrahamson", "bitpacked", "kangaroo"]

ALGORITHM_HELP = {
    "auto": "pick the cheapest by a cost model of (n, m, alphabet, mode, device)",
    "direct": "m vectorised compare passes (NumPy): nothing compiled to load, so a fresh process uses it on small "
              "inputs; O(nm)",
    "simd": "word-parallel counting: byte-lane counters, 32-64 alignments per instruction; O(nm/w)",
    "fft": "per-symbol FFT correlation, overlap-save blocks (Fischer-Paterson); O(|S| n log m)",
    "abrahamson": "frequent symbols by FFT, infrequent by occurrence pairs (Abrahamson 1987)",
    "bitpacked": "bit-planes packed in words, XOR + popcount; Triton kernel on CUDA",
    "kangaroo": "k-mismatch only: <= k+1 LCE jumps per alignment (Landau-Vishkin); O(nk log m)",
}


@dataclass(frozen=True)
class Synthetic:
    """A seeded random text with a pattern planted at a few places, each with a few substitutions."""

    length: int = option(1_000_000, "text length n", ge=1, le=1_000_000_000_000)
    pattern_length: int = option(100, "pattern length m", ge=1, le=1_000_000_000_000)
    alphabet: str = option("ACGT", "symbols to draw from (each character is one symbol)")
    plants: int = option(5, "how many copies of the pattern to plant", ge=0, le=1_000_000)
    mutations: int = option(3, "substitutions applied to each planted copy", ge=0, le=1_000_000_000_000)

    def __post_init__(self) -> None:
        if self.pattern_length > self.length:
            raise ConfigError("synthetic.pattern_length must be <= synthetic.length")
        if len(set(self.alphabet)) < 2:
            raise ConfigError("synthetic.alphabet needs at least 2 distinct symbols")


@dataclass(frozen=True)
class HammingConfig(BatchConfig):
    """Text-to-pattern Hamming distances: HD[i] = #{j : T[i+j] != P[j]}, i = 0..n-m."""

    text: str | None = option(None, "the text, given inline")
    text_file: Path | None = option(None, "file holding the text (bytes, tokens, or .npy integers); - for stdin; "
                                          "with patterns_file also a folder of texts")
    pattern: str | None = option(None, "the pattern, given inline")
    pattern_file: Path | None = option(None, "file holding the pattern (same formats as the text); one final line "
                                             "ending is dropped (editors add it) unless keep_newline")
    patterns_file: Path | None = option(None, "many patterns: one per line, FASTA or FASTQ records (names kept), "
                                              "or a 2-D .npy of integer rows; each against every text")
    resume: bool = option(False, "patterns_file: keep the tasks a stopped run in --out finished (logged in its "
                                 "tasks.jsonl) and run only the rest")
    keep_newline: bool = option(False, "bytes mode: keep a pattern file's final line ending as pattern symbols")
    synthetic: Synthetic | None = option(None, "generate a seeded text with planted pattern copies")
    tokens: bool = option(False, "read files and inline strings as whitespace-separated tokens, not bytes")
    max_mismatches: int | None = option(None, "k-mismatch mode: report alignments with <= k mismatches", ge=0)
    approx: float | None = option(None, "approximate mode: (1 +/- eps) estimates", gt=0, lt=1)
    failure_probability: float = option(0.01, "approximate mode: chance that any estimate misses its bound",
                                        gt=0, lt=1)
    wildcard: str | None = option(None, "a symbol that matches anything (exact mode)")
    algorithm: Algorithm = option("auto", "how to compute: " + ", ".join(ALGORITHM_HELP))
    top: int = option(10, "how many best alignments to report", ge=0, le=1_000_000)
    chunk_size: int = option(1 << 22, "text symbols per chunk; chunks overlap by m-1", ge=1, le=1_073_741_824)

    def __post_init__(self) -> None:
        inputs = [self.text is not None, self.text_file is not None]
        patterns = [self.pattern is not None, self.pattern_file is not None, self.patterns_file is not None]
        if self.synthetic is not None:
            if any(inputs) or any(patterns):
                raise ConfigError("synthetic cannot be combined with text/text_file/pattern/pattern_file/"
                                  "patterns_file")
        else:
            if sum(inputs) != 1:
                raise ConfigError("give exactly one of text, text_file (or synthetic)")
            if sum(patterns) != 1:
                raise ConfigError("give exactly one of pattern, pattern_file, patterns_file (or synthetic)")
        if self.patterns_file is not None and self.approx is not None:
            raise ConfigError("approx estimates one pattern's distances; with patterns_file use the exact or the "
                              "k-mismatch mode")
        if self.patterns_file is not None and self.text is not None:
            raise ConfigError("patterns_file runs against text_file (a file or a folder of texts), not inline text")
        if self.max_mismatches is not None and self.approx is not None:
            raise ConfigError("max_mismatches and approx are separate modes; give one of them")
        if self.wildcard is not None and (self.max_mismatches is not None or self.approx is not None):
            raise ConfigError("wildcard works in the exact mode only (not with max_mismatches or approx)")
        if self.wildcard is not None and self.wildcard == "":
            raise ConfigError("wildcard must be a symbol, found an empty string")
        if self.algorithm == "kangaroo" and self.max_mismatches is None:
            raise ConfigError("algorithm kangaroo needs max_mismatches (it is a k-mismatch method)")

    @property
    def mode(self) -> str:
        if self.max_mismatches is not None:
            return "k-mismatch"
        return "approx" if self.approx is not None else "exact"
