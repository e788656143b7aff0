"""Pruning a checkpoint of bare tensors (safetensors, Hugging Face layout) without its architecture.

Magnitude methods need only the weights: global-mp and layer-mp rank |w|, lamp ranks LAMP scores, random ranks
seeded uniform noise; each prunes exactly round(s N) weights (:func:`nmkit.core.prune.masks.global_masks`). By
default the weight matrices are pruned (floating tensors of 2 or more dimensions) and embeddings, norms, the LM
head and biases are not; ``include`` / ``exclude`` (regexes searched in the tensor name) choose among the
floating tensors of 2+ dimensions instead (an ``include`` lifts the default exclusion of embeddings and heads).
The pruned file has the same keys, dtypes (fp16/bf16 kept) and metadata; a folder's other files (config.json,
...) are copied beside the pruned shards.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch

from nmkit.core import io
from nmkit.core.errors import InputError
from nmkit.core.prune import masks
from nmkit.core.prune.config import PruneConfig
from nmkit.core.prune.masks import Prunable
from nmkit.core.prune.pqi import pq_index
from nmkit.core.prune.report import layer_reports, summary

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
SAFETENSORS_ERROR = ("not a readable safetensors file (expected an 8-byte header length, a JSON header of tensors "
                     "with dtypes such as F32, F16, BF16, I64, and their data)")


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


def _check_index(index_file: Path, weight_map: dict[str, str], shards: dict[Path, tuple[dict, dict | None]]) -> None:
    """Every tensor the index names is in the shard it names, and every tensor of the shards is indexed."""
    held = {name: file.name for file, (tensors, _) in shards.items() for name in tensors}
    misplaced = sum(held.get(name) != shard for name, shard in weight_map.items())
    if misplaced:
        raise InputError(f"model {index_file}: lists {misplaced} tensor(s) in shards that do not hold them")
    unindexed = sorted({held[name] for name in set(held) - set(weight_map)})
    if unindexed:
        raise InputError(f"model {index_file}: does not list every tensor of {unindexed[0]}")


@dataclass
class Checkpoint:
    """The shards of a tensor checkpoint: file -> (tensors, metadata), and the folder's other files."""

    shards: dict[Path, tuple[dict[str, torch.Tensor], dict[str, str] | None]]
    companions: list[Path] = field(default_factory=list)  # config.json, the shard index, ...


def load_checkpoint(path: Path) -> Checkpoint:
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.exists():
        raise InputError(f"model {path}: no such file")
    files, weight_map = shard_files(path) if path.is_dir() else ([path], None)
    shards = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                shards[file] = ({name: handle.get_tensor(name) for name in handle.keys()}, handle.metadata())
        except (SafetensorError, OSError, ValueError, RuntimeError):
            raise InputError(f"model {file}: {SAFETENSORS_ERROR}") from None
        io.check_finite_tensors(shards[file][0], f"model {file}")
    if weight_map is not None:
        _check_index(path / INDEX, weight_map, shards)
    companions = [p for p in sorted(path.iterdir()) if p.is_file() and p.suffix != ".safetensors"] \
        if path.is_dir() else []
    return Checkpoint(shards, companions)


def select(checkpoint: Checkpoint, include: list[str], exclude: list[str]) -> tuple[list[Prunable], dict[str, str]]:
    """The tensors to prune (as :class:`Prunable`) and every other tensor with the reason it is left out."""
    include_re = [re.compile(p) for p in include]
    exclude_re = [re.compile(p) for p in exclude] + ([] if include else [re.compile(DEFAULT_EXCLUDE)])
    chosen, reasons = [], {}
    for tensors, _ in checkpoint.shards.values():
        for name, tensor in tensors.items():
            if not tensor.is_floating_point():
                reasons[name] = "not floating point"
            elif include_re and not any(r.search(name) for r in include_re):
                reasons[name] = "not matched by include"
            elif any(r.search(name) for r in exclude_re):
                reasons[name] = "excluded (embedding, norm or LM head by default)"
            elif tensor.dim() < 2:
                reasons[name] = "1-D (bias or scale)"
            else:
                chosen.append(Prunable(name, SimpleNamespace(weight=tensor), "tensor"))
    if not chosen:
        raise InputError("model: no tensor selected for pruning (check include / exclude)")
    return chosen, reasons


