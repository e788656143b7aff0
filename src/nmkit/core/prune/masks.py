"""The one primitive every pruning method shares: keep-masks from per-weight scores and a budget.

Global Magnitude Pruning (Gupta et al., "Is Complexity Required for Neural Network Pruning?", Sec. 3):
prune the k = round(S N) smallest |w| over all prunable weights, the same count as
``torch.nn.utils.prune.global_unstructured(..., L1Unstructured, amount=S)``. The threshold is the k-th
smallest score, found by a radix select over 16-bit histograms (one pass for 16-bit weights, two for float32),
so no copy of the N scores is made and the scores can be streamed from disk.
The Minimum Threshold (MT) variant then re-allocates per-layer sparsities so every layer keeps at least MT
weights (``prune_withMT.py`` step 2) and prunes each layer by its own magnitude.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from nmkit.core.errors import InputError
from nmkit.core.prune.config import ALL_PRUNABLE
from nmkit.kernels.magnitude_histogram import HALF_DTYPES, half_histogram, radix_histogram

KINDS = {"Linear": "linear", "Conv1d": "conv", "Conv2d": "conv", "Conv3d": "conv"}
"""TorchScript modules keep only their class name: these names are prunable there."""
ATTENTION_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
"""nn.MultiheadAttention's input projections: bare parameters of a linear map (its out_proj is a Linear)."""


@dataclass
class Prunable:
    """One prunable weight tensor: ``name`` is its parameter name, ``module`` owns it as ``attribute``."""

    name: str
    module: nn.Module
    kind: str  # linear | conv
    attribute: str = "weight"

    @property
    def weight(self) -> torch.Tensor:
        return getattr(self.module, self.attribute)


def _kind(module: nn.Module) -> str | None:
    """linear / conv for nn.Linear, nn.Conv1d/2d/3d and their subclasses (eager), or by class name (TorchScript)."""
    if isinstance(module, torch.jit.ScriptModule):
        return KINDS.get(module.original_name)
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        return "conv"
    return None


def candidate_parameters(model: nn.Module) -> list[Prunable]:
    """Every weight a pruning method may touch: Linear and Conv weights (subclasses included, such as the
    attention's ``NonDynamicallyQuantizableLinear``) and nn.MultiheadAttention's input projections."""
    candidates = []
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        kind = _kind(module)
        if kind is not None and isinstance(getattr(module, "weight", None), torch.Tensor):
            candidates.append(Prunable(f"{prefix}weight", module, kind))
        if isinstance(module, nn.MultiheadAttention):
            candidates += [Prunable(f"{prefix}{attribute}", module, "linear", attribute)
                           for attribute in ATTENTION_WEIGHTS if isinstance(getattr(module, attribute), torch.Tensor)]
    return candidates


def left_out(model: nn.Module, chosen: list[Prunable]) -> dict[str, str]:
    """Every parameter not pruned, with the reason: the report's answer to "what did you skip?"."""
    candidates = {c.name for c in candidate_parameters(model)}
    taken = {c.name for c in chosen}
    owners = {f"{name}.{p}" if name else p: type(m).__name__ for name, m in model.named_modules()
              for p, _ in m.named_parameters(recurse=False)}
    reasons = {}
    for name, _ in model.named_parameters():
        if name in taken:
            continue
        if name in candidates:
            reasons[name] = "not selected by params"
        elif name.endswith("bias"):
            reasons[name] = "a bias"
        else:
            reasons[name] = f"not a Linear/Conv/attention weight ({owners.get(name, '?')})"
    return reasons


