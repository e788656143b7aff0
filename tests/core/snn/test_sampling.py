"""RNN-mode generation: nucleus truncation keeps exactly the top-p mass, and generating with carried state
continues the text exactly as re-running the whole sequence would."""

import torch

from nmkit.core.snn.model import ModelConfig, SpikeGPT
from nmkit.core.snn.sampling import generate, nucleus


def test_nucleus_keeps_the_smallest_set_reaching_top_p():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    torch.testing.assert_close(nucleus(logits, 1.0, 0.7), torch.tensor([0.625, 0.375, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(nucleus(logits, 1.0, 1e-9), torch.tensor([1.0, 0, 0, 0], dtype=torch.float64))
    assert float(nucleus(logits, 100.0, 1.0).std()) < 0.01  # a hot temperature flattens the distribution


def test_greedy_generation_with_state_matches_rerunning_the_whole_sequence():
    torch.manual_seed(0)
    model = SpikeGPT(ModelConfig(vocab=9, d_model=16, layers=2)).double()
    prompt = torch.tensor([1, 4, 2])
    tokens = list(generate(model, prompt, 6, temperature=1.0, top_p=1e-9))
    sequence = prompt.tolist()
    for token in tokens:  # greedy: each token is the argmax of a fresh parallel pass over everything before it
        logits, _ = model(torch.tensor([sequence]))
        assert token == int(logits[0, -1].argmax())
        sequence.append(token)
