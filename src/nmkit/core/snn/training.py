"""SpikeGPT's training loop (``train.py``/``src/trainer.py``): Adam (betas 0.9/0.99, eps 4e-9, no weight decay),
gradient clipping at 1.0, lr from lr_init to lr_final on a cosine over the run, random windows of context + 1
tokens, cross-entropy wrapped in L2Wrap; evaluation in bits per character (cross-entropy in nats / ln 2) over
every whole window of a split.

Data parallel: under ``torch.distributed`` (torchrun) the model is wrapped in DistributedDataParallel, and every
process draws the same global batch of ``batch_size x world`` windows from one shared generator and trains on its
own slice, so the global batch, the losses and a resumed run do not depend on which process computed what.

A checkpoint holds the model, the optimiser, the step, the batch sampler's state and every process's dropout RNG
state, all plain tensors and numbers (loadable with ``weights_only=True``), so a resumed run draws the same
batches and computes the same losses as one that never stopped.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from nmkit.core import distributed
from nmkit.core.snn.model import ModelConfig, SpikeGPT


@dataclass(frozen=True)
class OptimConfig:
    lr_init: float = 6e-4
    lr_final: float = 1e-5
    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 4e-9
    grad_clip: float = 1.0


def learning_rate(step: int, steps: int, optim: OptimConfig, start: tuple[int, float] | None = None) -> float:
    """A half cosine from lr0 at step0 to lr_final at ``steps``: lr0 ((0.5 + f/2) + (0.5 - f/2) cos(pi progress)),
    f = lr_final / lr0, progress = (step - step0) / (steps - step0). ``start`` = (step0, lr0) is (0, lr_init) for a
    run as planned; a run extended at step s continues from (s, its lr at s), so the rate never jumps back up."""
    first, initial = start if start is not None else (0, optim.lr_init)
    ratio, progress = optim.lr_final / initial, min((step - first) / max(steps - first, 1), 1.0)
    return initial * ((0.5 + ratio / 2) + (0.5 - ratio / 2) * math.cos(math.pi * progress))


class L2Wrap(torch.autograd.Function):
    """SpikeGPT's L2Wrap: the loss is unchanged; its backward adds 1e-4 / (B T) x the largest logit to that
    logit's gradient, a pull towards zero that keeps the logits from drifting up."""

    @staticmethod
    def forward(ctx, loss: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits)
        return loss

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (logits,) = ctx.saved_tensors
        top, index = logits.max(-1, keepdim=True)
        factor = 1e-4 / (logits.shape[0] * logits.shape[1])
        return grad, torch.zeros_like(logits).scatter_(-1, index, top * factor)


