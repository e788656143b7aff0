"""RNN-mode generation: nucleus truncation keeps exactly the top-p mass, the compiled single-token step equals the
model's forward, and generating with carried state continues the text exactly as re-running the sequence would."""

import numpy as np
import pytest
import torch

from nmkit.core.snn.model import ModelConfig, SpikeGPT
from nmkit.core.snn.sampling import draw, generate, nucleus
from nmkit.core.snn.step import Stepper, supports


def test_nucleus_keeps_the_smallest_set_reaching_top_p():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05], [0.05, 0.15, 0.3, 0.5]]))
    np.testing.assert_allclose(nucleus(logits, 1.0, 0.7), [[0.625, 0.375, 0, 0], [0, 0, 0.375, 0.625]])
    np.testing.assert_allclose(nucleus(logits, 1.0, 1e-9), [[1, 0, 0, 0], [0, 0, 0, 1]])
    assert nucleus(logits, 100.0, 1.0).std() < 0.01  # a hot temperature flattens the distribution


def test_draw_inverts_the_cumulative_distribution():
    probabilities = np.array([[0.0, 0.25, 0.0, 0.75]] * 4)
    np.testing.assert_array_equal(draw(probabilities, np.array([0.0, 0.2499, 0.25, 0.9999])), [1, 1, 3, 3])
    counts = np.bincount(draw(np.tile([[0.2, 0.8]], (20000, 1)), np.random.default_rng(0).random(20000)))
    assert abs(counts[1] / 20000 - 0.8) < 0.01


def perturbed(spiking: bool, **neuron) -> SpikeGPT:
    """A model whose every branch is active (SpikeGPT's initialisation starts several at zero)."""
    torch.manual_seed(0)
    model = SpikeGPT(ModelConfig(vocab=50, d_model=24, layers=3, spiking=spiking, **neuron)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize(("spiking", "neuron"), [
    (True, {}), (False, {}), (True, {"neuron": "ternary", "learn_threshold": True}),
    (True, {"neuron": "signed-integer", "spike_levels": 3, "learn_threshold": True, "readout": "real"}),
    (True, {"neuron": "integer", "tau": 1.5, "embedding": "real"})],
    ids=["binary", "twin", "ternary", "signed-integer", "integer"])
def test_the_compiled_step_equals_the_models_forward_token_by_token(spiking, neuron):
    model = perturbed(spiking, **neuron)
    tokens = torch.randint(0, 50, (3, 30), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, _ = model(tokens)
    stepper = Stepper(model, 3)
    stepped = np.stack([stepper.step(tokens[:, t].numpy()).copy() for t in range(30)], axis=1)
    np.testing.assert_allclose(stepped, expected.numpy(), atol=1e-4, rtol=1e-4)
    assert supports(model)


def test_a_swapped_neuron_takes_the_generic_path_with_the_same_interface():
    model = perturbed(True)
    model.blocks[0].neuron = lambda branch, potential=None: (branch.clamp(0, 1), branch[:, -1])
    assert not supports(model)
    tokens = list(generate(model, torch.tensor([1, 2]), 3, samples=2, rng=np.random.default_rng(0)))
    assert len(tokens) == 3 and all(len(step) == 2 for step in tokens)


def test_greedy_generation_of_several_samples_matches_rerunning_the_whole_sequence():
    model = perturbed(True)
    prompt = torch.tensor([1, 4, 2])
    steps = list(generate(model, prompt, 8, temperature=1.0, top_p=1e-9, samples=2))
    assert [s[0] for s in steps] == [s[1] for s in steps]  # greedy: both continuations agree
    sequence = prompt.tolist()
    for token in (s[0] for s in steps):  # each token is the argmax of a fresh parallel pass over everything before it
        with torch.no_grad():
            logits, _ = model(torch.tensor([sequence]))
        assert token == int(logits[0, -1].argmax())
        sequence.append(token)
