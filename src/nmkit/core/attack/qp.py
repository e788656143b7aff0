"""QuadAttacK's QP: project penultimate features onto the polytope where the last linear layer ranks the
targets first, in order, by a margin (Paniagua, Grainger and Wu, "QuadAttacK", 2023, Sec. 3):

    z* = argmin ||z - z0||^2  s.t.  (A z + b)_{t_i} - (A z + b)_{t_{i+1}} >= m   (i < K)
                                     (A z + b)_{t_K} - (A z + b)_j       >= m   (j not a target)

Every constraint row is a difference of two rows of A: G = D A with D a +-1 class-difference matrix. Written
as G z >= h, the projection's dual is the bound-constrained QP
    min_{lambda >= 0} 1/2 lambda^T (D M D^T) lambda - lambda^T (h - G z0),   z* = z0 + A^T D^T lambda,
with M = A A^T the C x C Gram matrix of the head, shared by every instance and every call. So the dual never
touches the feature dimension: its Hessian blocks are gathered from M and its gradient is one [B, C] x [C, C]
product. It is solved for a whole batch by the Lawson-Hanson active-set method (the NNLS algorithm carried to
a QP), adding a block of the most violated constraints at a time (the block doubles while every addition
survives and falls back to one, which always does); a step back keeps every multiplier >= 0, so each
instance ends at its exact KKT point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

RIDGE = 1e-10  # relative; keeps a free block invertible when constraint rows are dependent
FIRST_BLOCK = 4
MAX_BLOCK = 8


@dataclass(frozen=True)
class OrderedTopK:
    """The ordered top-K polytopes {z : G z >= h} of one head for a batch of target lists, in class space:
    row r of G is A[upper[:, r]] - A[lower[:, r]]."""

    weight: torch.Tensor  # A [C, d]
    gram: torch.Tensor  # A A^T [C, C]
    upper: torch.Tensor  # [B, C-1] class that must stay above ...
    lower: torch.Tensor  # [B, C-1] ... this one, by the margin
    h: torch.Tensor  # [B, C-1]

    @classmethod
    def build(cls, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor, margin: float) -> OrderedTopK:
        batch, k = targets.shape
        classes = weight.shape[0]
        others = torch.ones(batch, classes, dtype=torch.bool, device=weight.device)
        others.scatter_(1, targets, False)
        rest = torch.nonzero(others)[:, 1].view(batch, classes - k)
        upper = torch.cat([targets[:, :-1], targets[:, -1:].expand(-1, classes - k)], dim=1)
        lower = torch.cat([targets[:, 1:], rest], dim=1)
        return cls(weight, weight @ weight.T, upper, lower, margin - (bias[upper] - bias[lower]))

    def select(self, instances: torch.Tensor) -> OrderedTopK:
        """The polytopes of the chosen instances."""
        return OrderedTopK(self.weight, self.gram, self.upper[instances], self.lower[instances], self.h[instances])

    def dense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """G [B, C-1, d] and h [B, C-1], for reference solvers."""
        return self.weight[self.upper] - self.weight[self.lower], self.h

    def rows_times(self, vectors: torch.Tensor) -> torch.Tensor:
        """G applied to class-space vectors: (A z)[upper] - (A z)[lower] given A z [B, C]."""
        return vectors.gather(1, self.upper) - vectors.gather(1, self.lower)

    def transpose_times(self, lam: torch.Tensor) -> torch.Tensor:
        """D^T lambda [B, C]: the class-space combination of constraint rows weighted by lambda."""
        out = torch.zeros(lam.shape[0], self.gram.shape[0], dtype=lam.dtype, device=lam.device)
        return out.scatter_add_(1, self.upper, lam).scatter_add_(1, self.lower, -lam)

    def cross(self, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        """(G G^T)[rows, columns] [B, a, b] for row indices [B, a] and [B, b], gathered from the Gram matrix."""
        classes = self.gram.shape[0]
        flat = self.gram.reshape(-1)
        up_r, low_r = (ends.gather(1, rows).unsqueeze(2) * classes for ends in (self.upper, self.lower))
        up_c, low_c = (ends.gather(1, columns).unsqueeze(1) for ends in (self.upper, self.lower))
        return flat[up_r + up_c] - flat[up_r + low_c] - flat[low_r + up_c] + flat[low_r + low_c]


def ordered_topk_constraints(weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor,
                             margin: float) -> OrderedTopK:
    return OrderedTopK.build(weight, bias, targets, margin)


def project(z0: torch.Tensor, polytope: OrderedTopK, *, tol: float = 1e-9, max_iter: int | None = None) -> torch.Tensor:
    """Euclidean projection of each z0 [B, d] onto its polytope. Finished instances drop out of the batch, so
    the cost follows the total work rather than the batch size times the slowest instance."""
    batch, rows = polytope.h.shape
    q = polytope.h - polytope.rows_times(z0 @ polytope.weight.T)
    free = _FreeSet(torch.empty(batch, 0, dtype=torch.long, device=z0.device),
                    torch.empty(batch, 0, 0, dtype=z0.dtype, device=z0.device))
    lam = torch.zeros(batch, 0, dtype=z0.dtype, device=z0.device)  # the free set's multipliers, by slot
    block = torch.full((batch,), FIRST_BLOCK, device=z0.device)
    threshold = tol * (1.0 + q.abs().amax(1, keepdim=True))
    pending = torch.arange(batch, device=z0.device)
    for _ in range(max_iter or 3 * rows + 10):
        part, sub = polytope.select(pending), free.select(pending)
        gradient = q[pending] - part.rows_times(part.transpose_times(sub.to_rows(lam[pending], rows)) @ part.gram)
        candidates = (gradient > threshold[pending]) & ~sub.to_rows(sub.occupied, rows)  # gradient: minus the dual's
        unfinished = candidates.any(1).nonzero().squeeze(1)
        pending, part, sub = pending[unfinished], part.select(unfinished), sub.select(unfinished)
        if len(pending) == 0:
            break
        entering, valid = _most_violated(gradient[unfinished], candidates[unfinished], block[pending])
        placed = sub.admit(part, entering, valid)
        current = _restore_positivity(q[pending], sub.pad_to(lam[pending]), sub, threshold[pending])
        free.assign(pending, sub)
        lam = free.pad_to(lam)
        lam[pending] = free.pad_to(current)
        survived = ((sub.slots.gather(1, placed) == entering) & valid).any(1)
        block[pending] = torch.where(survived, torch.clamp(block[pending] * 2, max=MAX_BLOCK), 1)
    return z0 + polytope.transpose_times(free.to_rows(lam, rows)) @ polytope.weight


@dataclass
class _FreeSet:
    """Each instance's free constraint rows, held in slots (-1: empty) with (G G^T) between slots kept, so
    admitting a row gathers one row of the Gram block and releasing one only empties its slot."""

    slots: torch.Tensor  # [n, W]
    system: torch.Tensor  # [n, W, W], zero in the rows and columns of empty slots

    @property
    def occupied(self) -> torch.Tensor:
        return self.slots >= 0

    @property
    def width(self) -> int:
        return self.slots.shape[1]

    def select(self, instances: torch.Tensor) -> _FreeSet:
        return _FreeSet(self.slots[instances], self.system[instances])

    def pad_to(self, values: torch.Tensor) -> torch.Tensor:
        """Per-slot values [n, w <= W] padded with zeros to this set's width."""
        return torch.nn.functional.pad(values, (0, self.width - values.shape[1]))

    def to_rows(self, values: torch.Tensor, rows: int) -> torch.Tensor:
        """Per-slot values [n, W] scattered to their constraint rows [n, rows] (zero elsewhere)."""
        out = torch.zeros(values.shape[0], rows, dtype=values.dtype, device=values.device)
        zero = torch.zeros((), dtype=values.dtype, device=values.device)
        return out.scatter_add_(1, self.slots.clamp(min=0), torch.where(self.occupied, values, zero))

    def admit(self, polytope: OrderedTopK, entering: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Put the valid entering rows [n, k] into empty slots (widening when needed); returns their slots."""
        short = int((entering.shape[1] - (~self.occupied).sum(1)).max())  # every entry lands on an empty slot
        if short > 0:
            self.slots = torch.nn.functional.pad(self.slots, (0, short), value=-1)
            self.system = torch.nn.functional.pad(self.system, (0, short, 0, short))
        empty_first = torch.argsort(self.occupied.to(torch.int8), dim=1, stable=True)
        placed = empty_first[:, : entering.shape[1]]
        self.slots = self.slots.scatter(1, placed, torch.where(valid, entering, self.slots.gather(1, placed)))
        across = polytope.cross(entering, self.slots.clamp(min=0)) * (valid.unsqueeze(2) & self.occupied.unsqueeze(1))
        width = self.width
        self.system = self.system.scatter(1, placed.unsqueeze(2).expand(-1, -1, width), across)
        self.system = self.system.scatter(2, placed.unsqueeze(1).expand(-1, width, -1), across.transpose(1, 2))
        return placed

    def assign(self, instances: torch.Tensor, other: _FreeSet) -> None:
        """Write another set's instances back into this one, widening whichever is narrower."""
        width = max(self.width, other.width)
        pad = lambda t, fill=0: torch.nn.functional.pad(t, (0, width - t.shape[-1]), value=fill)  # noqa: E731
        self.slots, slots = pad(self.slots, -1), pad(other.slots, -1)
        self.system = torch.nn.functional.pad(self.system, (0, width - self.system.shape[2], 0,
                                                             width - self.system.shape[1]))
        system = torch.nn.functional.pad(other.system, (0, width - other.width, 0, width - other.width))
        self.slots[instances], self.system[instances] = slots, system

    def release(self, instances: torch.Tensor, released: torch.Tensor) -> None:
        """Empty the released slots [n', W] of the chosen instances, zeroing their rows and columns."""
        kept = ~released
        self.slots[instances] = torch.where(released, -1, self.slots[instances])
        self.system[instances] = self.system[instances] * (kept.unsqueeze(2) & kept.unsqueeze(1))

    def solve(self, q: torch.Tensor, instances: torch.Tensor) -> torch.Tensor:
        """Per-slot s [n', W] solving (G G^T)_FF s_F = q_F for the chosen instances (zero in empty slots)."""
        occupied = self.occupied[instances]
        system = self.system[instances]
        diagonal = system.diagonal(dim1=1, dim2=2)
        diagonal += torch.where(occupied, RIDGE * (1.0 + diagonal), 1.0)  # empty slots: identity rows
        rhs = torch.where(occupied, q.gather(1, self.slots[instances].clamp(min=0)), 0.0)
        return torch.linalg.solve(system, rhs) * occupied  # LU: faster than batched Cholesky in torch on CPU


def _restore_positivity(q: torch.Tensor, lam: torch.Tensor, free: _FreeSet, threshold: torch.Tensor) -> torch.Tensor:
    """Lawson-Hanson's inner loop: move from lam toward the free set's solution, stopping where a multiplier
    reaches zero and releasing its slot, until the free set's solution is positive. Returns the multipliers."""
    working = torch.arange(len(q), device=q.device)
    for _ in range(free.width + 1):
        s = free.solve(q[working], working)
        current = lam[working]
        blocking = free.occupied[working] & (s <= 0)
        stepping = blocking.any(1)
        lam[working] = torch.where(stepping.unsqueeze(1), current, s)
        if not stepping.any():
            break
        working, s, current, blocking = working[stepping], s[stepping], current[stepping], blocking[stepping]
        ratio = torch.where(blocking, current / (current - s), torch.inf).amin(1, keepdim=True)
        current = current + ratio * (s - current)
        released = blocking & (current <= threshold[working])
        free.release(working, released)
        lam[working] = torch.where(released, 0.0, current)
    return lam


def _most_violated(gradient: torch.Tensor, candidates: torch.Tensor, block: torch.Tensor) -> tuple[torch.Tensor,
                                                                                                     torch.Tensor]:
    """Each instance's ``block`` most violated candidate rows [n, k] and which of them are real."""
    width = min(int(block.max()), gradient.shape[1])
    values, index = torch.where(candidates, gradient, -torch.inf).topk(width, dim=1)
    return index, (torch.arange(width, device=gradient.device) < block.unsqueeze(1)) & (values > -torch.inf)
