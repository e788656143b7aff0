"""Operation accounting: closed-form MAC counts, spike rates are fractions, the non-spiking twin has none."""

import pytest
import torch

from nmkit.core.snn.model import ModelConfig, SpikeGPT
from nmkit.core.snn.report import E_AC_PJ, E_MAC_PJ, operations_per_token, spike_rates


def test_macs_follow_the_layer_shapes_and_spikes_count_as_additions():
    config = ModelConfig(vocab=10, d_model=8, layers=2)
    # per layer: key, value, receptance, output (d x d) + key (d x 4d), value (4d x d), receptance (d x d)
    counts = operations_per_token(config, [{"lif_att": 0.5, "lif_ffn": 0.25}, {"lif_att": 0.0, "lif_ffn": 1.0}])
    assert counts["macs"] == 2 * (4 * 64 + 4 * 64 + 4 * 64 + 64) + 8 * 10
    assert counts["accumulates"] == pytest.approx(8 * (0.5 + 0.25 + 0.0 + 1.0))
    twin = operations_per_token(ModelConfig(vocab=10, d_model=8, layers=2, spiking=False))
    assert twin["accumulates"] == 4 * 8  # every branch adds 8 real values to the residual stream
    assert twin["energy_pj"] == pytest.approx(twin["macs"] * E_MAC_PJ + 32 * E_AC_PJ)
    readout = operations_per_token(ModelConfig(vocab=10, d_model=8, layers=2, readout="real"),
                                   [{"lif_att": 0.5, "lif_ffn": 0.25}, {"lif_att": 2.0}])
    assert readout["accumulates"] == pytest.approx(8 * (0.5 + 0.25 + 2.0) + 8)


def test_spike_rates_are_measured_fractions():
    torch.manual_seed(0)
    model = SpikeGPT(ModelConfig(vocab=7, d_model=16, layers=2))
    with torch.no_grad():
        for block in model.blocks:  # a strong branch drive makes the neurons fire
            block.ffn.value.weight.fill_(1.0)  # relu(k)^2 >= 0, so the channel mix drives hard
        model(torch.randint(0, 7, (2, 12)))
    rates = spike_rates(model)
    assert len(rates) == 2 and all(0.0 <= r <= 1.0 for layer in rates for r in layer.values())
    assert any(r > 0 for layer in rates for r in layer.values())
    assert spike_rates(SpikeGPT(ModelConfig(vocab=7, d_model=16, layers=2, spiking=False))) == [{}, {}]
