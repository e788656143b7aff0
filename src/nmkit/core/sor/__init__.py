"""Learning to Relax (Khodak, Chen, Roberts, Balcan, Talwalkar; ICLR 2024): choose the SOR parameter
online across a sequence of linear systems, with bandits and contextual bandits."""

from nmkit.core.sor.config import SORConfig
from nmkit.core.sor.run import SORResult, run

__all__ = ["SORConfig", "SORResult", "run"]
