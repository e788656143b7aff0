"""Exact conditionals p(x_v | earlier variables) of an HCLT, one variable at a time, coded by rANS.

Variables are coded in the tree's pre-order. When v is reached, every observed variable lies outside
v's subtree, so p(x_v | observed) = sum_z o_v(z) p(x_v | z) with the "outside" vector
    o_v(z_v) = sum_{z_p} o_p(z_p) p(x_p | z_p) a_p(z_p) T_v(z_p, z_v),
where a_p multiplies the upward messages of p's children whose subtrees are complete. When the last
variable of a subtree is coded, the subtree closes: its inside message goes up one edge into a_parent
(and may close the parent in turn). Each variable therefore costs O(K^2) plus its share of the closings,
O(D K^2) per item in all, with only the ancestors' state touched (the paper's incremental evaluation).

The coder needs the interval [F(x), F(x+1)) of the symbol, not the whole distribution: with the leaves' left
cumulatives C_v[z, x] = sum_{c < x} p(c | z) stored once (the paper's ``cum_input``), the quantised cumulative
    F(x) = x + min(floor((2^P - V) sum_z o_v(z) C_v[z, x]), 2^P - V),  F(V) = 2^P
costs O(K) per symbol (every symbol keeps a frequency of at least 1), and the decoder finds x by a galloping
search over F from 0 (one evaluation for x = 0, about 2 log2(x + 1) + 1 in general). The rANS coder (64-bit
state, 32-bit words) and the model walk are one compiled loop per chunk, chunks run in parallel; encoder and
decoder evaluate F with the very same code, so they agree bit for bit whatever the thread count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np

from nmkit.core.compiled import njit
from nmkit.core.pc.model import HCLT

PRECISION = 24
TOTAL = 1 << PRECISION
LOWER = 1 << 32  # the rANS state lives in [2^32, 2^64)
OK, PAYLOAD_SHORT, PAYLOAD_INCONSISTENT, ZERO_FREQUENCY = 0, 1, 2, 3
FAILURES = {PAYLOAD_SHORT: "the payload ends early", PAYLOAD_INCONSISTENT: "the payload does not decode consistently",
            ZERO_FREQUENCY: "the model gives a value zero probability"}


@dataclass(frozen=True)
class Plan:
    """Coding order, the model's arrays as the compiled loops read them (with the leaves' left cumulatives), and
    for each position the subtrees that close after it (deepest first)."""

    order: np.ndarray
    parent: np.ndarray
    close_ptr: np.ndarray
    close_nodes: np.ndarray
    prior: np.ndarray
    transition: np.ndarray
    transposed: np.ndarray  # transition[v].T per v, so both message directions read rows
    emission: np.ndarray
    cumulative: np.ndarray  # [D, V + 1, K]: sum_{c < x} p(c | z), latent-minor so one F(x) reads one row

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
        emission = np.ascontiguousarray(model.emission, np.float64)
        cumulative = np.zeros((emission.shape[0], emission.shape[2] + 1, emission.shape[1]))
        np.cumsum(emission.transpose(0, 2, 1), axis=1, out=cumulative[:, 1:])
        transition = np.ascontiguousarray(model.transition, np.float64)
        return cls(order, parent, ptr, nodes, np.ascontiguousarray(model.prior, np.float64), transition,
                   np.ascontiguousarray(transition.transpose(0, 2, 1)), emission, cumulative)

    def arrays(self) -> tuple:
        return (self.order, self.parent, self.close_ptr, self.close_nodes, self.prior, self.transition,
                self.transposed, self.emission, self.cumulative)


@njit
def _outside(t, order, parent, prior, transition, emission, x, outside, acc):
    """o_v for the variable at position t, normalised, into outside[v]."""
    v = order[t]
    p = parent[v]
    latents = emission.shape[1]
    if p < 0:
        for z in range(latents):
            outside[v, z] = prior[z]
    else:
        for zc in range(latents):
            outside[v, zc] = 0.0
        for zp in range(latents):  # row by row: a contiguous multiply-add the compiler vectorises
            base = outside[p, zp] * emission[p, zp, x[p]] * acc[p, zp]
            for zc in range(latents):
                outside[v, zc] += base * transition[v, zp, zc]
    norm = 0.0
    for z in range(latents):
        norm += outside[v, z]
    for z in range(latents):
        outside[v, z] /= norm


@njit
def _cdf(o, cumulative_v, symbol):
    """The quantised cumulative frequency F(symbol) (module docstring); non-decreasing in symbol."""
    values = cumulative_v.shape[0] - 1
    if symbol >= values:
        return np.int64(TOTAL)
    s = 0.0
    for z in range(o.shape[0]):
        s += o[z] * cumulative_v[symbol, z]
    if not s > 0.0:  # also NaN from a degenerate model: the interval check refuses it
        s = 0.0
    return min(np.int64(s * (TOTAL - values)), np.int64(TOTAL - values)) + symbol


@njit
def _close(t, close_ptr, close_nodes, parent, transposed, emission, x, acc):
    """After the variable at position t is set: send each completed subtree's inside message to its parent."""
    latents = emission.shape[1]
    up = np.empty(latents)
    for k in range(close_ptr[t], close_ptr[t + 1]):
        u = close_nodes[k]
        pu = parent[u]
        if pu < 0:
            continue
        for zp in range(latents):
            up[zp] = 0.0
        for zc in range(latents):  # up = T inside, column by column of the transposed table (contiguous)
            inside = emission[u, zc, x[u]] * acc[u, zc]
            for zp in range(latents):
                up[zp] += inside * transposed[u, zc, zp]
        top = 0.0
        for zp in range(latents):
            top = max(top, up[zp])
        top2 = 0.0
        for zp in range(latents):
            acc[pu, zp] *= up[zp] / top
            top2 = max(top2, acc[pu, zp])
        for zp in range(latents):
            acc[pu, zp] /= top2


