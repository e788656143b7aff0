"""Unstructured pruning: Global MP (with minimum threshold), uniform, random, LAMP, SAP, RD and M-FAC."""

from nmkit.core.prune.config import PruneConfig
from nmkit.core.prune.run import PruneResult, run

__all__ = ["PruneConfig", "PruneResult", "run"]
