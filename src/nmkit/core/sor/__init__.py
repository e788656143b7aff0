"""Learning to Relax (Khodak, Chen, Roberts, Balcan, Talwalkar; ICLR 2024): choose the SOR parameter
online across a sequence of linear systems, with bandits and contextual bandits."""

from nmkit._lazy import lazy_exports

# ``run`` lives in ``run.py``: import it from there (a package attribute would clash with the submodule).

__all__ = ["SORConfig", "SORResult"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "SORConfig": "config",
    "SORResult": "run",
})