def language_model_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats) of logits [B, T, V] against targets [B, T], through L2Wrap."""
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return L2Wrap.apply(loss, logits)


class Trainer:
    """Trains any language model with SpikeGPT's interface (``model(tokens) -> (logits, state)``); checkpoints
    need a SpikeGPT (its config rebuilds the model)."""

    def __init__(self, model: torch.nn.Module, optim: OptimConfig, *, seed: int, steps: int,
                 device: str = "cpu") -> None:
        self.model = model.to(device)
        self.optim, self.steps, self.step, self.device = optim, steps, 0, device
        self.schedule_start: tuple[int, float] | None = None  # (step, lr) an extension continues from
        self.rank, self.world = distributed.rank_and_world()
        self.network = DistributedDataParallel(self.model) if self.world > 1 else self.model
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=optim.lr_init, betas=optim.betas,
                                          eps=optim.eps)
        self.generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed + 1 + self.rank)  # each process's own dropout masks

    def batch(self, blocks: torch.Tensor, batch_size: int, context: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's slice of a global batch of random windows of context + 1 tokens from random blocks
        [N, L]: inputs and next-token targets."""
        total = batch_size * self.world
        rows = torch.randint(0, blocks.shape[0], (total,), generator=self.generator)
        starts = torch.randint(0, blocks.shape[1] - context, (total,), generator=self.generator)
        mine = slice(self.rank * batch_size, (self.rank + 1) * batch_size)
        windows = torch.stack([blocks[r, s : s + context + 1] for r, s in zip(rows[mine].tolist(),
                                                                              starts[mine].tolist(), strict=True)])
        windows = windows.to(self.device)
        return windows[:, :-1], windows[:, 1:]

    def train(self, blocks: torch.Tensor, batch_size: int, context: int, count: int) -> Iterator[float]:
        """``count`` optimiser steps; yields each step's training loss (nats per token, over the global batch)."""
        for _ in range(count):
            self.network.train()  # evaluation between steps switches to eval mode
            for group in self.optimiser.param_groups:
                group["lr"] = learning_rate(self.step, self.steps, self.optim, self.schedule_start)
            inputs, targets = self.batch(blocks, batch_size, context)
            logits, _ = self.network(inputs)
            loss = language_model_loss(logits, targets)
            self.optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.optim.grad_clip)
            self.optimiser.step()
            self.step += 1
            reported = loss.detach()
            if self.world > 1:
                dist.all_reduce(reported)
            yield reported.item() / self.world

    def checkpoint(self) -> dict:
        """The whole training state (every process must call this: it gathers their RNG states)."""
        rng = torch.get_rng_state()
        states = [rng]
        if self.world > 1:
            states = [None] * self.world
            dist.all_gather_object(states, rng)
        return {"model_config": asdict(self.model.config), "optim": asdict(self.optim), "steps": self.steps,
                "schedule_start": self.schedule_start, "step": self.step, "model": self.model.state_dict(),
                "optimiser": self.optimiser.state_dict(),
                "generator": self.generator.get_state(), "rng": states}

    @classmethod
    def fresh(cls, model_config: ModelConfig, optim: OptimConfig, *, seed: int, steps: int,
              device: str = "cpu") -> Trainer:
        """A new SpikeGPT initialised from ``seed`` and its trainer."""
        torch.manual_seed(seed)
        return cls(SpikeGPT(model_config), optim, seed=seed, steps=steps, device=device)

    @classmethod
    def restore(cls, saved: dict, device: str = "cpu") -> Trainer:
        optim = OptimConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in saved["optim"].items()})
        trainer = cls.fresh(ModelConfig(**saved["model_config"]), optim, seed=0, steps=saved["steps"],
                            device=device)
        trainer.model.load_state_dict(saved["model"])
        trainer.optimiser.load_state_dict(saved["optimiser"])
        trainer.generator.set_state(saved["generator"])
        if len(saved["rng"]) == trainer.world:
            torch.set_rng_state(saved["rng"][trainer.rank])
        trainer.step = saved["step"]
        start = saved.get("schedule_start")
        trainer.schedule_start = None if start is None else (int(start[0]), float(start[1]))
        return trainer

    def extend(self, steps: int) -> None:
        """Train to ``steps`` instead of the planned total (beyond the current step): the learning rate goes on
        from its current value to lr_final at the new end."""
        self.schedule_start = (self.step, learning_rate(self.step, self.steps, self.optim, self.schedule_start))
        self.steps = steps


@torch.no_grad()
def evaluate(model: torch.nn.Module, blocks: torch.Tensor, context: int, *, limit: int | None = None,
             batch_size: int = 64) -> tuple[float, list[dict[str, float]]]:
    """Bits per character (mean cross-entropy / ln 2) over every whole window of context + 1 tokens in the
    blocks (the first ``limit`` windows if given), and the per-layer spike rates averaged over them."""
    model.eval()
    per_block = (blocks.shape[1] - 1) // context
    windows = torch.cat([blocks[:, i * context : (i + 1) * context + 1] for i in range(per_block)])[:limit]
    windows = windows.to(next(model.parameters()).device)
    layers = getattr(model, "blocks", [])  # a model without spiking blocks has no rates
    total, rates = 0.0, [{} for _ in layers]
    for chunk in windows.split(batch_size):
        logits, _ = model(chunk[:, :-1])
        total += torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1),
                                                   reduction="sum").item()
        for average, block in zip(rates, layers, strict=True):
            for name, rate in block.rates.items():
                average[name] = average.get(name, 0.0) + float(rate) * len(chunk) / len(windows)
    return total / windows[:, 1:].numel() / math.log(2), rates

