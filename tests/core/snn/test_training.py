"""train-snn's loop: the cosine schedule's ends, L2Wrap's extra gradient, resuming from a checkpoint (saved and
loaded without pickles, dropout on) gives bit-identical losses, and training lowers held-out bits per character
below the unigram entropy."""

import io
import math

import numpy as np
import pytest
import torch

from nmkit.core.snn.model import ModelConfig
from nmkit.core.snn.training import OptimConfig, Trainer, evaluate, language_model_loss, learning_rate

TINY = ModelConfig(vocab=8, d_model=16, layers=1, dropout=0.1)


def _blocks():
    """8 blocks of the counting sequence 0..7 repeated."""
    return torch.from_numpy(np.tile(np.arange(8), 80).reshape(8, 80))


def test_the_schedule_runs_from_lr_init_to_lr_final():
    optim = OptimConfig()
    assert learning_rate(0, 100, optim) == pytest.approx(6e-4)
    assert learning_rate(100, 100, optim) == pytest.approx(1e-5)
    assert learning_rate(50, 100, optim) == pytest.approx((6e-4 + 1e-5) / 2)


def test_l2wrap_keeps_the_loss_and_adds_a_pull_on_the_largest_logit():
    logits = torch.randn(2, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    targets = torch.tensor([[0, 1, 2], [3, 4, 0]])
    plain = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1))
    wrapped = language_model_loss(logits, targets)
    assert wrapped.item() == plain.item()
    extra = torch.autograd.grad(wrapped, logits)[0] - torch.autograd.grad(plain, logits)[0]
    top, index = logits.detach().max(-1)
    expected = torch.zeros_like(extra).scatter_(-1, index[..., None], top[..., None] * 1e-4 / 6)
    torch.testing.assert_close(extra, expected)


def test_resuming_from_a_checkpoint_gives_bit_identical_losses():
    blocks = _blocks()
    straight = Trainer.fresh(TINY, OptimConfig(lr_init=3e-3), seed=1, steps=6)
    expected = list(straight.train(blocks, 4, 16, 6))
    first = Trainer.fresh(TINY, OptimConfig(lr_init=3e-3), seed=1, steps=6)
    head = list(first.train(blocks, 4, 16, 3))
    buffer = io.BytesIO()
    torch.save(first.checkpoint(), buffer)
    buffer.seek(0)
    resumed = Trainer.restore(torch.load(buffer, weights_only=True))
    assert head + list(resumed.train(blocks, 4, 16, 3)) == expected


def test_training_brings_held_out_bpc_below_the_unigram_entropy():
    blocks = _blocks()
    trainer = Trainer.fresh(TINY, OptimConfig(lr_init=1e-2, lr_final=1e-3), seed=0, steps=60)
    before = evaluate(trainer.model, blocks[:2], 16)[0]
    for _ in trainer.train(blocks[2:], 8, 16, 60):
        pass
    after = evaluate(trainer.model, blocks[:2], 16)[0]
    assert after < 0.5 * math.log2(8) < before  # the counting sequence is predictable; uniform is 3 bits
