"""Operation and energy accounting for SpikeGPT, stated honestly.

Per token, every matmul is counted as multiply-accumulates (MACs) unless its input is binary, in which case it is
counted as accumulates (ACs), the convention of SNN papers (45 nm: E_MAC = 4.6 pJ, E_AC = 0.9 pJ, Horowitz
2014). In SpikeGPT as implemented, every Linear reads a LayerNorm output or relu(k)^2, all real-valued; only the
branch outputs are spikes, and they are added to the residual stream. So the matmuls are all MACs, and the
spikes' share is the residual additions: spike rate x d per branch, as ACs.
"""

from __future__ import annotations

from nmkit.core.snn.model import ModelConfig, SpikeGPT

E_MAC_PJ, E_AC_PJ = 4.6, 0.9


def operations_per_token(config: ModelConfig, rates: list[dict[str, float]] | None = None) -> dict:
    """MACs (matmuls: time mix 4 d^2, channel mix 9 d^2 per layer, head d vocab) and ACs (spikes added to the
    residual stream, from the measured per-branch ``rates``) per token, with the energy estimate."""
    d = config.d_model
    macs = config.layers * (4 * d * d + 9 * d * d) + d * config.vocab
    accumulates = sum(rate * d for layer in (rates or []) for rate in layer.values()) if config.spiking else 0.0
    return {"macs": macs, "accumulates": accumulates,
            "energy_pj": macs * E_MAC_PJ + accumulates * E_AC_PJ,
            "assumption": "matmuls with real-valued inputs are MACs (all of SpikeGPT's); spikes are additions"}


def spike_rates(model: SpikeGPT) -> list[dict[str, float]]:
    """Per layer, the fraction of time-mix and channel-mix outputs that spiked in the model's last forward."""
    return [{name: float(rate) for name, rate in block.rates.items()} for block in model.blocks]
