"""The config fields of every tool that takes a classifier; importable without torch (the CLI builds its
help from them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from nmkit.core.recipe import BatchConfig, option

ARCHITECTURES = ("mlp", "cnn", "resnet", "lenet", "cnn28")  # nmkit.core.models.ZOO builds them


@dataclass(frozen=True)
class ModelSource(BatchConfig):
    """Config fields of every tool that takes a classifier: the file (or none: train the zoo model), the zoo
    architecture, the pickle opt-in."""

    model: Path | None = option(None, "TorchScript archive, state dict (with architecture) or module; none: "
                                      "train the zoo architecture on digits first")
    architecture: Literal["mlp", "cnn", "resnet", "lenet", "cnn28"] = option(
        "mlp", "zoo architecture (for state dicts and training; mlp and cnn take 8x8 images, lenet (LeNet-300-100) "
               "and cnn28 take 28x28, resnet 32x32; built-in data is resampled to fit)")
    trust_pickle: bool = option(False, "allow loading a pickled nn.Module (runs code from the file)",
                                cli_only=True)