@njit
def item_intervals(item, starts, freqs, order, parent, close_ptr, close_nodes, prior, transition, transposed,
                   emission, cumulative):
    """The coder's interval [starts[t], starts[t] + freqs[t]) of the item's value at each position t."""
    d, latents = emission.shape[0], emission.shape[1]
    outside = np.empty((d, latents))
    acc = np.ones((d, latents))
    for t in range(d):
        v = order[t]
        _outside(t, order, parent, prior, transition, emission, item, outside, acc)
        starts[t] = _cdf(outside[v], cumulative[v], item[v])
        freqs[t] = _cdf(outside[v], cumulative[v], item[v] + 1) - starts[t]
        _close(t, close_ptr, close_nodes, parent, transposed, emission, item, acc)


@njit(parallel=True)
def _encode(items, bounds, words, lengths, status, order, parent, close_ptr, close_nodes, prior, transition,
            transposed, emission, cumulative):
    """rANS-code chunk c (items bounds[c]..bounds[c+1]) into words[c]: the final state (two words, high first),
    then the renormalisation words in the order the decoder reads them."""
    d = items.shape[1]
    for c in nb.prange(len(bounds) - 1):
        starts = np.empty(d, np.int64)
        freqs = np.empty(d, np.int64)
        emitted = np.empty(words.shape[1], np.uint32)
        count = 0
        state = np.uint64(LOWER)
        for b in range(bounds[c + 1] - 1, bounds[c] - 1, -1):  # a stack: last item, last variable first
            item_intervals(items[b], starts, freqs, order, parent, close_ptr, close_nodes, prior, transition,
                           transposed, emission, cumulative)
            for t in range(d - 1, -1, -1):
                freq = np.uint64(max(freqs[t], 1))
                if freqs[t] < 1:
                    status[c] = ZERO_FREQUENCY
                if state >= (freq << np.uint64(64 - PRECISION)):
                    emitted[count] = np.uint32(state & np.uint64(0xFFFFFFFF))
                    count += 1
                    state >>= np.uint64(32)
                state = ((state // freq) << np.uint64(PRECISION)) + state % freq + np.uint64(starts[t])
        words[c, 0] = np.uint32(state >> np.uint64(32))
        words[c, 1] = np.uint32(state & np.uint64(0xFFFFFFFF))
        for i in range(count):
            words[c, 2 + i] = emitted[count - 1 - i]
        lengths[c] = count + 2


@njit(parallel=True)
def _decode(words, offsets, bounds, out, status, order, parent, close_ptr, close_nodes, prior, transition,
            transposed, emission, cumulative):
    """Inverse of _encode: chunk c's words are words[offsets[c]:offsets[c+1]]; status[c] says what went wrong."""
    d, latents, values = emission.shape
    mask = np.uint64(TOTAL - 1)
    for c in nb.prange(len(bounds) - 1):
        position, end = offsets[c], offsets[c + 1]
        if end - position < 2:
            status[c] = PAYLOAD_SHORT
            continue
        state = (np.uint64(words[position]) << np.uint64(32)) | np.uint64(words[position + 1])
        position += 2
        outside = np.empty((d, latents))
        acc = np.empty((d, latents))
        for b in range(bounds[c], bounds[c + 1]):
            item = out[b]
            acc[:] = 1.0
            for t in range(d):
                v = order[t]
                _outside(t, order, parent, prior, transition, emission, item, outside, acc)
                slot = np.int64(state & mask)
                o, cumulative_v = outside[v], cumulative[v]
                # galloping search from 0 (small symbols are the common ones: MNIST's background, residuals),
                # then bisection: F(low) <= slot < F(high) = stop
                low, start, high = 0, np.int64(0), 1
                stop = _cdf(o, cumulative_v, high)
                while stop <= slot:
                    low, start = high, stop
                    high = min(2 * high, values)
                    stop = _cdf(o, cumulative_v, high)
                while high - low > 1:
                    middle = (low + high) // 2
                    edge = _cdf(o, cumulative_v, middle)
                    if edge <= slot:
                        low, start = middle, edge
                    else:
                        high, stop = middle, edge
                freq = stop - start
                if freq < 1 or slot < start:
                    status[c] = PAYLOAD_INCONSISTENT
                    freq, start = 1, slot
                state = np.uint64(freq) * (state >> np.uint64(PRECISION)) + np.uint64(slot - start)
                if state < np.uint64(LOWER):
                    if position >= end:
                        status[c] = PAYLOAD_SHORT
                        break
                    state = (state << np.uint64(32)) | np.uint64(words[position])
                    position += 1
                item[v] = low
                _close(t, close_ptr, close_nodes, parent, transposed, emission, item, acc)
            if status[c] != OK:
                break
        if status[c] == OK and (state != np.uint64(LOWER) or position != end):
            status[c] = PAYLOAD_INCONSISTENT


def chunk_bounds(count: int, chunk: int) -> np.ndarray:
    """First item of every chunk of ``chunk`` items, then ``count``: [0, chunk, 2 chunk, ..., count]."""
    return np.unique(np.arange(0, count + chunk, chunk).clip(max=count))


def encode_chunks(plan: Plan, items: np.ndarray, chunk: int) -> list[np.ndarray]:
    """One rANS word stream per chunk of ``chunk`` items [N, D] (int64, values in range)."""
    bounds = chunk_bounds(len(items), chunk)
    chunks = len(bounds) - 1
    words = np.empty((chunks, min(chunk, len(items)) * items.shape[1] + 2), np.uint32)
    lengths = np.zeros(chunks, np.int64)
    status = np.zeros(chunks, np.int64)
    _encode(np.ascontiguousarray(items, np.int64), bounds, words, lengths, status, *plan.arrays())
    failed = status[status != OK]
    if failed.size:
        raise ValueError(FAILURES[int(failed[0])])
    return [words[c, : lengths[c]].copy() for c in range(chunks)]


def decode_chunks(plan: Plan, payloads: list[np.ndarray], count: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """The items [count, D] and each chunk's status (OK or a key of FAILURES)."""
    bounds = chunk_bounds(count, chunk)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in payloads])]).astype(np.int64)
    words = np.concatenate(payloads).astype(np.uint32) if payloads else np.zeros(0, np.uint32)
    out = np.zeros((count, len(plan.order)), np.int64)
    status = np.zeros(len(bounds) - 1, np.int64)
    _decode(words, offsets, bounds, out, status, *plan.arrays())
    return out, status
