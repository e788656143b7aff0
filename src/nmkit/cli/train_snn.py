"""``nmkit train-snn [train|sample]``: train SpikeGPT on a corpus and report honest BPC, spike rates and an
operations estimate; generate text from a checkpoint in RNN mode."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from nmkit.cli.common import Command, Outcome, RunContext, capability, register
from nmkit.core.snn.config import ACTION_HELP, SnnConfig

if TYPE_CHECKING:
    from rich.table import Table

TRAINING, SAMPLING = "Training", "Sampling"


def run_command(config: SnnConfig, ctx: RunContext) -> Outcome:
    from rich.table import Table

    from nmkit.core.snn import run as snn

    if config.action == "sample":
        summary = snn.sample(config, _stdout if ctx.stream_text else lambda text: None)
        if ctx.stream_text:
            _stdout("\n")
        table = Table("", "", title=f"train-snn sample: {summary['checkpoint']} (step {summary['step']})",
                      show_header=False)
        table.add_row("tokens (all samples)", str(summary["tokens"]))
        rate = summary["tokens_per_second"]
        table.add_row(f"tokens/s (RNN mode, batch {summary['samples']})", "-" if rate is None else f"{rate:,.0f}")
        stopped = f"stopped by Ctrl-C after {summary['tokens']} tokens" if summary["interrupted"] else None
        return Outcome(summary=summary, tables=[table], interrupted=stopped)
    with _stop_requests() as stop, ctx.progress("train-snn", config.steps) as advance:
        summary = snn.train(config, ctx.out_dir, ctx.device, advance, stop)
    artifacts = [snn.CHECKPOINT, "curve.svg"] if ctx.out_dir is not None and summary else []
    return Outcome(summary=summary, tables=_tables(summary) if summary else [], artifacts=artifacts)


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


@contextlib.contextmanager
def _stop_requests() -> Iterator[Callable[[], int]]:
    """The first Ctrl-C or SIGTERM asks training to stop after the current step (with a checkpoint); a second one
    stops now. Yields a function returning the signal that asked (0: none)."""
    requested = []
    stopping = (signal.SIGINT, signal.SIGTERM)

    def handle(signum, frame):
        requested.append(signum)
        for sig in stopping:
            signal.signal(sig, previous[sig])

    previous = {sig: signal.signal(sig, handle) for sig in stopping}
    try:
        yield lambda: int(requested[0]) if requested else 0
    finally:
        for sig in stopping:
            signal.signal(sig, previous[sig])


def _tables(summary: dict) -> list[Table]:
    from rich.table import Table

    model = summary["model"]
    kind = (f"SpikeGPT ({model['neuron']} spikes"
            + (", learned thresholds" if model["learn_threshold"] else "")
            + (", real-valued readout" if model["readout"] == "real" else "") + ")"
            if model["spiking"] else "RWKV (non-spiking twin)")
    results = Table("", "", title=f"train-snn: {kind}, {model['layers']} x {model['d_model']}, "
                                   f"{model['parameters']:,} parameters", show_header=False)
    for label, value in (("validation BPC", f"{summary['valid_bpc']:.4f}"), ("test BPC", f"{summary['test_bpc']:.4f}"),
                         ("unigram entropy (bits)", f"{summary['unigram_bpc']:.4f}"),
                         ("steps", f"{summary['steps']:,}" + (f" (resumed at {summary['resumed_from']:,})"
                                                                  if summary["resumed_from"] is not None else "")),
                         ("tokens trained", f"{summary['tokens_trained']:,}"),
                         ("training tokens/s", f"{summary['tokens_per_second']:,.0f}"
                          if summary["tokens_per_second"] else "-"),
                         ("processes", str(summary["processes"]))):
        results.add_row(label, value)
    operations = summary["operations_per_token"]
    energy = Table("", "", title="operations per token", show_header=False, caption=operations["assumption"])
    energy.add_row("multiply-accumulates (MAC, 4.6 pJ)", f"{operations['macs']:,}")
    energy.add_row("accumulates (AC, 0.9 pJ)", f"{operations['accumulates']:,.0f}")
    energy.add_row("energy estimate", f"{operations['energy_pj'] / 1e3:,.1f} nJ")
    tables = [results, energy]
    if summary["spike_rates"]:
        rates = Table("layer", "time mix", "channel mix", title="spikes per neuron and token (test split)")
        for layer, rate in enumerate(summary["spike_rates"]):
            rates.add_row(str(layer), *(f"{rate[n]:.3f}" if n in rate else "real-valued" for n in ("lif_att",
                                                                                                    "lif_ffn")))
        tables.append(rates)
    return tables


COMMAND = register(Command(name="train-snn", schema=SnnConfig, run=run_command,
                           help="SpikeGPT: train a spiking RWKV character model, evaluate it, sample from it."))


@capability(COMMAND, {"Actions": ACTION_HELP})
def train_snn(
    action: Annotated[str | None, typer.Argument(metavar="train|sample", help="What to do (default train).")] = None,
    data: Annotated[str | None, typer.Option(help="Corpus: pydoc or stdlib (built in), a UTF-8 text file or a "
                                                  "token .npy.",
                                             rich_help_panel=TRAINING)] = None,
    layers: Annotated[int | None, typer.Option(help="Blocks (default 4).", rich_help_panel=TRAINING)] = None,
    d_model: Annotated[int | None, typer.Option(help="Width (default 256).", rich_help_panel=TRAINING)] = None,
    ctx: Annotated[int | None, typer.Option("--ctx", help="Context length (default 256).",
                                            rich_help_panel=TRAINING)] = None,
    steps: Annotated[int | None, typer.Option(help="Optimiser steps (default 1000).", rich_help_panel=TRAINING)]
    = None,
    batch_size: Annotated[int | None, typer.Option(help="Windows per step and process (default 16).",
                                                   rich_help_panel=TRAINING)] = None,
    baseline: Annotated[str | None, typer.Option(metavar="none|rwkv", help="rwkv: the same model without spikes.",
                                                 rich_help_panel=TRAINING)] = None,
    neuron: Annotated[str | None, typer.Option(metavar="binary|ternary|integer|signed-integer",
                                               help="Spike code of the branches (levels: --set spike_levels=N).",
                                               rich_help_panel=TRAINING)] = None,
    learn_threshold: Annotated[bool | None, typer.Option("--learn-threshold", help="Learn the firing thresholds.",
                                                         rich_help_panel=TRAINING)] = None,
    embedding: Annotated[str | None, typer.Option(metavar="binary|real", help="binary: Heaviside of the embedding "
                                                  "(the paper's character model).", rich_help_panel=TRAINING)] = None,
    readout: Annotated[str | None, typer.Option(metavar="spiking|real", help="real: the last channel mix is not "
                                                "spiked.", rich_help_panel=TRAINING)] = None,
    resume: Annotated[bool | None, typer.Option("--resume", help="Continue the run in --out from its checkpoint.",
                                                rich_help_panel=TRAINING)] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="sample: checkpoint.pt or the train run's folder.",
                                                    rich_help_panel=SAMPLING)] = None,
    prompt: Annotated[str | None, typer.Option(help="sample: text to continue.", rich_help_panel=SAMPLING)] = None,
    length: Annotated[int | None, typer.Option(help="sample: tokens to generate (default 500).",
                                               rich_help_panel=SAMPLING)] = None,
    temperature: Annotated[float | None, typer.Option(help="sample: temperature (default 1.5).",
                                                      rich_help_panel=SAMPLING)] = None,
    top_p: Annotated[float | None, typer.Option(help="sample: nucleus mass (default 0.7).",
                                                rich_help_panel=SAMPLING)] = None,
    num_samples: Annotated[int | None, typer.Option(help="sample: continuations generated together (default 1).",
                                                    rich_help_panel=SAMPLING)] = None,
):
    """Train SpikeGPT, a spiking RWKV-4 character language model (Zhu and others, 2023), or sample from it.

    Every residual branch ends in a spiking neuron: by default integer spikes (0-4 per neuron and token, tau 1,
    real-valued embedding: the best spiking arm measured); `--neuron binary --embedding binary --set tau=2` is the
    paper's binary LIF (recipes/train-snn-paper.yaml). It trains on CPU or GPU (Triton WKV and LIF kernels on CUDA).

    Examples: `nmkit train-snn --data pydoc --layers 4 --d-model 128 --ctx 128 --steps 1000 --out runs/snn`,
    `nmkit train-snn --baseline rwkv ...` (the same model without spikes), `nmkit train-snn --out runs/snn
    --steps 1000 ... --resume` after an interruption, `nmkit train-snn sample --checkpoint runs/snn --prompt "The "`,
    `torchrun --standalone --nproc-per-node 2 -m nmkit train-snn ...` for data-parallel training. Ctrl-C stops
    after the current step and leaves a usable checkpoint. The other fields (lr_init 6e-4, lr_final 1e-5,
    grad_clip 1, dropout 0.03, eval_every 100, eval_windows 32, checkpoint_every 100, spike_levels 4, tau 1) take
    --set or a recipe.
    """
    return dict(action=action, data=data, layers=layers, d_model=d_model, ctx=ctx, steps=steps,
                batch_size=batch_size, baseline=baseline, neuron=neuron, learn_threshold=learn_threshold,
                readout=readout, embedding=embedding, resume=resume, checkpoint=checkpoint, prompt=prompt,
                length=length, temperature=temperature, top_p=top_p,
                samples=num_samples)
