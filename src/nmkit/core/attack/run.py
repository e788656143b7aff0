"""The attack loop shared by QuadAttacK, CW^K and AD (Paniagua, Grainger and Wu 2023, ``Unguided.attack``).

For each binary-search step on the per-example loss weight c (CW style, in [0, coefficient_upper]):
delta starts at N(0, 1) * 2e-3; each iteration evaluates the model, keeps the lowest-energy success,
minimises sum_b c_b L_method + ||delta_b||^2 with AdamW (re-created at the warm-up boundary), clamps
x + delta to the box, and multiplies c_b by 0.75 for examples that just improved. A success means the
model's ordered top-K equals the targets exactly; energies (L1, L2, Linf of delta) count successes only.
QuadAttacK's loss is ||z - z*||^2 with z* the projection of the current features z (held constant:
Danskin's theorem gives the gradient 2 (z - z*)).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nmkit.core import io
from nmkit.core.attack.config import AttackConfig
from nmkit.core.attack.qp import ordered_topk_constraints, project
from nmkit.core.errors import InputError

AD_ALPHA, AD_BETA = 10.0, 0.3


@dataclass
class AttackResult:
    method: str
    k: int
    budget: str
    examples: int
    success_rate: float
    energy: dict[str, dict[str, float]]  # norm -> mean/min/max over successes
    seconds_per_example: float
    model_test_accuracy: float | None = None
    notes: list[str] = field(default_factory=list)
    comparison: dict[str, dict] | None = None  # method "compare": each method's rate, energies, time
    adversarial: np.ndarray | None = field(default=None, repr=False)
    original: np.ndarray | None = field(default=None, repr=False)
    success: np.ndarray | None = field(default=None, repr=False)
    targets: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)
    rows: np.ndarray | None = field(default=None, repr=False)  # each example's row in --data (or the test split)
    by_method: dict[str, tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)  # (adv, success)

    def summary(self) -> dict:
        hidden = {"adversarial", "original", "success", "targets", "labels", "rows", "by_method"}
        return {k: v for k, v in self.__dict__.items() if k not in hidden}


SCRIPTED_SUPPORT = ("a TorchScript classifier is supported when running its submodules in order (flattening "
                    "before a Linear) gives its output and the last one is a Linear layer, as for an nn.Sequential "
                    "ending in nn.Linear; a forward that does more (functional activations, pooling, skips) must "
                    "use modules for them (nn.ReLU, nn.Flatten) or come as a zoo state dict or a module")


def _is_linear(module) -> bool:
    """nn.Linear or a subclass, eager or TorchScript (scripted modules keep the class name, not the type)."""
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, torch.jit.ScriptModule) and module.original_name.endswith("Linear") and \
        getattr(module, "weight", None) is not None and module.weight.dim() == 2


def _fitted_to(stage, x: torch.Tensor) -> torch.Tensor:
    """``x`` flattened to [N, -1] where ``stage`` is a Linear that could not take it otherwise: a forward that
    flattens before its Linear (``x.view(x.size(0), -1)``) is not a submodule, so running the submodules skips it."""
    if _is_linear(stage) and x.dim() > 2 and x.shape[-1] != stage.weight.shape[1]:
        return x.flatten(1)
    return x


def _stages(module) -> list:
    """The submodules a Sequential runs in order, nested Sequentials expanded; [module] for anything else."""
    kind = module.original_name if isinstance(module, torch.jit.ScriptModule) else type(module).__name__
    if kind == "Sequential":
        return [stage for child in module.children() for stage in _stages(child)]
    return [module]


class SplitModel:
    """A classifier seen as features -> final Linear. Eager models: the head's input is captured by a forward
    hook. TorchScript (no hooks): the model's submodules are run in order and the last must be the Linear head;
    the split is checked against the model's own output on every call."""

    def __init__(self, model: nn.Module, feature_layer: str | None, mean=None, std=None) -> None:
        self.model = model
        self.mean, self.std = mean, std  # per-channel tensors broadcast over dim 1, or None
        self._features: torch.Tensor | None = None
        self.body: list | None = None  # TorchScript: the submodules before the head, run in order
        self._checked = False
        if isinstance(model, torch.jit.ScriptModule):
            self._split_scripted(model, feature_layer)
            return
        linears = [(name, m) for name, m in model.named_modules() if _is_linear(m)]
        if feature_layer is not None:
            linears = [(name, m) for name, m in linears if name == feature_layer]
        if not linears:
            what = f"no Linear layer named {feature_layer!r}" if feature_layer else "no Linear layer"
            raise InputError(f"model: {what}; QuadAttacK needs a classifier whose last op is a Linear layer")
        self.head_name, self.head = linears[-1]
        self._hook = self.head.register_forward_hook(
            lambda module, inputs, output: setattr(self, "_features", inputs[0]))

    def remove(self) -> None:
        """Take the forward hook off the model (a model attacked shard by shard gets one split per shard)."""
        if getattr(self, "_hook", None) is not None:
            self._hook.remove()

    def _split_scripted(self, model, feature_layer: str | None) -> None:
        stages = [stage for child in model.children() for stage in _stages(child)]
        if not stages or not _is_linear(stages[-1]):
            raise InputError(f"model: {SCRIPTED_SUPPORT}")
        names = {id(m): name for name, m in model.named_modules()}
        self.head_name, self.head, self.body = names.get(id(stages[-1]), "last"), stages[-1], stages[:-1]
        if feature_layer is not None and feature_layer != self.head_name:
            raise InputError(f"model: in a TorchScript model the head is its last submodule ({self.head_name!r}), "
                             f"not {feature_layer!r}")

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.mean is None:
            return x
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self.mean.view(shape)) / self.std.view(shape)

    def model_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The whole model's output on ``x`` (normalised first, as every call is)."""
        return self.model(self._normalize(x))

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._normalize(x)
        if self.body is not None:
            expected = None if self._checked else self.model(x)  # a bad input shape fails here, as for any model
            try:
                features = x
                for stage in self.body:
                    features = stage(_fitted_to(stage, features))
                features = _fitted_to(self.head, features)
                logits = self.head(features)
            except (RuntimeError, torch.jit.Error):
                features = logits = None
            if not self._checked:  # once: the chain of submodules must be the model
                if logits is None or features.dim() != 2 or logits.shape != expected.shape or \
                        float((logits - expected).detach().abs().max()) > 1e-5:
                    raise InputError(f"model: running its submodules in order does not give its output; "
                                     f"{SCRIPTED_SUPPORT}")
                self._checked = True
            return features, logits
        logits = self.model(x)
        features = self._features
        if features is None or float((self.head(features) - logits).detach().abs().max()) > 1e-5:
            raise InputError(f"model: its output is not the output of layer {self.head_name!r}; pass "
                             "--feature-layer with the final Linear layer")
        return features, logits


