"""``nmkit prune`` end to end: load (or train) the model, prune a copy to each requested sparsity on the
configured schedule, fine-tune with the masks held, and report what every run bought.

Gradual schedule (Zhu and Gupta's cubic, SparseML ``GMPruningModifier`` with ``inter_func: cubic``):
    s_t = s_f + (s_i - s_f) (1 - (t - t_0) / (t_end - t_0))^3   at t = t_0, t_0 + update_frequency, ..., t_end
with masked training between steps; one-shot when end_epoch <= start_epoch.
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from nmkit.core import datasets, models
from nmkit.core.device import resolve_device
from nmkit.core.errors import InputError
from nmkit.core.executor import ExecutorSpec, run_tasks
from nmkit.core.models import Portable
from nmkit.core.prune.config import PruneConfig
from nmkit.core.prune.masks import left_out, prunable_parameters
from nmkit.core.prune.methods import Pruning, prune_to, sap_step
from nmkit.core.prune.pqi import pq_index
from nmkit.core.prune.report import layer_reports, output_positions, summary
from nmkit.core.prune.results import PruneResult, SparsityRun
from nmkit.core.prune.tensors import is_tensor_checkpoint, prune_checkpoint
from nmkit.core.prune.training import accuracy, train_epochs

TEST_FRACTION = 0.25


def cubic_schedule(config: PruneConfig, final: float) -> list[tuple[float, float]]:
    """(epoch, sparsity) pruning steps; a single (start_epoch, final) step when one-shot."""
    if not config.gradual:
        return [(config.start_epoch, final)]
    span, steps, t = config.end_epoch - config.start_epoch, [], config.start_epoch
    while t < config.end_epoch - 1e-9:
        progress = (t - config.start_epoch) / span
        steps.append((t, final + (config.init_sparsity - final) * (1 - progress) ** 3))
        t += config.update_frequency
    return steps + [(config.end_epoch, final)]


def run(config: PruneConfig, advance: Callable[[int], None] | None = None,
        on_pruned: Callable[[float, object, str], None] | None = None,
        checkpoint_folder: Callable[[float], Path | None] | None = None) -> PruneResult:
    """Prune at every sparsity of the sweep; ``on_pruned(target, model, format)`` receives each pruned model as
    soon as it is made. A tensor checkpoint is streamed into ``checkpoint_folder(target)`` instead, and
    ``on_pruned`` receives the files written there."""
    if is_tensor_checkpoint(config.model):
        return prune_checkpoint(config, checkpoint_folder, on_pruned, advance)
    notes: list[str] = []
    device = resolve_device(config.device)
    train_x, train_y, test_x, test_y = (t.to(device) for t in _data(config))
    if config.model is None:
        if not isinstance(config.data, str):
            raise InputError("field 'model': without a model file nmkit trains its zoo model, which needs data "
                             "digits or mnist")
        model, _ = models.train_on_digits(config.architecture, epochs=config.train_epochs, seed=config.seed,
                                          data=config.data)
        model_format = "state_dict"
        notes.append(f"trained zoo {config.architecture} on {config.data} for {config.train_epochs} epochs")
    else:
        model, model_format = models.load_model_and_format(config.model, architecture=config.architecture,
                                                           trust_pickle=config.trust_pickle)
    if device != "cpu":
        model = model.to(device)
    layers = prunable_parameters(model, config.params)
    classes = int(max(train_y.max(), test_y.max())) + 1
    try:
        models.check_classifier(model, test_x, classes, str(config.data), str(config.model or config.architecture))
        dense_accuracy = accuracy(model, test_x, test_y)
    except models.ForwardFailed as exc:
        if _needs_data(config):
            raise InputError(f"{exc}; pass --data with inputs the model takes") from None
        # magnitude pruning needs only the weights: prune, report no accuracy
        notes.append(f"accuracy not measured: {str(exc).removeprefix('model ')} (pass --data with inputs it takes)")
        dense_accuracy, test_x, test_y = None, None, None
    dense_pqi = pq_index([layer.weight for layer in layers], config.sap.p,
                        config.sap.q)
    if config.method == "sap":
        notes.append("SAP continues from the trained weights between steps (no rewind to initialisation)")
    # each sparsity level restarts from the dense model with the run's seed: a task on the executor (GPU runs stay
    # in this process), so the sweep is the same wherever its levels run
    executor = config.executor_spec() if device == "cpu" else ExecutorSpec("local", workers=1)
    data = (train_x, train_y, test_x, test_y)
    levels = run_tasks(_prune_level, [(Portable(model), config, target, data) for target in config.sparsities],
                       executor=executor, names=[f"sparsity {t:g}" for t in config.sparsities], advance=advance)
    runs, pruned = [], model
    for target, (level, portable) in zip(config.sparsities, levels, strict=True):
        runs.append(level)
        pruned = portable.model
        if on_pruned is not None:
            on_pruned(target, pruned if device == "cpu" else pruned.cpu(), model_format)
    chosen = prunable_parameters(pruned, config.params)
    return PruneResult(config.effective_method, model_format, dense_accuracy, dense_pqi, runs, notes,
                       pruned if device == "cpu" else pruned.cpu(), [layer.name for layer in chosen],
                       left_out(pruned, chosen))


def _needs_data(config: PruneConfig) -> bool:
    """Whether the method runs the model (second-order, distortion, PQ-Index steps, training)."""
    magnitude = config.method in ("global-mp", "layer-mp", "random", "lamp")
    return not magnitude or config.gradual or bool(config.fine_tune_epochs)


def copy_model(model: nn.Module) -> nn.Module:
    """An independent copy to prune. TorchScript goes through save and load: a deep-copied ScriptModule's
    parameters are no longer leaves, so gradients (M-FAC, fine-tuning) never reach them."""
    if isinstance(model, torch.jit.ScriptModule):
        buffer = io.BytesIO()
        torch.jit.save(model, buffer)
        buffer.seek(0)
        return torch.jit.load(buffer, map_location=next(model.parameters()).device)
    return copy.deepcopy(model)


def _prune_level(portable: Portable, config: PruneConfig, target: float, data) -> tuple[SparsityRun, Portable]:
    """One level of the sweep on a copy of the dense model: its report and the pruned model."""
    pruned = copy_model(portable.model)
    return _prune_one(pruned, config, target, data), Portable(pruned)


def _prune_one(model: nn.Module, config: PruneConfig, target: float, data) -> SparsityRun:
    train_x, train_y, test_x, test_y = data
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    layers = prunable_parameters(model, config.params)
    generator = torch.Generator().manual_seed(config.seed)
    state = Pruning(model, layers, [layer.weight.detach() != 0 for layer in layers], train_x, train_y, config,
                    generator)
    train = lambda epochs: train_epochs(model, layers, state.masks, train_x, train_y, epochs, lr=config.lr,  # noqa: E731
                                        batch_size=config.batch_size, generator=generator)
    seconds, steps = 0.0, 0
    if config.method == "sap":
        for _ in range(config.sap.iterations):
            start = time.perf_counter()
            pruned = sap_step(state, target)
            seconds += time.perf_counter() - start
            if pruned == 0:
                break
            steps += 1
            if config.sap.retrain_epochs:
                train(config.sap.retrain_epochs)
    else:
        epoch = 0.0
        for when, sparsity in cubic_schedule(config, target):
            if when > epoch:
                train(when - epoch)
                epoch = when
            start = time.perf_counter()
            prune_to(state, sparsity)
            seconds += time.perf_counter() - start
            steps += 1
    accuracy_pruned = accuracy(model, test_x, test_y) if test_x is not None else None
    fine_tuned = None
    if config.fine_tune_epochs:
        train(config.fine_tune_epochs)
        fine_tuned = accuracy(model, test_x, test_y)
    positions = output_positions(model, layers, test_x) if test_x is not None else {}
    reports = layer_reports(layers, positions, config.sap.p, config.sap.q)
    overall = summary(reports, pq_index([layer.weight for layer in layers], config.sap.p, config.sap.q))
    return SparsityRun(target, overall["sparsity"], accuracy_pruned, fine_tuned, overall["flops_remaining"],
                       overall["collapsed_layers"], overall["pqi_global"], steps, seconds,
                       [asdict(r) | {"density": r.density, "collapsed": r.collapsed} for r in reports])


def _data(config: PruneConfig) -> tuple[torch.Tensor, ...]:
    if isinstance(config.data, str):
        side = models.INPUT_SIDE[config.architecture]
        return (*models.digits_tensors("train", side, config.data), *models.digits_tensors("test", side, config.data))
    arrays = datasets.labelled_npz(config.data)
    as_x = lambda a: torch.from_numpy(a.astype("float32"))  # noqa: E731
    as_y = lambda a: torch.from_numpy(a.astype("int64"))  # noqa: E731
    if "x_train" in arrays and "x_test" in arrays:
        return as_x(arrays["x_train"]), as_y(arrays["y_train"]), as_x(arrays["x_test"]), as_y(arrays["y_test"])
    if "x" not in arrays:
        raise InputError(f"data {config.data}: expected x and y, or x_train, y_train, x_test and y_test")
    order = torch.randperm(len(arrays["y"]), generator=torch.Generator().manual_seed(config.seed))
    test = max(1, round(TEST_FRACTION * len(order)))
    x, y = as_x(arrays["x"])[order], as_y(arrays["y"])[order]
    return x[test:], y[test:], x[:test], y[:test]
