"""Flags shared by the subcommands that take a classifier (attack, prune): the model file, the zoo
architecture and the pickle opt-in, all in the help's "Model" panel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nmkit.core.models import ZOO

MODEL = "Model"

ModelFile = Annotated[Path | None, typer.Argument(help="Model file; omit to train the zoo architecture on digits.")]
Architecture = Annotated[str | None, typer.Option(metavar="|".join(ZOO), help="Zoo architecture (default mlp; resnet "
                                                  "takes digits upsampled to 32x32).", rich_help_panel=MODEL)]
TrustPickle = Annotated[bool | None, typer.Option("--trust-pickle/--no-trust-pickle",
                                                  help="Allow a pickled nn.Module (runs code from the file).",
                                                  rich_help_panel=MODEL)]
