"""Sparsity-constrained optimal transport (Liu, Puigcerver and Blondel, ICLR 2023), beside quadratic,
entropic and exact OT."""

from nmkit.core.ot.config import OTConfig
from nmkit.core.ot.problems import Problem, build_problem
from nmkit.core.ot.transport import TransportResult, transport

__all__ = ["OTConfig", "Problem", "TransportResult", "build_problem", "transport"]
