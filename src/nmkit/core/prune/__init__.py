"""Unstructured pruning: Global MP (with minimum threshold), uniform, random, LAMP, SAP, RD and M-FAC."""

from nmkit._lazy import lazy_exports

# ``run`` lives in ``run.py``: import it from there (a package attribute would clash with the submodule).

__all__ = ["PruneConfig", "PruneResult"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "PruneConfig": "config",
    "PruneResult": "results",
})
