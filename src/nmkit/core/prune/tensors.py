"""Pruning a checkpoint of bare tensors (safetensors, Hugging Face layout) without its architecture.

Magnitude methods need only the weights: global-mp and layer-mp rank |w|, lamp ranks LAMP scores, random ranks
seeded uniform noise; each prunes exactly round(s N) weights (:func:`nmkit.core.prune.masks.global_masks`). By
default the weight matrices are pruned (floating tensors of 2 or more dimensions) and embeddings, norms, the LM
head and biases are not; ``include`` / ``exclude`` (regexes searched in the tensor name) choose among the
floating tensors of 2+ dimensions instead (an ``include`` lifts the default exclusion of embeddings and heads).
The pruned file has the same keys, dtypes (fp16/bf16 kept) and metadata; a folder's other files (config.json,
...) are copied beside the pruned shards.

Checkpoints larger than memory: nothing is held but one tensor at a time. A first look reads every tensor (checks
it is finite, sums its powers for the PQ Index, histograms its scores: :func:`masks.thresholds`; float32 scores
need a second look at the boundary bins), then each sparsity level reads the shards again, prunes tensor by
tensor and writes each output shard as it goes (:class:`~nmkit.core.prune.shard_io.ShardWriter`), so peak memory
is a few tensors, whatever the checkpoint's size.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import torch

from nmkit.core import io
from nmkit.core.errors import InputError
from nmkit.core.prune import masks
from nmkit.core.prune.config import PruneConfig
from nmkit.core.prune.masks import Threshold
from nmkit.core.prune.pqi import PowerSums, histogram_power_sums, power_sums
from nmkit.core.prune.report import LayerReport, dead_units, summary
from nmkit.core.prune.results import PruneResult, SparsityRun
from nmkit.core.prune.shard_io import Shard, ShardWriter, TensorEntry, read_shard
from nmkit.kernels.magnitude_histogram import half_histogram

MAGNITUDE_METHODS = ("global-mp", "layer-mp", "random", "lamp")
DEFAULT_EXCLUDE = r"(^|[._])(wte|wpe|embed\w*|embeddings?|lm_head|ln\w*|\w*norm\w*)([._]|$)"
"""Names left out by default: token/position embeddings, the LM head (often tied to the embedding), norms."""


def is_tensor_checkpoint(path: Path | None) -> bool:
    """A ``.safetensors`` file, or a folder holding some (a Hugging Face model folder)."""
    if path is None:
        return False
    path = Path(path)
    return path.suffix == ".safetensors" or (path.is_dir() and (any(path.glob("*.safetensors")) or
                                                                (path / INDEX).exists()))


INDEX = "model.safetensors.index.json"


def shard_files(folder: Path) -> tuple[list[Path], dict[str, str] | None]:
    """A model folder's shards and its Hugging Face index's weight map (tensor -> shard file name), if it has one:
    the shards the index names (checked: inside the folder, present, and no other shard beside them), or every
    ``*.safetensors`` file when there is no index."""
    import json

    found = sorted(folder.glob("*.safetensors"))
    index_file = folder / INDEX
    if not index_file.exists():
        if not found:
            raise InputError(f"model {folder}: no .safetensors file in the folder")
        return found, None
    try:
        weight_map = json.loads(index_file.read_bytes()[:64 << 20])["weight_map"]
        if not isinstance(weight_map, dict) or not weight_map or \
                not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
            raise TypeError
    except (OSError, ValueError, TypeError, KeyError, RecursionError):
        raise InputError(f"model {index_file}: not a shard index (expected JSON with a 'weight_map' of tensor "
                         f"names to shard file names)") from None
    shards = sorted({folder / name for name in weight_map.values()})
    for shard in shards:
        if shard.parent != folder or not shard.name.endswith(".safetensors"):
            raise InputError(f"model {index_file}: names a shard outside the folder or not a .safetensors file; "
                             f"shards must be file names beside the index")
        if not shard.is_file():
            raise InputError(f"model {index_file}: names a shard that is not in the folder")
    extra = sorted(set(found) - set(shards))
    if extra:
        raise InputError(f"model {folder}: holds {extra[0].name[:80]}, which its {INDEX} does not name")
    return shards, weight_map


def _check_index(index_file: Path, weight_map: dict[str, str], shards: list[Shard]) -> None:
    """Every tensor the index names is in the shard it names, and every tensor of the shards is indexed."""
    held = {entry.name: shard.path.name for shard in shards for entry in shard.entries}
    misplaced = sum(held.get(name) != shard for name, shard in weight_map.items())
    if misplaced:
        raise InputError(f"model {index_file}: lists {misplaced} tensor(s) in shards that do not hold them")
    unindexed = sorted({held[name] for name in set(held) - set(weight_map)})
    if unindexed:
        raise InputError(f"model {index_file}: does not list every tensor of {unindexed[0]}")


@dataclass
class Checkpoint:
    """A tensor checkpoint on disk: its shards' tables of contents and the folder's other files."""

    shards: list[Shard]
    companions: list[Path]  # config.json, the shard index, ...

    @property
    def entries(self) -> list[TensorEntry]:
        return [entry for shard in self.shards for entry in shard.entries]


def open_checkpoint(path: Path) -> Checkpoint:
    """A .safetensors file or a model folder, with every header and the shard index checked (nothing read yet)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"model {path}: no such file")
    files, weight_map = shard_files(path) if path.is_dir() else ([path], None)
    shards = [read_shard(file) for file in files]
    if weight_map is not None:
        _check_index(path / INDEX, weight_map, shards)
    companions = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix != ".safetensors"] \
        if path.is_dir() else []
    return Checkpoint(shards, companions)


