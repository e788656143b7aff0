"""SpikeGPT's two recurrences (WKV and the LIF neuron), forward and backward, compiled for CPU cores (numba).

The same loops over time as the Triton kernels in ``wkv.py`` and ``lif.py`` (whose docstrings give the
equations), one batch row per parallel iteration and the channels innermost (contiguous), on [B, T, C] arrays;
the running state is kept in float64. A sequential recurrence
costs the PyTorch reference one small tensor operation per step and formula term; here a step is a few scalar
instructions, which is what makes CPU training fast.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from nmkit.core.compiled import njit


@njit(parallel=True)
def wkv_forward(w, u, k, v, p0, q0, o0, y, p_in, q_in, o_in, p_out, q_out, o_out):
    batch, steps, channels = k.shape
    for b in nb.prange(batch):
        p, q, o = p0[b].astype(np.float64), q0[b].astype(np.float64), o0[b].astype(np.float64)
        for t in range(steps):
            for c in range(channels):
                kt, vt = k[b, t, c], v[b, t, c]
                p_in[b, t, c], q_in[b, t, c], o_in[b, t, c] = p[c], q[c], o[c]
                top = max(o[c], u[c] + kt)
                a, e = math.exp(o[c] - top), math.exp(u[c] + kt - top)
                y[b, t, c] = (a * p[c] + e * vt) / (a * q[c] + e)
                top = max(o[c] - w[c], kt)
                a, e = math.exp(o[c] - w[c] - top), math.exp(kt - top)
                p[c], q[c], o[c] = a * p[c] + e * vt, a * q[c] + e, top
        p_out[b], q_out[b], o_out[b] = p, q, o


@njit(parallel=True)
def wkv_backward(w, u, k, v, y, gy, p_in, q_in, o_in, gw, gu, gk, gv):
    batch, steps, channels = k.shape
    for b in nb.prange(batch):
        sum_w, sum_u = np.zeros(channels), np.zeros(channels)
        gp, gq = np.zeros(channels), np.zeros(channels)
        for t in range(steps - 1, -1, -1):
            for c in range(channels):
                kt, vt, yt = k[b, t, c], v[b, t, c], y[b, t, c]
                p, q, o = p_in[b, t, c], q_in[b, t, c], o_in[b, t, c]
                top = max(o, u[c] + kt)
                a, e = math.exp(o - top), math.exp(u[c] + kt - top)
                gyz = gy[b, t, c] / (a * q + e)
                top = max(o - w[c], kt)
                decay, fresh = math.exp(o - w[c] - top), math.exp(kt - top)
                sum_u[c] += gyz * e * (vt - yt)
                gk[b, t, c] = gyz * e * (vt - yt) + fresh * (gp[c] * vt + gq[c])
                gv[b, t, c] = gyz * e + fresh * gp[c]
                sum_w[c] -= decay * (gp[c] * p + gq[c] * q)
                gp[c], gq[c] = gyz * a + decay * gp[c], -gyz * a * yt + decay * gq[c]
        gw[b], gu[b] = sum_w, sum_u


@njit
def spike_count(h, theta, levels, signed):
    """S for one charge h (``lif.py``'s sum of Heavisides)."""
    count = 0.0
    for k in range(1, levels + 1):
        if h >= k * theta:
            count += 1.0
        elif signed and -h >= k * theta:
            count -= 1.0
    return count


@njit
def _surrogate(x, alpha):
    z = math.pi / 2 * alpha * x
    return alpha / (2 * (1 + z * z))


@njit(parallel=True)
def lif_forward(x, potential, theta, tau, levels, signed, soft_reset, spikes, charged, final):
    batch, steps, channels = x.shape
    for b in nb.prange(batch):
        v = potential[b].astype(np.float64)
        for t in range(steps):
            for c in range(channels):
                h = v[c] + (x[b, t, c] - v[c]) / tau
                s = spike_count(h, theta[c], levels, signed)
                charged[b, t, c], spikes[b, t, c] = h, s
                if soft_reset:
                    v[c] = h - theta[c] * s
                elif s != 0.0:
                    v[c] = 0.0
                else:
                    v[c] = h
        final[b] = v


@njit(parallel=True)
def lif_backward(grad_spikes, charged, theta, tau, alpha, levels, signed, soft_reset, grad_x, grad_theta):
    batch, steps, channels = charged.shape
    sign = 1.0 if signed else 0.0
    for b in nb.prange(batch):
        grad_v, sum_theta = np.zeros(channels), np.zeros(channels)
        for t in range(steps - 1, -1, -1):
            for c in range(channels):
                h, g, th = charged[b, t, c], grad_spikes[b, t, c], theta[c]
                ds_dh, ds_dtheta = 0.0, 0.0
                for k in range(1, levels + 1):
                    up, down = _surrogate(h - k * th, alpha), sign * _surrogate(-h - k * th, alpha)
                    ds_dh += up + down
                    ds_dtheta += k * (down - up)
                if soft_reset:
                    grad_h = grad_v[c] + (g - th * grad_v[c]) * ds_dh
                    sum_theta[c] += (g - th * grad_v[c]) * ds_dtheta - grad_v[c] * spike_count(h, th, levels, signed)
                else:
                    up, down = _surrogate(h - th, alpha), sign * _surrogate(-h - th, alpha)
                    fired = 1.0 if spike_count(h, th, levels, signed) != 0.0 else 0.0
                    grad_h = grad_v[c] * (1.0 - fired) + g * ds_dh - grad_v[c] * h * (up - down)
                    sum_theta[c] += g * ds_dtheta + grad_v[c] * h * (up + down)
                grad_x[b, t, c] = grad_h / tau
                grad_v[c] = grad_h * (1.0 - 1.0 / tau)
        grad_theta[b] = sum_theta


def arrays(*tensors) -> list[np.ndarray]:
    """Contiguous numpy views of CPU tensors (detached; no copy when already contiguous)."""
    return [t.detach().contiguous().numpy() for t in tensors]
