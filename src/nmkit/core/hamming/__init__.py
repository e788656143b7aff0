"""Text-to-pattern Hamming distances: exact, k-mismatch, approximate, with wildcards.

nmkit implements the classical O(n sqrt(m log m)) frequent/infrequent split (Abrahamson 1987);
Chan, Jin, Vassilevska Williams and Xu (FOCS 2023) improve this to O(n sqrt m) in theory.
"""

from nmkit.core.hamming.config import HammingConfig, Synthetic
from nmkit.core.hamming.scan import Alignment, HammingResult, hamming_distances, scan

__all__ = ["Alignment", "HammingConfig", "HammingResult", "Synthetic", "hamming_distances", "scan"]
