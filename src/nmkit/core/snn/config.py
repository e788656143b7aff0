"""Schema of ``nmkit train-snn``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.errors import ConfigError
from nmkit.core.recipe import CommonConfig, option

ACTION_HELP = {
    "train": "train SpikeGPT (or its non-spiking twin with baseline rwkv) on a corpus; validation BPC while "
             "training, test BPC, spike rates and an operations/energy estimate at the end",
    "sample": "load a checkpoint and generate text in recurrent (RNN) mode, streamed to stdout",
}


@dataclass(frozen=True)
class SnnConfig(CommonConfig):
    """SpikeGPT: a spiking RWKV character language model; train, evaluate, generate."""

    action: Literal["train", "sample"] = option("train", "; ".join(f"{k}: {v}" for k, v in ACTION_HELP.items()))
    data: str = option("pydoc", "corpus: 'pydoc' (English help text shipped inside Python), 'stdlib' (Python's "
                                "standard library sources, ~10M characters), a UTF-8 text file, or a .npy of "
                                "integer token ids")
    layers: int = option(4, "blocks (each a spiking time mix and a spiking channel mix)", ge=1, le=256)
    d_model: int = option(256, "width of the residual stream (any positive size: the kernels mask partial "
                               "channel blocks)", ge=1, le=65_536)
    ctx: int = option(256, "context: tokens per training window", ge=1, le=1_048_576)
    baseline: Literal["none", "rwkv"] = option(
        "none", "rwkv: the identical model with the binary embedding and LIF neurons switched off")
    neuron: Literal["binary", "ternary", "integer", "signed-integer"] = option(
        "integer", "spike code of every branch: binary {0,1} (SpikeGPT), ternary {-1,0,1}, integer {0..levels} or "
                  "signed-integer {-levels..levels} (soft reset)")
    spike_levels: int = option(4, "most spikes per neuron and token of the integer neurons", ge=1, le=16)
    learn_threshold: bool = option(False, "learn each branch's firing threshold per channel (initialised at 1)")
    readout: Literal["spiking", "real"] = option(
        "spiking", "real: the last channel mix adds its real-valued output (a non-spiking readout for the head)")
    embedding: Literal["binary", "real"] = option(
        "real", "binary: Heaviside of the embedding (SpikeGPT's character model); real: as SpikeGPT's 216M model")
    tau: float = option(1.0, "LIF membrane time constant (SpikeGPT: 2; 1: no memory across tokens, each token's "
                             "spikes count its own branch output)", ge=1, le=1000)
    batch_size: int = option(16, "windows per optimiser step (per process under torchrun)", ge=1, le=65_536)
    steps: int = option(1000, "optimiser steps (the cosine schedule spans them)", ge=1, le=100_000_000)
    lr_init: float = option(6e-4, "initial learning rate (SpikeGPT's default)", gt=0)
    lr_final: float = option(1e-5, "learning rate at the last step", gt=0)
    grad_clip: float = option(1.0, "gradient norm clip", gt=0)
    dropout: float = option(0.03, "dropout after every block", ge=0, lt=1)
    eval_every: int = option(100, "steps between validation checks", ge=1, le=100_000_000)
    eval_windows: int = option(32, "validation windows per check during training (the final validation and "
                                   "test BPC use every window)", ge=1, le=1_000_000)
    checkpoint_every: int = option(100, "steps between checkpoints (written atomically to --out)", ge=1, le=100_000_000)
    resume: bool = option(False, "continue the run in --out from its checkpoint, exactly")
    checkpoint: Path | None = option(None, "sample: a checkpoint.pt from a train run, or its folder")
    prompt: str = option("\n", "sample: text to start from (characters of the training corpus; for a token "
                                "corpus, space-separated ids)")
    length: int = option(500, "sample: tokens to generate", ge=1, le=10_000_000)
    temperature: float = option(1.5, "sample: softmax temperature (SpikeGPT's default)", gt=0)
    top_p: float = option(0.7, "sample: nucleus mass kept (SpikeGPT's default)", gt=0, le=1)
    samples: int = option(1, "sample: continuations generated together as one batch (one streams as it goes, "
                             "several are printed one after the other at the end)", ge=1, le=4096)

    def __post_init__(self) -> None:
        if self.action == "sample" and self.checkpoint is None:
            raise ConfigError("action sample needs a checkpoint (--checkpoint FILE or the train run's folder)")
        if self.lr_final > self.lr_init:
            raise ConfigError(f"lr_final {self.lr_final:g} is above lr_init {self.lr_init:g}; the schedule "
                              "decays")
