"""nmkit prune's library run: collapse and the minimum threshold, schedules, methods against each other."""

import pytest
import torch

from nmkit.core import models
from nmkit.core.prune.config import PruneConfig
from nmkit.core.prune.masks import ALL_PRUNABLE, prunable_parameters
from nmkit.core.prune.methods import Pruning, sap_step
from nmkit.core.prune.run import cubic_schedule, run
from nmkit.core.recipe import build_config


def config(**values) -> PruneConfig:
    return build_config(PruneConfig, [("test", values, None)])


def test_global_mp_collapses_the_head_at_99_percent_and_the_minimum_threshold_keeps_every_layer():
    plain = run(config(final_sparsity=0.99)).runs[0]
    kept = run(config(final_sparsity=0.99, min_per_layer=40)).runs[0]
    assert "head.weight" in plain.collapsed_layers  # a class can no longer be reached through its weights
    assert "head.weight" not in kept.collapsed_layers
    assert all(layer["nonzero"] >= 40 for layer in kept.layers)
    assert kept.sparsity == pytest.approx(0.99, abs=1e-3) and plain.sparsity == pytest.approx(0.99, abs=1e-4)


def test_cubic_schedule_matches_the_formula_and_ends_at_the_target():
    steps = cubic_schedule(config(init_sparsity=0.2, start_epoch=1, end_epoch=5, update_frequency=1), 0.9)
    assert [t for t, _ in steps] == [1, 2, 3, 4, 5]
    for t, s in steps:
        assert s == pytest.approx(0.9 + (0.2 - 0.9) * (1 - (t - 1) / 4) ** 3)
    assert cubic_schedule(config(), 0.7) == [(0.0, 0.7)]


def test_gradual_pruning_keeps_masks_through_training_and_beats_one_shot():
    gradual = run(config(final_sparsity=0.95, end_epoch=4, update_frequency=1)).runs[0]
    one_shot = run(config(final_sparsity=0.95)).runs[0]
    assert gradual.prune_steps == 5 and gradual.sparsity == pytest.approx(0.95, abs=1e-4)  # training kept zeros
    assert gradual.accuracy_pruned > one_shot.accuracy_pruned
    tuned = run(config(final_sparsity=0.9, fine_tune_epochs=3)).runs[0]
    assert tuned.sparsity == pytest.approx(0.9, abs=1e-4) and tuned.accuracy_fine_tuned > tuned.accuracy_pruned


def test_second_order_and_adaptive_methods_beat_plain_magnitude_one_shot():
    results = {m: run(config(method=m, final_sparsity=0.9)).runs[0] for m in ("global-mp", "layer-mp", "mfac", "rd")}
    assert results["mfac"].accuracy_pruned > results["global-mp"].accuracy_pruned + 0.2
    assert results["global-mp"].accuracy_pruned >= results["layer-mp"].accuracy_pruned  # the seed paper's claim
    assert results["rd"].sparsity >= 0.9 - 1e-9  # the DP keeps within the survivor budget


def test_sap_stops_at_the_cap_and_prunes_every_neuron_in_neuron_scope():
    torch.manual_seed(0)
    model = models.mlp()
    layers = prunable_parameters(model, [ALL_PRUNABLE])
    cfg = config(method="sap", sap={"scope": "neuron", "gamma": 3.0})
    state = Pruning(model, layers, [torch.ones_like(layer.weight, dtype=torch.bool) for layer in layers],
                    torch.zeros(1), torch.zeros(1), cfg, torch.Generator())
    sap_step(state, 0.99)
    for mask in state.masks:
        pruned_per_row = (~mask).reshape(mask.shape[0], -1).sum(1)
        assert (pruned_per_row > 0).all()  # each output unit pruned its own share
    assert sap_step(state, state.sparsity()) == 0  # already at the cap: nothing more
    result = run(config(method="sap", final_sparsity=0.5)).runs[0]
    assert result.sparsity <= 0.5 + 1e-9 and result.prune_steps >= 1


def test_rd_reaches_extreme_sparsity_without_emptying_a_layer():
    result = run(config(method="rd", final_sparsity=0.99, rd={"grid": 11})).runs[0]
    assert result.sparsity >= 0.99 - 1e-9 and all(layer["nonzero"] > 0 for layer in result.layers)
