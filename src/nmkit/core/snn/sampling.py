"""Text generation in RNN mode: the prompt goes through the model once, then every new token is one recurrent
step (the model carries its WKV, token-shift and LIF state), sampled with temperature and nucleus (top-p)
truncation. SpikeGPT's run.py defaults: temperature 1.5, top-p 0.7."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from nmkit.core.snn.model import SpikeGPT


def nucleus(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """Next-token probabilities [vocab]: softmax(logits / temperature) restricted to the smallest set of most
    likely tokens whose mass reaches top_p (the most likely token always stays), renormalised."""
    probabilities = torch.softmax(logits.double() / temperature, -1)
    ordered, order = probabilities.sort(descending=True)
    before = ordered.cumsum(-1) - ordered  # mass of the strictly more likely tokens
    ordered = torch.where(before < top_p, ordered, torch.zeros_like(ordered))
    kept = torch.zeros_like(probabilities).scatter(-1, order, ordered)
    return kept / kept.sum()


@torch.no_grad()
def generate(model: SpikeGPT, prompt: torch.Tensor, length: int, *, temperature: float = 1.5, top_p: float = 0.7,
             generator: torch.Generator | None = None) -> Iterator[int]:
    """Yields ``length`` token ids after the 1-D ``prompt``."""
    model.eval()
    logits, state = model(prompt[None])
    for _ in range(length):
        token = int(torch.multinomial(nucleus(logits[0, -1], temperature, top_p), 1, generator=generator))
        yield token
        logits, state = model(torch.tensor([[token]]), state)
