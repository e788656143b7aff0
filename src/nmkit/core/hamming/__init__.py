"""Text-to-pattern Hamming distances: exact, k-mismatch, approximate, with wildcards.

nmkit implements the classical O(n sqrt(m log m)) frequent/infrequent split (Abrahamson 1987);
Chan, Jin, Vassilevska Williams and Xu (FOCS 2023) improve this to O(n sqrt m) in theory.
"""

from nmkit._lazy import lazy_exports

# ``scan`` lives in ``scan.py``: import it from there (a package attribute would clash with the submodule).

__all__ = ["Alignment", "HammingConfig", "HammingResult", "Synthetic", "hamming_distances"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "HammingConfig": "config",
    "Synthetic": "config",
    "Alignment": "scan",
    "HammingResult": "scan",
    "hamming_distances": "scan",
})