def select(checkpoint: Checkpoint, include: list[str], exclude: list[str]) -> tuple[list[str], dict[str, str]]:
    """The names of the tensors to prune, in checkpoint order, and every other tensor with why it is left out."""
    include_re = [re.compile(p) for p in include]
    exclude_re = [re.compile(p) for p in exclude] + ([] if include else [re.compile(DEFAULT_EXCLUDE)])
    chosen, reasons = [], {}
    for entry in checkpoint.entries:
        name = entry.name
        if not entry.dtype.is_floating_point:
            reasons[name] = "not floating point"
        elif entry.dtype.itemsize == 1:
            reasons[name] = "8-bit float (already quantised)"
        elif include_re and not any(r.search(name) for r in include_re):
            reasons[name] = "not matched by include"
        elif any(r.search(name) for r in exclude_re):
            reasons[name] = "excluded (embedding, norm or LM head by default)"
        elif len(entry.shape) < 2:
            reasons[name] = "1-D (bias or scale)"
        else:
            chosen.append(name)
    if not chosen:
        raise InputError("model: no tensor selected for pruning (check include / exclude)")
    return chosen, reasons


class Scores:
    """A method's per-weight scores, tensor by tensor in checkpoint order: |w| (global-mp, layer-mp), LAMP scores,
    or seeded uniform noise (random; the generator restarts with every look, so each look sees the same noise)."""

    def __init__(self, method: str, seed: int):
        self.method, self.seed = method, seed
        self.absolute = method in ("global-mp", "layer-mp")

    def look(self) -> Callable[[torch.Tensor], torch.Tensor]:
        if self.absolute:
            return lambda weight: weight
        if self.method == "lamp":
            return lambda weight: masks.lamp_scores([weight])[0]
        generator = torch.Generator().manual_seed(self.seed)
        return lambda weight: torch.rand(weight.shape, generator=generator)


def prune_checkpoint(config: PruneConfig, folder_for: Callable[[float], Path | None] | None = None,
                     on_written: Callable[[float, list[Path], str], None] | None = None,
                     advance: Callable[[int], None] | None = None) -> PruneResult:
    """Prune ``config.model`` at every sparsity, streaming; ``folder_for(target)`` says where each level's shards
    go (None: measure only) and ``on_written(target, files, "safetensors")`` hears of them once written."""
    if config.method not in MAGNITUDE_METHODS:
        raise InputError(f"method {config.method} needs a runnable model (TorchScript, a zoo state dict or a "
                         f"module); a tensor checkpoint takes {', '.join(MAGNITUDE_METHODS)}")
    if config.fine_tune_epochs or config.gradual or config.train:
        raise InputError("a tensor checkpoint cannot be trained or fine-tuned here: leave out fine_tune_epochs, "
                         "end_epoch and train")
    checkpoint = open_checkpoint(config.model)
    chosen, reasons = select(checkpoint, config.include, config.exclude)
    scores = Scores(config.method, config.seed)
    start = time.perf_counter()
    found, dense = _first_looks(checkpoint, set(chosen), scores, config.sparsities)
    seconds = time.perf_counter() - start
    runs = []
    for target, threshold in zip(config.sparsities, found, strict=True):
        start = time.perf_counter()
        folder = folder_for(target) if folder_for is not None else None
        reports, pruned_sums = _prune_level(checkpoint, set(chosen), scores, target, threshold, folder)
        overall = summary(reports, pruned_sums.index())
        runs.append(SparsityRun(target, overall["sparsity"], None, None, None, overall["collapsed_layers"],
                                overall["pqi_global"], 1, seconds + time.perf_counter() - start,
                                [asdict(r) | {"density": r.density, "collapsed": r.collapsed} for r in reports]))
        if folder is not None:
            for companion in checkpoint.companions:
                io.atomic_write(folder / companion.name, lambda fh, c=companion: _copy(c, fh))
            if on_written is not None:
                on_written(target, [folder / s.path.name for s in checkpoint.shards] +
                           [folder / c.name for c in checkpoint.companions], "safetensors")
        if advance is not None:
            advance(1)
    return PruneResult(config.method, "safetensors", None, dense.index(), runs,
                       ["tensor checkpoint: no accuracy without a runnable model"], None, chosen, reasons)