def random_targets(labels: torch.Tensor, k: int, classes: int, seed: int) -> torch.Tensor:
    """K distinct classes per example, excluding its label, in random order (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for label in labels.tolist():
        order = torch.randperm(classes, generator=generator)
        rows.append(order[order != label][:k])
    return torch.stack(rows)


def ordered_success(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return (logits.argsort(dim=1, descending=True)[:, : targets.shape[1]] == targets).all(1)


def method_loss(method: str, features, logits, targets, polytope) -> torch.Tensor:
    """Per-example loss of the chosen method (lower is closer to the ordered top-K); ``polytope`` is
    QuadAttacK's polytopes, fixed for the whole attack since it depends only on the head and the targets."""
    if method == "quadattack":
        with torch.no_grad():
            goal = project(features.detach().double(), polytope).to(features.dtype)
        return ((features - goal) ** 2).sum(1)
    if method == "cwk":
        return cw_k_loss(logits, targets)
    return ad_loss(logits, targets)


def cw_k_loss(logits: torch.Tensor, targets: torch.Tensor, kappa: float = 0.0) -> torch.Tensor:
    """(1/K) sum_{i=2..K+1} max(0, max_{j not in t_1..t_{i-1}} logit_j - min_{l<i} logit_{t_l} + kappa)."""
    batch, k = targets.shape
    target_logits = logits.gather(1, targets)
    masked = logits.clone()
    total = torch.zeros(batch, dtype=logits.dtype, device=logits.device)
    for i in range(1, k + 1):
        masked = masked.scatter(1, targets[:, i - 1 : i], -torch.inf)
        lowest = target_logits[:, :i].amin(1)
        total = total + torch.clamp(masked.amax(1) - lowest + kappa, min=0)
    return total / k


def ad_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """KL(softmax(logits) || P_adv); P_adv's logits: alpha - i beta for the i-th target, 0 elsewhere."""
    goal = torch.zeros_like(logits)
    ranks = torch.arange(targets.shape[1], dtype=logits.dtype, device=logits.device)
    goal.scatter_(1, targets, (AD_ALPHA - ranks * AD_BETA).expand(targets.shape[0], -1))
    log_p = torch.log_softmax(logits, 1)
    return (log_p.exp() * (log_p - torch.log_softmax(goal, 1))).sum(1)


