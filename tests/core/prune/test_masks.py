"""Masks: exact agreement with torch.nn.utils.prune, the radix select, MT re-allocation, PQ Index."""

import math

import numpy as np
import pytest
import torch
import torch.nn.utils.prune as torch_prune
from torch import nn

from nmkit.core import models
from nmkit.core.errors import InputError
from nmkit.core.prune import masks
from nmkit.core.prune.pqi import pq_index, sap_prune_count


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return models.cnn()


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.9, 0.99])
def test_global_mp_equals_torch_global_unstructured(sparsity):
    model, reference = _model(), _model()
    layers = masks.prunable_parameters(model, [masks.ALL_PRUNABLE])
    ours = masks.global_masks([p.weight.abs() for p in layers], round(sparsity * sum(p.weight.numel() for p in layers)))
    pairs = [(m, "weight") for m in reference.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    torch_prune.global_unstructured(pairs, pruning_method=torch_prune.L1Unstructured, amount=sparsity)
    signed = masks.global_masks([p.weight for p in layers], round(sparsity * sum(p.weight.numel() for p in layers)),
                                absolute=True)
    for mask, from_signed, (module, _) in zip(ours, signed, pairs, strict=True):
        assert torch.equal(mask, module.weight_mask.bool()) and torch.equal(from_signed, mask)


def test_layer_mp_equals_torch_l1_unstructured_per_layer():
    model, reference = _model(), _model()
    layers = masks.prunable_parameters(model, [masks.ALL_PRUNABLE])
    ours = masks.layer_masks([p.weight.abs() for p in layers], [0.7] * len(layers))
    for mask, module in zip(ours, [m for m in reference.modules() if isinstance(m, nn.Conv2d | nn.Linear)],
                            strict=True):
        torch_prune.l1_unstructured(module, "weight", amount=0.7)
        assert torch.equal(mask, module.weight_mask.bool())


def test_radix_select_finds_the_kth_smallest_across_tensors():
    generator = torch.Generator().manual_seed(1)
    scores = [torch.rand(n, generator=generator) ** 3 for n in (1, 100, 5000)] + [torch.zeros(7)]
    flat = torch.cat([s.reshape(-1) for s in scores]).sort().values
    ks = [1, 7, 8, 2000, flat.numel() - 1]
    found = masks.thresholds(lambda: iter(scores), ks)
    assert [t.value for t in found] == [float(flat[k - 1]) for k in ks]
    assert [t.ties for t in found] == [k - int((flat < flat[k - 1]).sum()) for k in ks]  # 7 zeros: ties 1, 7, 7


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_16_bit_weights_are_ranked_exactly_in_one_look_and_match_the_float32_path(dtype):
    generator = torch.Generator().manual_seed(2)
    weights = [(torch.randn(n, 9, generator=generator) * 0.05).to(dtype) for n in (3, 40, 700)]
    weights[1][:5] = 0.0
    weights[2][:3] = -0.0
    looks = []
    counting = lambda: looks.append(1) or iter(weights)  # noqa: E731
    total = sum(w.numel() for w in weights)
    for amount in (1, 4, 9, total // 2, total - 1):
        looks.clear()
        [half] = masks.thresholds(counting, [amount], absolute=True, half=dtype)
        assert len(looks) == 1
        [wide] = masks.thresholds(lambda: iter([w.float() for w in weights]), [amount], absolute=True)
        assert half == wide
        kept = masks.global_masks(weights, amount, absolute=True)
        wide_kept = masks.global_masks([w.float() for w in weights], amount, absolute=True)
        assert all(torch.equal(a, b) for a, b in zip(kept, wide_kept, strict=True))
        assert total - sum(int(k.sum()) for k in kept) == amount


def test_params_patterns_select_layers_and_reject_what_matches_nothing():
    model = _model()
    chosen = masks.prunable_parameters(model, ["re:conv.*"])
    assert [p.name for p in chosen] == ["conv1.weight", "conv2.weight"]
    with pytest.raises(InputError, match="matches no Conv/Linear weight"):
        masks.prunable_parameters(model, ["re:.*bias"])


def test_minimum_threshold_keeps_every_layer_at_the_floor_and_hits_the_target():
    sizes, target, floor = [8192, 8192, 640], 0.99, 40
    plain = [0.995, 0.99, 0.99]  # what a global threshold might give before re-allocation
    result = masks.minimum_threshold_sparsities(sizes, plain, target, floor)
    assert math.isclose(sum(n * s for n, s in zip(sizes, result, strict=True)), target * sum(sizes), rel_tol=1e-12)
    assert all((1 - s) * n >= floor - 1e-9 for n, s in zip(sizes, result, strict=True))
    assert masks.minimum_threshold_sparsities([10, 1000], [0.5, 0.5], 0.5, 20)[0] == 0.0  # tiny layers stay dense
    with pytest.raises(InputError, match="unreachable"):
        masks.minimum_threshold_sparsities(sizes, plain, 0.999, 100)


def test_lamp_scores_match_the_definition():
    w = torch.tensor([[3.0, -1.0], [2.0, 0.5]])
    squared = np.array([9.0, 1.0, 4.0, 0.25])
    expected = [v / squared[squared >= v].sum() for v in squared]
    np.testing.assert_allclose(masks.lamp_scores([w])[0].reshape(-1).numpy(), expected, rtol=1e-6)


def test_pq_index_closed_forms():
    assert pq_index(torch.full((100,), -0.3)) == pytest.approx(0.0, abs=1e-12)
    for p, q, d in ((0.5, 1.0, 50), (1.0, 2.0, 17)):
        one_hot = torch.zeros(d)
        one_hot[3] = 2.0
        spread = torch.cat([one_hot, torch.full((d - 1,), 1e-30)])  # d non-zeros, one carrying all the mass
        assert pq_index(spread[: d], p, q) == pytest.approx(0.0, abs=1e-12)  # only one non-zero: d = 1
        assert pq_index(spread, p, q) == pytest.approx(1 - d ** (1 / q - 1 / p), rel=1e-6)
        assert pq_index([spread[:3], spread[3:]], p, q) == pytest.approx(pq_index(spread, p, q), rel=1e-12)


def test_sap_step_count_matches_a_worked_example():
    # d = 1000, I = 0.5, p = 1, q = 2: r = ceil(1000 * 0.5^2) = 250, c = floor(1000 * min(1 - 0.25, 0.9)) = 750
    assert sap_prune_count(1000, 0.5, p=1.0, q=2.0) == 750
    # gamma 2 asks for 1500 but beta caps one step at 90%
    assert sap_prune_count(1000, 0.5, p=1.0, q=2.0, gamma=2.0) == 900
    # eta_r = 1: r = ceil(1000 * 2^-2 * 0.25) = ceil(62.5) = 63, c = 1000 - 63 (below a 95% cap)
    assert sap_prune_count(1000, 0.5, p=1.0, q=2.0, eta_r=1.0, beta=0.95) == 937


def test_ties_at_the_threshold_prune_exactly_the_requested_count():
    """Defect: every weight equal to the k-th smallest magnitude was pruned (0.5 gave 0.5714 on weights in steps
    of 1/64). Now exactly round(s N), ties taken in parameter then index order."""
    torch.manual_seed(0)
    weights = [torch.round(torch.randn(50, 40) * 64) / 64, torch.round(torch.randn(30, 20) * 64) / 64]
    total = sum(w.numel() for w in weights)
    for sparsity in (0.5, 0.9, 0.33):
        kept = masks.global_masks(weights, round(sparsity * total), absolute=True)
        assert total - sum(int(k.sum()) for k in kept) == round(sparsity * total)
        [threshold] = masks.thresholds(lambda: iter(weights), [round(sparsity * total)], absolute=True)
        threshold = threshold.value
        for w, k in zip(weights, kept, strict=True):  # below the threshold pruned, above kept
            assert not k[w.abs() < threshold].any() and k[w.abs() > threshold].all()
    tied = [torch.ones(6), torch.ones(4)]
    kept = masks.global_masks(tied, 7, absolute=True)
    assert kept[0].tolist() == [False] * 6 and kept[1].tolist() == [False, True, True, True]


def test_subclasses_and_attention_projections_are_prunable_and_the_rest_is_accounted_for():
    """Defect: layers were found by exact type name, so a TransformerEncoderLayer's out_proj (a Linear subclass)
    and its in_proj_weight (a bare parameter) were silently skipped."""
    layer = nn.TransformerEncoderLayer(d_model=16, nhead=2, dim_feedforward=32)
    chosen = masks.prunable_parameters(layer, [masks.ALL_PRUNABLE])
    assert sorted(p.name for p in chosen) == ["linear1.weight", "linear2.weight", "self_attn.in_proj_weight",
                                              "self_attn.out_proj.weight"]
    for p in chosen:
        assert p.weight is dict(layer.named_parameters())[p.name]
    reasons = masks.left_out(layer, chosen)
    assert set(reasons) | {p.name for p in chosen} == {name for name, _ in layer.named_parameters()}
    assert reasons["self_attn.in_proj_bias"] == "a bias" and "LayerNorm" in reasons["norm1.weight"]
    only_ffn = masks.prunable_parameters(layer, ["re:linear.*"])
    assert masks.left_out(layer, only_ffn)["self_attn.in_proj_weight"] == "not selected by params"
    kept = masks.global_masks([p.weight for p in chosen], 500, absolute=True)
    assert sum(int((~k).sum()) for k in kept) == 500