def prunable_parameters(model: nn.Module, patterns: list[str]) -> list[Prunable]:
    """The weights of :func:`candidate_parameters` selected by ``patterns`` (``__ALL_PRUNABLE__``, or regexes with
    an optional SparseML ``re:`` prefix, matched against the whole parameter name). A pattern that selects nothing
    is an error."""
    candidates = candidate_parameters(model)
    if not candidates:
        raise InputError("model: no Conv or Linear weights to prune")
    chosen: set[str] = set()
    for pattern in patterns:
        if pattern == ALL_PRUNABLE:
            chosen |= {c.name for c in candidates}
            continue
        try:
            regex = re.compile(pattern.removeprefix("re:"))
        except re.error as exc:
            raise InputError(f"field 'params': {pattern!r} is not a valid regular expression ({exc})") from None
        matched = {c.name for c in candidates if regex.fullmatch(c.name)}
        if not matched:
            names = ", ".join(c.name for c in candidates)
            raise InputError(f"field 'params': {pattern!r} matches no Conv/Linear weight (they are: {names})")
        chosen |= matched
    return [c for c in candidates if c.name in chosen]


@dataclass(frozen=True)
class Threshold:
    """Prune every score below ``value`` and the first ``ties`` scores equal to it (tensors in the order given,
    then flat index), so exactly the budget is pruned even when many scores tie."""

    value: float
    ties: int


def thresholds(looks: Callable[[], Iterable[torch.Tensor]], amounts: list[int], absolute: bool = False,
               half: torch.dtype | None = None) -> list[Threshold]:
    """The k-th smallest (1-based, 0 < k < N) non-negative score for each k of ``amounts``, over the tensors one
    call of ``looks()`` yields (of |score| with ``absolute``). Scores that are all 16-bit floats of dtype ``half``
    take one look (:func:`half_histogram`); others two, each a radix-histogram pass over float32 patterns (high 16
    bits, then the low 16 bits inside each boundary bin), so the scores can be streamed from disk twice instead
    of held."""
    if half is not None:
        return half_thresholds(sum(half_histogram(s, absolute) for s in looks()), amounts, half)
    high = sum(radix_histogram(s, absolute=absolute) for s in looks())
    places = [_bin_holding(high, k) for k in amounts]
    low: dict[int, torch.Tensor | int] = dict.fromkeys(sorted({b for b, _ in places}), 0)
    for s in looks():
        for b in low:
            low[b] = low[b] + radix_histogram(s, b, absolute)
    found = []
    for high_bin, rank in places:
        low_bin, ties = _bin_holding(low[high_bin], rank)
        bits = torch.tensor([(high_bin << 16) | low_bin], dtype=torch.int32)
        found.append(Threshold(float(bits.view(torch.float32)), ties))
    return found


def half_thresholds(counts: torch.Tensor, amounts: list[int], half: torch.dtype) -> list[Threshold]:
    """The k-th smallest for each k of ``amounts`` from a :func:`half_histogram` of all scores (dtype ``half``)."""
    places = [_bin_holding(counts, k) for k in amounts]
    return [Threshold(float(torch.tensor([b], dtype=torch.int16).view(half)), rank) for b, rank in places]


def _bin_holding(counts: torch.Tensor, k: int) -> tuple[int, int]:
    """The bin where the cumulative count reaches k, and k's rank inside that bin."""
    cumulative = counts.cumsum(0)
    index = int(torch.searchsorted(cumulative, torch.tensor([k], device=counts.device)))
    before = int(cumulative[index - 1]) if index else 0
    return min(index, len(counts) - 1), k - before


def keep_mask(scores: torch.Tensor, threshold: Threshold, ties_left: int,
              absolute: bool = False) -> tuple[torch.Tensor, int]:
    """One tensor's keep-mask under ``threshold`` while ``ties_left`` threshold-valued scores remain to be pruned,
    and how many of them it prunes. 16-bit scores are compared as they are when the threshold is one of their
    values, others as float32 (the precision the threshold was found in)."""
    with torch.no_grad():
        ranked = scores.abs() if absolute else scores
        if ranked.dtype not in HALF_DTYPES or float(ranked.new_tensor(threshold.value)) != threshold.value:
            ranked = ranked.to(torch.float32)
        if ties_left <= 0:  # every tie is kept: one comparison
            return ranked >= threshold.value, 0
        keep = ranked > threshold.value
        tied = (ranked == threshold.value).view(-1).nonzero().view(-1)
        pruned = min(ties_left, len(tied))
        keep.view(-1)[tied[pruned:]] = True
        return keep, pruned


