"""Exact conditionals p(x_v | earlier variables) of an HCLT, one variable at a time, for an ANS coder.

Variables are coded in the tree's pre-order. When v is reached, every observed variable lies outside
v's subtree, so p(x_v | observed) = sum_z o_v(z) p(x_v | z) with the "outside" vector
    o_v(z_v) = sum_{z_p} o_p(z_p) p(x_p | z_p) a_p(z_p) T_v(z_p, z_v),
where a_p multiplies the upward messages of p's children whose subtrees are complete. When the last
variable of a subtree is coded, the subtree closes: its inside message goes up one edge into a_parent
(and may close the parent in turn). Each variable therefore costs O(K^2 + K V) plus its share of the
closings, O(D K^2) per item in all, with only the ancestors' state touched (the paper's incremental
evaluation). The loops are compiled per item (numba), so results do not depend on batch size or thread
count; probabilities are quantised to integers summing to 2^PRECISION before the coder sees them, and
the encoder and the decoder run the very same two functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import constriction
import numba as nb
import numpy as np

from nmkit.core.compiled import njit
from nmkit.core.pc.model import HCLT

PRECISION = 20


@dataclass(frozen=True)
class Plan:
    """Coding order and, for each position, the subtrees that close after it (deepest first)."""

    order: np.ndarray
    parent: np.ndarray
    close_ptr: np.ndarray
    close_nodes: np.ndarray

    @classmethod
    def of(cls, model: HCLT) -> Plan:
        order, parent = model.tree.order.astype(np.int64), model.tree.parent.astype(np.int64)
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        size = np.ones(len(order), np.int64)
        for v in order[::-1]:
            if parent[v] >= 0:
                size[parent[v]] += size[v]
        last = position + size - 1  # the pre-order position after which v's subtree is complete
        closings = [[] for _ in order]
        for v in order[::-1]:  # reverse pre-order: a child is listed before its ancestors
            closings[last[v]].append(v)
        ptr = np.concatenate([[0], np.cumsum([len(c) for c in closings])]).astype(np.int64)
        nodes = np.array([v for c in closings for v in c], np.int64)
        return cls(order, parent, ptr, nodes)


@njit(parallel=True)
def _distribution(t, order, parent, prior, transition, emission, x, outside, acc, freq):
    v = order[t]
    p = parent[v]
    items, latents, values = x.shape[0], emission.shape[1], emission.shape[2]
    total = 1 << PRECISION
    for b in nb.prange(items):
        o = np.empty(latents)
        if p < 0:
            o[:] = prior
        else:
            base = np.empty(latents)
            for zp in range(latents):
                base[zp] = outside[b, p, zp] * emission[p, zp, x[b, p]] * acc[b, p, zp]
            for zc in range(latents):
                s = 0.0
                for zp in range(latents):
                    s += base[zp] * transition[v, zp, zc]
                o[zc] = s
        norm = o.sum()
        for z in range(latents):
            outside[b, v, z] = o[z] / norm
        d = np.zeros(values)
        for z in range(latents):
            w = outside[b, v, z]
            for value in range(values):
                d[value] += w * emission[v, z, value]
        scale = (total - values) / d.sum()
        used = 0
        for value in range(values):
            f = np.int64(d[value] * scale) + 1  # every symbol stays codable
            freq[b, value] = f
            used += f
        freq[b, np.argmax(d)] += total - used


@njit(parallel=True)
def _advance(t, close_ptr, close_nodes, order, parent, transition, emission, x, symbols, acc):
    v = order[t]
    latents = emission.shape[1]
    for b in nb.prange(x.shape[0]):
        x[b, v] = symbols[b]
        for k in range(close_ptr[t], close_ptr[t + 1]):
            u = close_nodes[k]
            pu = parent[u]
            if pu < 0:
                continue
            inside = np.empty(latents)
            for z in range(latents):
                inside[z] = emission[u, z, x[b, u]] * acc[b, u, z]
            up = np.empty(latents)
            top = 0.0
            for zp in range(latents):
                s = 0.0
                for zc in range(latents):
                    s += transition[u, zp, zc] * inside[zc]
                up[zp] = s
                top = max(top, s)
            top2 = 0.0
            for zp in range(latents):
                acc[b, pu, zp] *= up[zp] / top
                top2 = max(top2, acc[b, pu, zp])
            for zp in range(latents):
                acc[b, pu, zp] /= top2


class Walker:
    """Steps through the variables of a batch of items; shared by encoder and decoder."""

    def __init__(self, model: HCLT, plan: Plan, items: int) -> None:
        self.model, self.plan = model, plan
        d, k = model.variables, model.latents
        self.x = np.zeros((items, d), np.int64)
        self.outside = np.zeros((items, d, k))
        self.acc = np.ones((items, d, k))
        self.freq = np.zeros((items, model.values), np.int64)

    def probabilities(self, t: int) -> np.ndarray:
        m, p = self.model, self.plan
        _distribution(t, p.order, p.parent, m.prior, m.transition, m.emission, self.x, self.outside, self.acc,
                      self.freq)
        return self.freq / float(1 << PRECISION)

    def advance(self, t: int, symbols: np.ndarray) -> None:
        m, p = self.model, self.plan
        _advance(t, p.close_ptr, p.close_nodes, p.order, p.parent, m.transition, m.emission, self.x,
                 symbols.astype(np.int64), self.acc)


def encode_chunk(model: HCLT, plan: Plan, items: np.ndarray) -> np.ndarray:
    """ANS-code a chunk [B, D] variable-major (so the decoder decodes a whole variable at a time)."""
    walker = Walker(model, plan, len(items))
    probabilities = []
    for t, v in enumerate(plan.order):
        probabilities.append(walker.probabilities(t))
        walker.advance(t, items[:, v])
    coder = constriction.stream.stack.AnsCoder()
    family = constriction.stream.model.Categorical(perfect=False)
    for t in reversed(range(len(plan.order))):  # a stack: the last variable first, so decoding starts at the first
        coder.encode_reverse(items[:, plan.order[t]].astype(np.int32), family, probabilities[t])
    return coder.get_compressed()


def decode_chunk(model: HCLT, plan: Plan, words: np.ndarray, count: int) -> np.ndarray:
    walker = Walker(model, plan, count)
    coder = constriction.stream.stack.AnsCoder(words)
    family = constriction.stream.model.Categorical(perfect=False)
    for t in range(len(plan.order)):
        walker.advance(t, coder.decode(family, walker.probabilities(t)))
    return walker.x