def attack(split: SplitModel, x: torch.Tensor, targets: torch.Tensor, config: AttackConfig,
           seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Best (lowest-L2) successful adversarial per example, and the success flags; ``seed`` (default
    ``config.seed``) draws the initial perturbations."""
    generator = torch.Generator().manual_seed(config.seed if seed is None else seed)
    batch = len(x)
    best = x.clone()
    best_energy = torch.full((batch,), torch.inf)
    low, high = torch.zeros(batch), torch.full((batch,), config.coefficient_upper)
    polytope = ordered_topk_constraints(split.head.weight.detach().double(), split.head.bias.detach().double(),
                                        targets, config.margin) if config.method == "quadattack" else None
    for _ in range(config.steps):
        c = (low + high) / 2
        delta = (torch.randn(x.shape, generator=generator) * 2e-3).requires_grad_(True)
        optimiser = torch.optim.AdamW([delta], lr=config.lr)
        found = torch.zeros(batch, dtype=torch.bool)
        for iteration in range(config.iterations):
            if iteration == config.warmup:
                optimiser = torch.optim.AdamW([delta], lr=config.lr)
            features, logits = split(x + delta)
            with torch.no_grad():
                energy = delta.flatten(1).norm(dim=1)
                better = ordered_success(logits, targets) & (energy < best_energy)
                best[better] = (x + delta)[better]
                best_energy[better] = energy[better]
                found |= better
            loss = c * method_loss(config.method, features, logits, targets, polytope)
            optimiser.zero_grad()
            (loss + (delta**2).flatten(1).sum(1)).sum().backward()
            optimiser.step()
            with torch.no_grad():
                delta.copy_(torch.clamp(x + delta, config.low, config.high) - x)
                c = torch.where(better, 0.75 * c, c)
        high = torch.where(found, torch.minimum(high, c), high)
        low = torch.where(found, low, torch.maximum(low, c))
    return best, torch.isfinite(best_energy)


def energies(perturbation: torch.Tensor, success: torch.Tensor) -> dict[str, dict[str, float]]:
    flat = perturbation[success].flatten(1)
    norms = {"l1": flat.abs().sum(1), "l2": flat.norm(dim=1), "linf": flat.abs().amax(1) if len(flat) else flat[:, 0]}
    return {name: ({"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())} if len(v) else {})
            for name, v in norms.items()}


def run(config: AttackConfig, advance: Callable[[int], None] | None = None,
        log_dir: Path | None = None) -> AttackResult:
    """Attack the first ``count`` correctly classified inputs; with ``log_dir`` each finished shard is logged
    there (one log per method), so a run with ``resume`` attacks only the rest."""
    from nmkit.core import models

    notes = []
    accuracy = None
    if config.model is None:
        data = config.data if isinstance(config.data, str) else "digits"
        model, accuracy = models.train_on_digits(config.architecture, seed=config.seed, data=data)
        notes.append(f"trained zoo {config.architecture} on {data} (test accuracy {accuracy:.3f})")
    else:
        model = models.load_model(config.model, architecture=config.architecture, trust_pickle=config.trust_pickle)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    as_tensor = lambda v: None if v is None else torch.tensor(v, dtype=torch.float32)  # noqa: E731
    split = SplitModel(model, config.feature_layer, as_tensor(config.mean), as_tensor(config.std))
    x, labels = _inputs(config)
    models.check_classifier(split.model_logits, x, int(labels.max()) + 1, str(config.data),
                            str(config.model or config.architecture))
    classes = split.head.weight.shape[0]
    if config.k >= classes:
        raise InputError(f"field 'k' expects a value below the number of classes ({classes}), found {config.k}")
    with torch.no_grad():
        correct = split(x)[1].argmax(1) == labels
    split.remove()  # each shard makes its own split; the model ships to the workers without this one's hook
    rows = torch.nonzero(correct).view(-1)[: config.count]  # the first correctly classified rows of --data
    targets = _targets(config, labels, classes, rows)
    x, labels = x[rows], labels[rows]
    if config.method in ("ad", "compare"):
        notes.append("AD without word-embedding similarities: non-target logits of the goal distribution are 0")
    results = {}
    for method in (("quadattack", "cwk", "ad") if config.method == "compare" else (config.method,)):
        start = time.perf_counter()
        adversarial, success = attack_shards(model, x, targets, dataclasses.replace(config, method=method), advance,
                                             log_dir)
        results[method] = AttackResult(method, config.k, config.budget, len(x), float(success.float().mean()),
                                       energies(adversarial - x, success),
                                       (time.perf_counter() - start) / max(len(x), 1), accuracy, notes,
                                       adversarial=adversarial.numpy(), original=x.numpy(), success=success.numpy(),
                                       targets=targets.numpy(), labels=labels.numpy(), rows=rows.numpy())
    result = next(iter(results.values()))  # compare: QuadAttacK's adversarials are the ones written out
    result.by_method = {m: (r.adversarial, r.success) for m, r in results.items()}
    if config.method == "compare":
        result.method = "compare"
        result.comparison = {m: {"success_rate": r.success_rate, "energy": r.energy,
                                 "seconds_per_example": r.seconds_per_example} for m, r in results.items()}
    return result


def attack_shards(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, config: AttackConfig,
                  advance: Callable[[int], None] | None = None,
                  log_dir: Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`attack` on shards of ``config.shard`` inputs as tasks on the run's executor, merged in input order.
    Shard i draws from the i-th child of the run's seed, and a shard's computation does not depend on the others,
    so the adversarials are the same wherever the shards run."""
    from nmkit.core.executor import TaskLog, run_tasks
    from nmkit.core.models import Portable

    bounds = list(range(0, len(x), config.shard))
    seeds = np.random.SeedSequence(config.seed).spawn(len(bounds))
    portable = Portable(model)
    tasks = [(portable, x[b:b + config.shard], targets[b:b + config.shard], config,
              int(seeds[i].generate_state(1)[0])) for i, b in enumerate(bounds)]
    log = None if log_dir is None else TaskLog(log_dir / f"tasks-{config.method}.jsonl", _batch_key(config, x),
                                               _encode_shard, _decode_shard)
    parts = run_tasks(_attack_shard, tasks, executor=config.executor_spec(),
                      names=[f"shard {i} (inputs {b}..{min(b + config.shard, len(x)) - 1})" for i, b in
                             enumerate(bounds)], advance=advance, log=log, resume=config.resume)
    if not parts:
        return x.clone(), torch.zeros(0, dtype=torch.bool)
    return torch.cat([a for a, _ in parts]), torch.cat([s for _, s in parts])


def _batch_key(config: AttackConfig, x: torch.Tensor) -> dict:
    """What a shard log is valid for: every field that shapes the adversarials, and the attacked inputs."""
    import hashlib

    from nmkit.core.recipe import to_plain

    fields = {k: v for k, v in to_plain(config).items() if k not in ("executor", "resume")}
    return {"fields": fields, "inputs": hashlib.sha256(x.numpy().tobytes()).hexdigest()}


def _encode_shard(part: tuple[torch.Tensor, torch.Tensor]) -> list[str]:
    return [io.array_to_text(part[0].numpy()), io.array_to_text(part[1].numpy())]


def _decode_shard(data: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(io.array_from_text(data[0])), torch.from_numpy(io.array_from_text(data[1]))


def _attack_shard(portable, x: torch.Tensor, targets: torch.Tensor, config: AttackConfig,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    model = portable.model
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    as_tensor = lambda v: None if v is None else torch.tensor(v, dtype=torch.float32)  # noqa: E731
    split = SplitModel(model, config.feature_layer, as_tensor(config.mean), as_tensor(config.std))
    try:
        return attack(split, x, targets, config, seed)
    finally:
        split.remove()


def _inputs(config: AttackConfig) -> tuple[torch.Tensor, torch.Tensor]:
    from nmkit.core import datasets, models

    if isinstance(config.data, str):
        return models.digits_tensors("test", models.INPUT_SIDE[config.architecture], config.data)
    arrays = datasets.labelled_npz(config.data)
    key = "" if "x" in arrays else "_test"  # an .npz with x and y, or a test split (IDX folders)
    if f"x{key}" not in arrays:
        raise InputError(f"data {config.data}: expected arrays x [N, ...] and y [N], or x_test and y_test")
    x, y = arrays[f"x{key}"], arrays[f"y{key}"]
    if x.min() < config.low or x.max() > config.high:
        raise InputError(f"data {config.data}: inputs must lie in the box [{config.low}, {config.high}]")
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))


def _targets(config: AttackConfig, all_labels: torch.Tensor, classes: int, rows: torch.Tensor) -> torch.Tensor:
    """Target lists of the attacked ``rows``: seeded random ones, or row ``rows[i]`` of the --targets array, which
    holds one row per input of --data (so a row's targets stay with its image whichever inputs get attacked)."""
    labels = all_labels[rows]
    if config.targets == "random":
        return random_targets(labels, config.k, classes, config.seed)
    from nmkit.core import io

    given = io.load_npy(config.targets)
    if given.ndim != 2 or given.shape[1] != config.k or len(given) != len(all_labels) or given.dtype.kind not in "iu":
        raise InputError(f"targets {config.targets}: expected an integer array [{len(all_labels)}, {config.k}] (one "
                         f"row per input of the data), found {given.dtype} {list(given.shape)}")
    targets = torch.from_numpy(given[rows.numpy()].astype(np.int64))
    if (targets < 0).any() or (targets >= classes).any():
        raise InputError(f"targets {config.targets}: classes must lie in [0, {classes - 1}]")
    if (targets == labels.unsqueeze(1)).any():
        raise InputError(f"targets {config.targets}: a target list contains the example's true class")
    if any(len(set(row)) != config.k for row in targets.tolist()):
        raise InputError(f"targets {config.targets}: each target list must hold {config.k} distinct classes")
    return targets
