"""Operation and energy accounting for SpikeGPT, stated honestly.

Per token, every matmul is counted as multiply-accumulates (MACs) unless its input is binary, in which case it is
counted as accumulates (ACs), the convention of SNN papers (45 nm: E_MAC = 4.6 pJ, E_AC = 0.9 pJ, Horowitz
2014). In SpikeGPT as implemented, every Linear reads a LayerNorm output or relu(k)^2, all real-valued; only the
branch outputs are spikes, and they are added to the residual stream. So the matmuls are all MACs, and the
spikes' share is the residual additions: spikes per neuron x d per branch, as ACs (a spike of size n counts n
events, as event-driven hardware sends them). A branch that does not spike (every branch of the non-spiking twin,
the last channel mix of a real-valued readout) adds d real numbers per token: d dense additions, also counted as
ACs, so the twin and the spiking model are counted alike.
"""

from __future__ import annotations

from nmkit.core.snn.model import ModelConfig, SpikeGPT

E_MAC_PJ, E_AC_PJ = 4.6, 0.9


def operations_per_token(config: ModelConfig, rates: list[dict[str, float]] | None = None) -> dict:
    """MACs (matmuls: time mix 4 d^2, channel mix 9 d^2 per layer, head d vocab) and ACs (spikes added to the
    residual stream, from the measured per-branch ``rates``; d per branch that adds real values) per token, with the
    energy estimate."""
    d = config.d_model
    macs = config.layers * (4 * d * d + 9 * d * d) + d * config.vocab
    spiking = [rate * d for layer in (rates or []) for rate in layer.values()] if config.spiking else []
    dense = 2 * config.layers - (len(spiking) if rates else 2 * config.layers * config.spiking)
    accumulates = sum(spiking) + dense * d
    return {"macs": macs, "accumulates": accumulates,
            "energy_pj": macs * E_MAC_PJ + accumulates * E_AC_PJ,
            "assumption": "matmuls with real-valued inputs are MACs (all of SpikeGPT's); residual additions are ACs "
                          "(one per spike, d per real-valued branch)"}


def spike_rates(model: SpikeGPT) -> list[dict[str, float]]:
    """Per layer, the spikes per neuron and token (mean |S|; the fraction that spiked for binary spikes) of the
    time-mix and channel-mix outputs in the model's last forward."""
    return [{name: float(rate) for name, rate in block.rates.items()} for block in model.blocks]