def _first_looks(checkpoint: Checkpoint, wanted: set[str], scores: Scores,
                 sparsities: list[float]) -> tuple[list[Threshold | None], PowerSums]:
    """Each level's global threshold (None for layer-mp, which ranks within each tensor) and the dense power sums.

    The first look reads every tensor and checks it is finite (so a bad file fails before anything is written).
    16-bit magnitudes need nothing more: one histogram gives the thresholds and the power sums. Other scores are
    histogrammed as float32, with a second look at the boundary bins (:func:`masks.thresholds`)."""
    total = sum(e.numel for e in checkpoint.entries if e.name in wanted)
    amounts = [round(s * total) for s in sparsities]
    inside = sorted({a for a in amounts if 0 < a < total})
    half = masks.common_half(e.dtype for e in checkpoint.entries if e.name in wanted) if scores.absolute else None
    dense = PowerSums()

    def first_look() -> Iterator[torch.Tensor]:
        """The chosen tensors, after every tensor's finite check."""
        for shard in checkpoint.shards:
            for entry, tensor in shard.tensors():
                io.check_finite_tensors(tensor, f"model {shard.path}")
                if entry.name in wanted:
                    yield tensor

    if half is not None:
        counts = sum(half_histogram(tensor, absolute=True) for tensor in first_look())
        found = dict(zip(inside, masks.half_thresholds(counts, inside, half), strict=True))
        dense = histogram_power_sums(counts, half)
    else:
        def measured() -> Iterator[torch.Tensor]:
            nonlocal dense
            score = scores.look()
            for tensor in first_look():
                dense = dense + power_sums(tensor)
                yield score(tensor)

        def rereads() -> Iterator[torch.Tensor]:
            score = scores.look()
            for shard in checkpoint.shards:
                yield from (score(tensor) for _, tensor in shard.tensors(wanted))

        looks = iter([measured])
        if scores.method == "layer-mp" or not inside:
            found = dict.fromkeys(inside)
            for _ in measured():
                pass
        else:
            found = dict(zip(inside, masks.thresholds(lambda: next(looks, rereads)(), inside, scores.absolute),
                             strict=True))
    if scores.method == "layer-mp":
        return [None] * len(sparsities), dense
    return [found.get(a) or Threshold(float("-inf") if a <= 0 else float("inf"), 0) for a in amounts], dense


def _prune_level(checkpoint: Checkpoint, wanted: set[str], scores: Scores, target: float,
                 threshold: Threshold | None, folder: Path | None) -> tuple[list[LayerReport], PowerSums]:
    """One sparsity level: every shard read, its chosen tensors pruned, written to ``folder`` (when given) as it
    goes; the per-tensor reports and the pruned weights' power sums."""
    score, ties = scores.look(), threshold.ties if threshold is not None else 0
    reports, sums = [], PowerSums()

    def prune_shard(shard: Shard, handle: IO[bytes] | None) -> None:
        nonlocal ties, sums
        with ShardWriter(handle, shard.entries, shard.metadata) if handle is not None else nullcontext() as writer:
            for entry, tensor in shard.tensors(None if writer is not None else wanted):
                if entry.name in wanted:
                    if threshold is None:
                        keep = masks.layer_masks([tensor.abs()], [target])[0]
                    else:
                        keep, pruned = masks.keep_mask(score(tensor), threshold, ties, scores.absolute)
                        ties -= pruned
                    tensor = tensor.masked_fill_(keep.logical_not_(), 0)
                    layer = power_sums(tensor)
                    sums = sums + layer
                    reports.append(LayerReport(entry.name, "tensor", entry.numel, layer.count, None, None,
                                               dead_units(tensor), layer.index()))
                if writer is not None:
                    writer.write(entry.name, tensor)

    for shard in checkpoint.shards:
        if folder is None:
            prune_shard(shard, None)
        else:
            io.atomic_write(folder / shard.path.name, lambda handle, shard=shard: prune_shard(shard, handle))
    return reports, sums


def _copy(source: Path, handle: IO[bytes]) -> None:
    with open(source, "rb") as reader:
        shutil.copyfileobj(reader, handle, 1 << 24)
