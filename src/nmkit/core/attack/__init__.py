"""Ordered top-K targeted adversarial attacks: QuadAttacK (Paniagua, Grainger and Wu 2023), with the
CW^K and Adversarial Distillation baselines."""

from nmkit.core.attack.config import AttackConfig
from nmkit.core.attack.run import AttackResult, run

__all__ = ["AttackConfig", "AttackResult", "run"]
