"""SpikeGPT's training loop (``train.py``/``src/trainer.py``): Adam (betas 0.9/0.99, eps 4e-9, no weight decay),
gradient clipping at 1.0, lr from lr_init to lr_final on a cosine over the run, random windows of context + 1
tokens; evaluation in bits per character (cross-entropy in nats / ln 2) over every whole window of a split.

A checkpoint holds the model, the optimiser, the step and the batch sampler's random state, all plain tensors and
numbers (loadable with ``weights_only=True``), so a resumed run draws the same batches and computes the same
losses as one that never stopped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch

from nmkit.core.snn.model import ModelConfig, SpikeGPT


@dataclass(frozen=True)
class OptimConfig:
    lr_init: float = 6e-4
    lr_final: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 4e-9
    grad_clip: float = 1.0


def learning_rate(step: int, steps: int, optim: OptimConfig) -> float:
    """lr_init * ((0.5 + f/2) + (0.5 - f/2) cos(pi progress)), f = lr_final / lr_init."""
    ratio, progress = optim.lr_final / optim.lr_init, min(step / max(steps, 1), 1.0)
    return optim.lr_init * ((0.5 + ratio / 2) + (0.5 - ratio / 2) * math.cos(math.pi * progress))


class Trainer:
    def __init__(self, model_config: ModelConfig, optim: OptimConfig, *, seed: int, steps: int) -> None:
        torch.manual_seed(seed)
        self.model, self.optim, self.steps, self.step = SpikeGPT(model_config), optim, steps, 0
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=optim.lr_init, betas=optim.betas,
                                          eps=optim.eps)
        self.generator = torch.Generator().manual_seed(seed)

    def batch(self, blocks: torch.Tensor, batch_size: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random windows of context + 1 tokens from random blocks [N, L]: inputs and next-token targets."""
        rows = torch.randint(0, blocks.shape[0], (batch_size,), generator=self.generator)
        starts = torch.randint(0, blocks.shape[1] - context, (batch_size,), generator=self.generator)
        windows = torch.stack([blocks[r, s : s + context + 1] for r, s in zip(rows.tolist(), starts.tolist(),
                                                                              strict=True)])
        return windows[:, :-1], windows[:, 1:]

    def train(self, blocks: torch.Tensor, batch_size: int, context: int, count: int) -> Iterator[float]:
        """``count`` optimiser steps; yields each step's training loss (nats per token)."""
        self.model.train()
        for _ in range(count):
            for group in self.optimiser.param_groups:
                group["lr"] = learning_rate(self.step, self.steps, self.optim)
            inputs, targets = self.batch(blocks, batch_size, context)
            logits, _ = self.model(inputs)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
            self.optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.optim.grad_clip)
            self.optimiser.step()
            self.step += 1
            yield loss.item()

    def checkpoint(self) -> dict:
        return {"model_config": asdict(self.model.config), "optim": asdict(self.optim), "steps": self.steps,
                "step": self.step, "model": self.model.state_dict(), "optimiser": self.optimiser.state_dict(),
                "generator": self.generator.get_state()}

    @classmethod
    def restore(cls, saved: dict) -> Trainer:
        optim = OptimConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["optim"].items()})
        trainer = cls(ModelConfig(**saved["model_config"]), optim, seed=0, steps=saved["steps"])
        trainer.model.load_state_dict(saved["model"])
        trainer.optimiser.load_state_dict(saved["optimiser"])
        trainer.generator.set_state(saved["generator"])
        trainer.step = saved["step"]
        return trainer


@torch.no_grad()
def bits_per_character(model: SpikeGPT, blocks: torch.Tensor, context: int, batch_size: int = 64) -> float:
    """Mean cross-entropy over every whole window of context + 1 tokens in the blocks, in bits."""
    model.eval()
    per_block = (blocks.shape[1] - 1) // context
    windows = torch.cat([blocks[:, i * context : (i + 1) * context + 1] for i in range(per_block)])
    total, count = 0.0, 0
    for chunk in windows.split(batch_size):
        logits, _ = model(chunk[:, :-1])
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1),
                                                   reduction="sum").item()
        count += chunk[:, 1:].numel()
    return total / count / math.log(2)