def keep_masks(method: str, weights: list[torch.Tensor], sparsity: float, seed: int) -> list[torch.Tensor]:
    total = sum(w.numel() for w in weights)
    amount = round(sparsity * total)
    if method == "global-mp":
        return masks.global_masks(weights, amount, absolute=True)
    if method == "layer-mp":
        return masks.layer_masks([w.abs() for w in weights], [sparsity] * len(weights))
    if method == "lamp":
        return masks.global_masks(masks.lamp_scores(weights), amount)
    generator = torch.Generator().manual_seed(seed)
    return masks.global_masks([torch.rand(w.shape, generator=generator) for w in weights], amount)


def prune_checkpoint(config: PruneConfig, on_pruned: Callable[[float, Checkpoint, str], None] | None = None):
    """Prune ``config.model`` at every sparsity; ``on_pruned(target, checkpoint, "safetensors")`` gets each one."""
    from nmkit.core.prune.run import PruneResult, SparsityRun

    if config.method not in MAGNITUDE_METHODS:
        raise InputError(f"method {config.method} needs a runnable model (TorchScript, a zoo state dict or a "
                         f"module); a tensor checkpoint takes {', '.join(MAGNITUDE_METHODS)}")
    if config.fine_tune_epochs or config.gradual or config.train:
        raise InputError("a tensor checkpoint cannot be trained or fine-tuned here: leave out fine_tune_epochs, "
                         "end_epoch and train")
    checkpoint = load_checkpoint(config.model)
    chosen, reasons = select(checkpoint, config.include, config.exclude)
    originals = [layer.weight for layer in chosen]
    dense_pqi = pq_index(originals)
    runs = []
    for target in config.sparsities:
        start = time.perf_counter()
        kept = keep_masks(config.method, originals, target, config.seed)
        pruned = {layer.name: w.masked_fill(~k, 0) for layer, w, k in zip(chosen, originals, kept, strict=True)}
        seconds = time.perf_counter() - start
        layers = [Prunable(layer.name, SimpleNamespace(weight=pruned[layer.name]), "tensor") for layer in chosen]
        reports = layer_reports(layers, {})
        overall = summary(reports, layers)
        runs.append(SparsityRun(target, overall["sparsity"], None, None, None, overall["collapsed_layers"],
                                overall["pqi_global"], 1, seconds,
                                [asdict(r) | {"density": r.density, "collapsed": r.collapsed} for r in reports]))
        if on_pruned is not None:
            on_pruned(target, Checkpoint({file: ({k: pruned.get(k, v) for k, v in tensors.items()}, metadata)
                                          for file, (tensors, metadata) in checkpoint.shards.items()},
                                         checkpoint.companions), "safetensors")
    return PruneResult(config.method, "safetensors", None, dense_pqi, runs,
                       ["tensor checkpoint: no accuracy without a runnable model"], None,
                       [layer.name for layer in chosen], reasons)


def save_checkpoint(checkpoint: Checkpoint, folder: Path, write_bytes: Callable[[Path, bytes], None]) -> list[str]:
    """Write the shards under their own names into ``folder``, with copies of the companions (config.json, the
    shard index), so the folder loads like the original; the names written."""
    from safetensors.torch import save

    written = []
    for file, (tensors, metadata) in checkpoint.shards.items():
        write_bytes(folder / file.name, save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata))
        written.append(file.name)
    for companion in checkpoint.companions:
        write_bytes(folder / companion.name, companion.read_bytes())
        written.append(companion.name)
    return written
