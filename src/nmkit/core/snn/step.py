"""RNN-mode generation without [B, T, C] kernels: one compiled step per token for a batch of streams.

The trained SpikeGPT's weights are copied once into float32 arrays (linear layers transposed, so every product is
one [B, in] x [in, out] BLAS call); the per-layer state (token-shift inputs, WKV numerator, denominator and
exponent, the two LIF potentials) lives in preallocated arrays [layers, B, C] that each step updates in place.
One step is exactly the model's forward on a single token (``model.py`` for the equations): embedding (binary if
spiking), LN0, per layer x += LIF(TimeMix(LN1 x)), x += LIF(ChannelMix(LN2 x)), then head(LN_out x).
Every neuron of ``kernels.lif`` (binary, ternary or integer spikes, fixed or learned thresholds, any tau) and the
non-spiking twin are compiled; a model with a foreign neuron swapped in (the benchmark's snnTorch arm) keeps the
generic path (``sampling.generate``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from nmkit.core.compiled import njit
from nmkit.core.snn.model import SpikeGPT
from nmkit.kernels.snn_cpu import spike_count
from nmkit.kernels.wkv import NO_EXPONENT

BRANCHES = ("lif_att", "lif_ffn")
LN_EPS = 1e-5
LAYER_VECTORS = ("ln1_w", "ln1_b", "ln2_w", "ln2_b", "decay", "first", "att_mu_k", "att_mu_v", "att_mu_r",
                 "ffn_mu_k", "ffn_mu_r")
STATE = ("att_last", "ffn_last", "p", "q", "o", "att_potential", "ffn_potential")


@dataclass
class Weights:
    """The model's parameters as float32 arrays: ``vectors`` [layers, 11, C] in LAYER_VECTORS order, the time
    mix's key, value, receptance and output [layers, 4, C, C], the channel mix's key [layers, C, 4C], receptance
    [layers, C, C] and value [layers, 4C, C] (all as x @ W), embedding, head [C, V] and the two outer layer
    norms."""

    vectors: np.ndarray
    att: np.ndarray
    ffn_key: np.ndarray
    ffn_receptance: np.ndarray
    ffn_value: np.ndarray
    embedding: np.ndarray
    head: np.ndarray
    outer_norms: np.ndarray  # [4, C]: ln0 weight, ln0 bias, ln_out weight, ln_out bias
    binary_embedding: bool
    thresholds: np.ndarray  # [layers, 2, C]: each branch's firing threshold
    fires: np.ndarray  # [layers, 2] bool: whether the branch spikes (not for the twin, nor a real-valued readout)
    firing: tuple[float, int, bool, bool]  # tau, levels, signed, soft reset (kernels.lif.Firing)

    @classmethod
    def of(cls, model: SpikeGPT) -> Weights:
        as_np = lambda t: np.ascontiguousarray(t.detach().to("cpu", torch.float32).numpy())  # noqa: E731
        blocks = model.blocks
        vectors = np.stack([np.stack([as_np(t) for t in (
            b.ln1.weight, b.ln1.bias, b.ln2.weight, b.ln2.bias, torch.exp(b.att.time_decay), b.att.time_first,
            b.att.mu_k, b.att.mu_v, b.att.mu_r, b.ffn.mu_k, b.ffn.mu_r)]) for b in blocks])
        stack = lambda pick: np.stack([as_np(pick(b).weight.T) for b in blocks])  # noqa: E731
        att = np.stack([np.stack([as_np(m.weight.T) for m in (b.att.key, b.att.value, b.att.receptance,
                                                               b.att.output)]) for b in blocks])
        channels = model.config.d_model
        thresholds = np.stack([np.stack([as_np(torch.as_tensor(b.threshold(n)).expand(channels)) if b.fires[n]
                                         else np.ones(channels, np.float32) for n in BRANCHES]) for b in blocks])
        firing = model.config.firing()
        return cls(vectors, att, stack(lambda b: b.ffn.key),
                   stack(lambda b: b.ffn.receptance), stack(lambda b: b.ffn.value), as_np(model.embedding.weight),
                   as_np(model.head.weight.T), np.stack([as_np(t) for t in (model.ln0.weight, model.ln0.bias,
                                                                             model.ln_out.weight, model.ln_out.bias)]),
                   model.config.spiking and model.config.embedding == "binary", np.ascontiguousarray(thresholds),
                   np.array([[b.fires[n] for n in BRANCHES] for b in blocks]),
                   (float(model.config.tau), firing.levels, firing.signed, firing.soft_reset))


def supports(model: SpikeGPT) -> bool:
    """Whether the compiled step computes this model (nmkit's own neurons, or none at all)."""
    return all(block.neuron is None for block in model.blocks)


class Stepper:
    """Advances B streams one token at a time; ``step(tokens)`` returns the next-token logits [B, V]."""

    def __init__(self, model: SpikeGPT, batch: int) -> None:
        self.weights = Weights.of(model)
        layers, channels = len(model.blocks), model.config.d_model
        self.state = np.zeros((len(STATE), layers, batch, channels), np.float32)
        self.state[STATE.index("o")] = NO_EXPONENT
        self.logits = np.empty((batch, model.config.vocab), np.float32)

    def step(self, tokens: np.ndarray) -> np.ndarray:
        w = self.weights
        _step(np.ascontiguousarray(tokens, np.int64), w.vectors, w.att, w.ffn_key, w.ffn_receptance,
              w.ffn_value, w.embedding, w.head, w.outer_norms, w.binary_embedding, w.thresholds, w.fires, *w.firing,
              self.state, self.logits)
        return self.logits


@njit
def _matmul(x, w):
    """x [B, in] @ w [in, out] as one multiply-add per input row: contiguous, vectorised, and free of the BLAS
    thread start-up that makes a [2, 128] x [128, 512] product cost 50 us instead of 7."""
    out = np.zeros((x.shape[0], w.shape[1]), np.float32)
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            xi = x[b, i]
            if xi != 0.0:  # spikes and ReLU outputs are mostly zeros
                for j in range(w.shape[1]):
                    out[b, j] += xi * w[i, j]
    return out


@njit
def _layer_norm(x, weight, bias, out):
    for b in range(x.shape[0]):
        mean = 0.0
        for c in range(x.shape[1]):
            mean += x[b, c]
        mean /= x.shape[1]
        var = 0.0
        for c in range(x.shape[1]):
            var += (x[b, c] - mean) ** 2
        scale = 1.0 / np.sqrt(var / x.shape[1] + LN_EPS)
        for c in range(x.shape[1]):
            out[b, c] = (x[b, c] - mean) * scale * weight[c] + bias[c]


@njit
def _fire(branch, potential, fires, theta, tau, levels, signed, soft_reset):
    """The LIF neuron (``kernels.lif``) on one step, in place: branch becomes the spikes, potential the reset
    potential."""
    if not fires:
        return
    for b in range(branch.shape[0]):
        for c in range(branch.shape[1]):
            charged = potential[b, c] + (branch[b, c] - potential[b, c]) / tau
            count = spike_count(charged, theta[c], levels, signed)
            branch[b, c] = count
            if soft_reset:
                potential[b, c] = charged - theta[c] * count
            else:
                potential[b, c] = 0.0 if count != 0.0 else charged


@njit
def _step(tokens, vectors, att, ffn_key, ffn_receptance, ffn_value, embedding, head, outer_norms, binary_embedding,
          thresholds, fires, tau, levels, signed, soft_reset, state, logits):
    batch, channels = tokens.shape[0], embedding.shape[1]
    x = np.empty((batch, channels), np.float32)
    for b in range(batch):
        for c in range(channels):
            e = embedding[tokens[b], c]
            x[b, c] = (1.0 if e >= 0 else 0.0) if binary_embedding else e
    _layer_norm(x.copy(), outer_norms[0], outer_norms[1], x)
    h = np.empty_like(x)
    stream = np.empty_like(x)
    for layer in range(vectors.shape[0]):
        vec = vectors[layer]
        att_last, ffn_last = state[0, layer], state[1, layer]
        p, q, o = state[2, layer], state[3, layer], state[4, layer]
        # time mix: k, v, r from three token-shifted streams of LN1 x
        _layer_norm(x, vec[0], vec[1], h)
        projected = []
        for part in range(3):
            for b in range(batch):
                for c in range(channels):
                    mu = vec[6 + part, c]
                    stream[b, c] = h[b, c] * mu + att_last[b, c] * (1 - mu)
            projected.append(_matmul(stream, att[layer, part]))
        keys, values, receptances = projected[0], projected[1], projected[2]
        att_last[:] = h
        gated = np.empty_like(h)
        for b in range(batch):
            for c in range(channels):
                k, v, r = keys[b, c], values[b, c], receptances[b, c]
                decay, first = vec[4, c], vec[5, c]
                top = max(o[b, c], first + k)
                a, e = np.exp(o[b, c] - top), np.exp(first + k - top)
                y = (a * p[b, c] + e * v) / (a * q[b, c] + e)
                top = max(o[b, c] - decay, k)
                a, e = np.exp(o[b, c] - decay - top), np.exp(k - top)
                p[b, c], q[b, c], o[b, c] = a * p[b, c] + e * v, a * q[b, c] + e, top
                gated[b, c] = y / (1 + np.exp(-r))
        branch = _matmul(gated, att[layer, 3])
        _fire(branch, state[5, layer], fires[layer, 0], thresholds[layer, 0], tau, levels, signed, soft_reset)
        x += branch
        # channel mix: sigmoid(Wr x_r) * Wv relu(Wk x_k)^2
        _layer_norm(x, vec[2], vec[3], h)
        key_in, receptance_in = np.empty_like(h), np.empty_like(h)
        for b in range(batch):
            for c in range(channels):
                key_in[b, c] = h[b, c] * vec[9, c] + ffn_last[b, c] * (1 - vec[9, c])
                receptance_in[b, c] = h[b, c] * vec[10, c] + ffn_last[b, c] * (1 - vec[10, c])
        ffn_last[:] = h
        hidden = _matmul(key_in, ffn_key[layer])
        for b in range(batch):
            for c in range(hidden.shape[1]):
                hidden[b, c] = max(hidden[b, c], 0.0) ** 2
        branch = _matmul(hidden, ffn_value[layer])
        gate = _matmul(receptance_in, ffn_receptance[layer])
        for b in range(batch):
            for c in range(channels):
                branch[b, c] /= 1 + np.exp(-gate[b, c])
        _fire(branch, state[6, layer], fires[layer, 1], thresholds[layer, 1], tau, levels, signed, soft_reset)
        x += branch
    _layer_norm(x.copy(), outer_norms[2], outer_norms[3], x)
    logits[:] = _matmul(x, head)