def common_half(tensors: Iterable[torch.Tensor | torch.dtype]) -> torch.dtype | None:
    """The 16-bit float dtype every tensor (or dtype) shares, if they share one."""
    dtypes = {t if isinstance(t, torch.dtype) else t.dtype for t in tensors}
    return dtypes.pop() if len(dtypes) == 1 and dtypes <= set(HALF_DTYPES) else None


def global_masks(scores: list[torch.Tensor], amount: int, absolute: bool = False) -> list[torch.Tensor]:
    """Keep-masks pruning exactly the ``amount`` smallest scores over all tensors; ``absolute`` ranks raw weights
    by magnitude, one layer-sized temporary at a time.

    Scores tied at the threshold are pruned in order (tensors in the given order, then flat index) until the
    count is exact, so the mask is ``torch.nn.utils.prune.global_unstructured``'s wherever torch's is unambiguous.
    """
    if amount <= 0 or amount >= sum(s.numel() for s in scores):
        return [torch.full_like(s, amount <= 0, dtype=torch.bool) for s in scores]
    [threshold] = thresholds(lambda: iter(scores), [amount], absolute, common_half(scores))
    masks, ties = [], threshold.ties
    for s in scores:
        keep, pruned = keep_mask(s, threshold, ties, absolute)
        ties -= pruned
        masks.append(keep)
    return masks


def layer_masks(scores: list[torch.Tensor], sparsities: list[float], rounding=round) -> list[torch.Tensor]:
    """Keep-masks pruning round(s_l n_l) smallest scores in each layer (``prune.l1_unstructured``'s count)."""
    return [global_masks([s], int(rounding(sparsity * s.numel())))[0]
            for s, sparsity in zip(scores, sparsities, strict=True)]


def lamp_scores(weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """LAMP (Lee et al. 2021): w_u^2 / sum_{v >= u} w_v^2 with weights sorted by magnitude within the layer."""
    scores = []
    for w in weights:
        squared = w.detach().reshape(-1).to(torch.float32) ** 2
        order = squared.argsort()
        tail = squared[order].flip(0).cumsum(0).flip(0)
        scores.append(torch.empty_like(squared).scatter_(0, order, squared[order] / tail).view(w.shape))
    return scores


def minimum_threshold_sparsities(sizes: list[int], sparsities: list[float], target: float,
                                 floor: int) -> list[float]:
    """Per-layer sparsities s_l = min(c s_l0, 1 - floor/n_l), with layers smaller than ``floor`` left dense and
    c chosen so that sum n_l s_l = target N: the fixed point of ``prune_withMT.py``'s rescale-and-clamp loop."""
    total = sum(sizes)
    base = [0.0 if n < floor else s for n, s in zip(sizes, sparsities, strict=True)]
    caps = [0.0 if n < floor else 1.0 - floor / n for n in sizes]
    if sum(n * c for n, c in zip(sizes, caps, strict=True)) < target * total - 1e-9:
        raise InputError(f"field 'min_per_layer': keeping {floor} weights in every layer makes sparsity {target} "
                         "unreachable")
    capped = [False] * len(sizes)
    while True:
        budget = target * total - sum(n * c for n, c, f in zip(sizes, caps, capped, strict=True) if f)
        free_mass = sum(n * s for n, s, f in zip(sizes, base, capped, strict=True) if not f)
        scale = budget / free_mass if free_mass > 0 else 0.0
        newly = [not f and scale * s > c for s, c, f in zip(base, caps, capped, strict=True)]
        if not any(newly):
            return [c if f else scale * s for s, c, f in zip(base, caps, capped, strict=True)]
        capped = [f or n for f, n in zip(capped, newly, strict=True)]
