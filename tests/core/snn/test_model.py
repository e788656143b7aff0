"""SpikeGPT's model: RNN mode (one token at a time with state) gives the parallel forward's logits, for the
spiking model and its non-spiking twin; a tiny model learns a repeating string."""

import math

import pytest
import torch

from nmkit.core.snn.model import ModelConfig, SpikeGPT


@pytest.mark.parametrize("spiking", [True, False])
def test_recurrent_mode_gives_the_parallel_logits(spiking):
    torch.manual_seed(0)
    model = SpikeGPT(ModelConfig(vocab=11, d_model=16, layers=2, spiking=spiking)).double().eval()
    tokens = torch.randint(0, 11, (2, 9))
    parallel, _ = model(tokens)
    state, steps = None, []
    for t in range(tokens.shape[1]):
        logits, state = model(tokens[:, t : t + 1], state)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, 1), parallel)


def test_a_tiny_model_learns_a_repeating_string():
    torch.manual_seed(0)
    text = "abcdefgh" * 8
    vocab = sorted(set(text))
    data = torch.tensor([vocab.index(c) for c in text])[None]
    model = SpikeGPT(ModelConfig(vocab=len(vocab), d_model=32, layers=2))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        logits, _ = model(data[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(vocab)), data[:, 1:].reshape(-1))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    bits_per_char = loss.item() / math.log(2)
    assert bits_per_char < 0.25 * math.log2(len(vocab))  # the unigram entropy is 3 bits
