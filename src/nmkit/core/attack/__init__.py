"""Ordered top-K targeted adversarial attacks: QuadAttacK (Paniagua, Grainger and Wu 2023), with the
CW^K and Adversarial Distillation baselines."""

from nmkit._lazy import lazy_exports

# ``run`` lives in ``run.py``: import it from there (a package attribute would clash with the submodule).

__all__ = ["AttackConfig", "AttackResult"]
__getattr__, __dir__ = lazy_exports(__name__, {
    "AttackConfig": "config",
    "AttackResult": "run",
})
