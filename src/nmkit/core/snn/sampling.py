"""Text generation in RNN mode: the prompt goes through the model once, then every new token is one recurrent
step (the model carries its WKV, token-shift and LIF state), sampled with temperature and nucleus (top-p)
truncation. SpikeGPT's run.py defaults: temperature 1.5, top-p 0.7. Several continuations of one prompt advance
together as a batch. A SpikeGPT with its own neuron steps through the compiled single-token path (``step``);
anything else with the same interface (the benchmark's GRU, a swapped neuron) through its forward with T = 1."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from nmkit.core.compiled import njit
from nmkit.core.snn import step
from nmkit.core.snn.model import SpikeGPT


@njit
def nucleus(logits, temperature, top_p):
    """Next-token probabilities [B, vocab] from logits [B, vocab]: softmax(logits / temperature) restricted to the
    smallest set of most likely tokens whose mass reaches top_p (the most likely token always stays),
    renormalised."""
    batch, vocab = logits.shape
    kept = np.zeros((batch, vocab))
    for b in range(batch):
        z = logits[b].astype(np.float64) / temperature
        p = np.exp(z - z.max())
        p /= p.sum()
        before = 0.0  # mass of the strictly more likely tokens
        for i in np.argsort(-p, kind="mergesort"):
            if before >= top_p:
                break
            kept[b, i] = p[i]
            before += p[i]
        kept[b] /= kept[b].sum()
    return kept


@njit
def draw(probabilities, uniforms):
    """One token per row by inverting the cumulative distribution at the row's uniform number in [0, 1)."""
    tokens = np.empty(probabilities.shape[0], np.int64)
    for b in range(probabilities.shape[0]):
        target, total, chosen = uniforms[b] * probabilities[b].sum(), 0.0, 0
        for i in range(probabilities.shape[1]):
            if probabilities[b, i] > 0:
                chosen = i
                total += probabilities[b, i]
                if total > target:
                    break
        tokens[b] = chosen
    return tokens


def stepper(model, prompt: torch.Tensor, samples: int) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """A function from the latest tokens [B] to the next logits [B, vocab], and the logits after the prompt."""
    if isinstance(model, SpikeGPT) and step.supports(model):
        compiled = step.Stepper(model, samples)
        advance = lambda tokens: torch.from_numpy(compiled.step(tokens.numpy()))  # noqa: E731
        for token in prompt[:-1]:
            advance(torch.full((samples,), int(token)))
        return advance, advance(torch.full((samples,), int(prompt[-1])))
    logits, state = model(prompt[None].expand(samples, -1))
    holder = [state]

    def forward(tokens: torch.Tensor) -> torch.Tensor:
        out, holder[0] = model(tokens[:, None], holder[0])
        return out[:, -1]

    return forward, logits[:, -1]


@torch.no_grad()
def generate(model, prompt: torch.Tensor, length: int, *, temperature: float = 1.5, top_p: float = 0.7,
             rng: np.random.Generator | None = None, samples: int = 1) -> Iterator[list[int]]:
    """Yields, ``length`` times, the next token of each of ``samples`` continuations of the 1-D ``prompt``."""
    model.eval()
    rng = rng if rng is not None else np.random.default_rng()
    advance, logits = stepper(model, prompt, samples)
    for _ in range(length):
        tokens = draw(nucleus(logits.numpy(), temperature, top_p), rng.random(samples))
        yield tokens.tolist()
        logits = advance(torch.from_numpy(tokens))
