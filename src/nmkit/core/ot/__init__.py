"""Sparsity-constrained optimal transport (Liu, Puigcerver and Blondel, ICLR 2023), beside quadratic,
entropic and exact OT."""

from nmkit._lazy import lazy_exports

# ``transport`` lives in ``transport.py``: import it from there (a package attribute would clash with the submodule).

__all__ = ["OTConfig", "Problem", "TransportResult", "build_problem"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "OTConfig": "config",
    "Problem": "problems",
    "build_problem": "problems",
    "TransportResult": "transport",
})
